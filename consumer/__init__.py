"""The consumer (`imagepipe consume`): long-polls SQS, renders variants in a
process pool with the core, stores them in S3 and completes job status,
with visibility heartbeats, retries and graceful shutdown.

Kubernetes: set the pod's `terminationGracePeriodSeconds` to at least
IMAGEPIPE_SHUTDOWN_GRACE_SECONDS + 10 (35 with the default 25): the drain
uses the grace period, then up to 5 s to hand back what is left."""
