"""The AWS permissions each role needs, derived from the calls it makes, so
that IRSA or pod identity can give the internet-facing ingest, the consumer,
the webhook deliverer and the operator one role each. `GRANTS` is the one list; `role_policy`
renders it for real names, the chart README prints it for placeholders, and
tests keep it true (every call in a role's code is granted, every grant is
called, and moto refuses what is not granted)."""

from __future__ import annotations

from typing import Any, Literal

from imagepipe.config import WEBHOOK_QUEUE_SUFFIX
from imagepipe.jobstore.keys import (
    FAILURES,
    IDEMPOTENCY,
    PROBES,
    WEBHOOKS,
    original_key,
    status_key,
    variants_prefix,
)
from imagepipe.privacy import PROBE_KEY

Role = Literal["ingest", "consumer", "deliverer", "operator"]
ROLES: tuple[Role, ...] = ("ingest", "consumer", "deliverer", "operator")

# What a grant applies to: the bucket itself, a family of keys, or a queue.
BUCKET = "bucket"
KEYS = {
    "originals": original_key("*"),
    "status": status_key("*"),
    "variants": f"{variants_prefix('*')}*",
    "idempotency": f"{IDEMPOTENCY}*",
    "failures": f"{FAILURES}*",
    "probes": f"{PROBES}*",  # the start-up check of conditional writes
    "privacy probe": PROBE_KEY,
    "delivery records": f"{WEBHOOKS}*",
}
QUEUE, DLQ, WEBHOOK_QUEUE = "queue", "dead-letter queue", "webhook queue"

# The IAM action that authorises each client method the code calls.
METHOD_ACTIONS = {
    "put_object": "s3:PutObject",
    "get_object": "s3:GetObject",
    "delete_object": "s3:DeleteObject",
    "delete_objects": "s3:DeleteObject",
    "list_objects_v2": "s3:ListBucket",
    "head_bucket": "s3:ListBucket",
    "create_bucket": "s3:CreateBucket",
    "get_bucket_tagging": "s3:GetBucketTagging",
    "put_bucket_tagging": "s3:PutBucketTagging",
    "get_bucket_lifecycle_configuration": "s3:GetLifecycleConfiguration",
    "put_bucket_lifecycle_configuration": "s3:PutLifecycleConfiguration",
    "get_bucket_policy": "s3:GetBucketPolicy",
    "put_bucket_policy": "s3:PutBucketPolicy",
    "delete_bucket_policy": "s3:DeleteBucketPolicy",
    "get_public_access_block": "s3:GetBucketPublicAccessBlock",
    "put_public_access_block": "s3:PutBucketPublicAccessBlock",
    "get_bucket_cors": "s3:GetBucketCORS",
    "put_bucket_cors": "s3:PutBucketCORS",
    "send_message": "sqs:SendMessage",
    "receive_message": "sqs:ReceiveMessage",
    "delete_message": "sqs:DeleteMessage",
    "delete_message_batch": "sqs:DeleteMessage",
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "change_message_visibility_batch": "sqs:ChangeMessageVisibility",
    "get_queue_url": "sqs:GetQueueUrl",
    "get_queue_attributes": "sqs:GetQueueAttributes",
    "create_queue": "sqs:CreateQueue",
    "set_queue_attributes": "sqs:SetQueueAttributes",
    "list_dead_letter_source_queues": "sqs:ListDeadLetterSourceQueues",
}
# Not a method of its own: a PutObject with tags (status documents carry their
# expiry tag) needs this too.
TAGGED_PUT = "s3:PutObjectTagging"

_BUCKET_CONFIGURATION = (
    "s3:CreateBucket",
    "s3:GetBucketTagging",
    "s3:PutBucketTagging",
    "s3:GetLifecycleConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketCORS",
    "s3:PutBucketCORS",
)

