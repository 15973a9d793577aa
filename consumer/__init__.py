"""The consumer (`imagepipe consume`): long-polls SQS, renders variants in a
process pool with the core, stores them in S3 and completes job status,
with visibility heartbeats, retries and graceful shutdown."""