GRANTS: dict[Role, dict[str, tuple[str, ...]]] = {
    # Uploads write the original, the status and claim the idempotency record;
    # GET reads status, idempotency records and (webhooks on) delivery records;
    # DELETE tombstones the status and removes the variants and original (a
    # failed upload removes its own; a dropped claim its record); start-up
    # checks conditional writes under probes/; readiness: HeadBucket,
    # GetQueueAttributes.
    "ingest": {
        "s3:PutObject": ("originals", "status", "idempotency", "probes"),
        TAGGED_PUT: ("status",),
        "s3:GetObject": ("status", "idempotency", "delivery records"),
        "s3:DeleteObject": ("originals", "status", "variants", "idempotency", "probes"),
        "s3:ListBucket": (BUCKET,),
        "sqs:SendMessage": (QUEUE, WEBHOOK_QUEUE),
        "sqs:GetQueueAttributes": (QUEUE,),
        "sqs:GetQueueUrl": (QUEUE, WEBHOOK_QUEUE),
    },
    # Reads the message's original and status, writes variants, status and the
    # failure index, removes its own variants of a job deleted meanwhile; reads
    # maxReceiveCount from the queue and sweeps the dead-letter queue (while it
    # serves this queue alone); emits webhook events (never a job).
    "consumer": {
        "s3:GetObject": ("originals", "status"),
        "s3:PutObject": ("status", "variants", "failures", "probes"),
        TAGGED_PUT: ("status",),
        "s3:DeleteObject": ("variants", "probes"),
        "s3:ListBucket": (BUCKET,),
        "sqs:ReceiveMessage": (QUEUE, DLQ),
        "sqs:DeleteMessage": (QUEUE, DLQ),
        "sqs:ChangeMessageVisibility": (QUEUE, DLQ),
        "sqs:GetQueueAttributes": (QUEUE,),
        "sqs:GetQueueUrl": (QUEUE, DLQ, WEBHOOK_QUEUE),
        "sqs:ListDeadLetterSourceQueues": (DLQ,),
        "sqs:SendMessage": (WEBHOOK_QUEUE,),
    },
    # Receives events from the delivery queue, hides them for their retry or
    # deletes them, reads and writes the delivery records, and reads a job's
    # status to resolve a deletion intent (never writes it); start-up checks
    # conditional writes under probes/.
    "deliverer": {
        "s3:GetObject": ("status", "delivery records"),
        "s3:PutObject": ("delivery records", "probes"),
        "s3:DeleteObject": ("probes",),
        "sqs:ReceiveMessage": (WEBHOOK_QUEUE,),
        "sqs:DeleteMessage": (WEBHOOK_QUEUE,),
        "sqs:ChangeMessageVisibility": (WEBHOOK_QUEUE,),
        "sqs:GetQueueUrl": (WEBHOOK_QUEUE,),
    },
    # Checks (and with `provision`, creates and configures) bucket and queues
    # (the delivery queue too), reads queue depths, and probes that originals
    # stay private.
    "operator": {
        "s3:ListBucket": (BUCKET,),
        **{action: (BUCKET,) for action in _BUCKET_CONFIGURATION},
        "s3:PutObject": ("privacy probe",),
        "s3:DeleteObject": ("privacy probe",),
        "sqs:GetQueueUrl": (QUEUE, DLQ, WEBHOOK_QUEUE),
        "sqs:GetQueueAttributes": (QUEUE, DLQ, WEBHOOK_QUEUE),
        "sqs:CreateQueue": (QUEUE, DLQ, WEBHOOK_QUEUE),
        "sqs:SetQueueAttributes": (QUEUE,),
        "sqs:ListDeadLetterSourceQueues": (DLQ,),
    },
}


def _arn(target: str, bucket: str, queues: dict[str, str]) -> str:
    if target == BUCKET:
        return f"arn:aws:s3:::{bucket}"
    if target in queues:
        return queues[target]
    return f"arn:aws:s3:::{bucket}/{KEYS[target]}"


def role_policy(
    role: Role, bucket: str, queue_arn: str, dlq_arn: str, webhook_queue_arn: str = ""
) -> dict[str, Any]:
    """The role's IAM policy document: one statement per set of resources. The
    delivery queue defaults to the job queue's ARN + `-webhooks`, its default name."""
    queues = {
        QUEUE: queue_arn,
        DLQ: dlq_arn,
        WEBHOOK_QUEUE: webhook_queue_arn or queue_arn + WEBHOOK_QUEUE_SUFFIX,
    }
    by_targets: dict[tuple[str, ...], list[str]] = {}
    for action, targets in GRANTS[role].items():
        by_targets.setdefault(targets, []).append(action)
    statements = [
        {
            "Sid": "".join(t.title().replace(" ", "").replace("-", "") for t in targets),
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": [_arn(t, bucket, queues) for t in targets],
        }
        for targets, actions in by_targets.items()
    ]
    return {"Version": "2012-10-17", "Statement": statements}
