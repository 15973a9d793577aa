"""Create what a pipeline needs in S3 and SQS when it is missing, and add our
configuration to a bucket without replacing its owner's: the bucket (tagged
as ours when we create it), our lifecycle rules merged by ID, the
`variants/*` public-read policy only where it is wanted and nothing else
holds the policy, the job queue and its dead-letter queue with a redrive
policy. Every configuration write is read back: some S3-compatible servers
answer 200 and store nothing. Used by `imagepipe dev` and by the operator
when `provision` is on; production stacks usually own these in
infrastructure code instead. The decisions live in `bucket_rules.py`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from imagepipe.bucket_rules import (
    CREATED_PUBLIC_ACCESS_BLOCK,
    CREATED_TAG,
    decide_policy,
    effective_public_read,
    has_public_read,
    lifecycle_lost,
    merge_lifecycle,
    policy_conflict,
    public_access_problem,
    variants_cors_rule,
)
from imagepipe.lifecycle import lifecycle_rules
from imagepipe.problems import Problem
from imagepipe.queue_contract import delivery_queue_problems

# SQS's longest retention: a dead-lettered message (and an undelivered webhook event) waits as long as it can.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
BucketStep = Callable[[Any, str, bool], Awaitable[list[Problem]]]


@dataclass(frozen=True)
class BucketReport:
    created_by_us: bool
    public_read: bool
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Queues:
    queue_url: str
    dlq_url: str
    dlq_arn: str
    # The webhook delivery queue, where it was provisioned too ("" otherwise).
    webhook_queue_url: str = ""


@dataclass(frozen=True)
class DeliveryQueue:
    """The webhook delivery queue: its URL (None when missing and not created) and what does not fit."""

    url: str | None
    problems: tuple[Problem, ...]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _unsupported(exc: ClientError) -> bool:
    return http_status(exc) == 501 or error_code(exc) == "NotImplemented"


async def _optional(call: Awaitable[dict[str, Any]], absent: set[str]) -> dict[str, Any] | None:
    """A configuration read; None when the bucket has none (error codes in `absent`)."""
    try:
        return await call
    except ClientError as exc:
        if error_code(exc) in absent:
            return None
        raise


async def ensure_bucket(
    s3: Any, bucket: str, region: str, public_read: bool | None = None, cors_origins: tuple[str, ...] = ()
) -> BucketReport:
    """Create the bucket if missing, then run each configuration step (and the
    variants' CORS rule when origins are named); refusals and unsupported or
    unstored writes come back as problems, never raised."""
    try:
        created = await _create_if_missing(s3, bucket, region, public_read)
        created_by_us = created or await is_created_by_us(s3, bucket)
    except ClientError as exc:
        return BucketReport(False, False, (_refused(exc, bucket, "creating or reading the bucket"),))
    public = effective_public_read(public_read, created_by_us)
    problems: list[Problem] = []
    for step in BUCKET_STEPS:
        try:
            problems += await step(s3, bucket, public)
        except ClientError as exc:
            problems.append(_refused(exc, bucket, step.__name__.replace("_", " ")))
    if cors_origins:
        try:
            problems += await merge_cors_rule(s3, bucket, cors_origins)
        except ClientError as exc:
            problems.append(_refused(exc, bucket, "merging the variants' CORS rule"))
    return BucketReport(created_by_us, public, tuple(problems))


def _refused(exc: ClientError, bucket: str, what: str) -> Problem:
    operation = exc.operation_name
    if _unsupported(exc):
        return Problem(
            "ConfigurationUnsupported",
            f"the S3 server does not implement {operation} ({what}, bucket {bucket!r}): configure it by hand",
        )
    return Problem("ProvisionRefused", f"{operation} on bucket {bucket!r} was refused ({what}): {exc}")


def _not_stored(bucket: str, operation: str, detail: str) -> Problem:
    return Problem(
        "ConfigurationNotStored",
        f"the S3 server answered OK to {operation} on bucket {bucket!r} but a read-back shows {detail}:"
        " it does not store that configuration",
    )


async def _create_if_missing(s3: Any, bucket: str, region: str, public_read: bool | None) -> bool:
    try:
        await s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if http_status(exc) != 404:
            raise
    args: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    await s3.create_bucket(**args)
    await s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [CREATED_TAG]})
    if public_read is not False:
        try:
            # New AWS buckets block public policies; on our own bucket, allow ours.
            await s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=CREATED_PUBLIC_ACCESS_BLOCK
            )
        except ClientError as exc:
            if not _unsupported(exc):
                raise
    return True


async def is_created_by_us(s3: Any, bucket: str) -> bool:
    """Whether the bucket carries our creation tag (a server without tagging: no)."""
    try:
        tags = await _optional(s3.get_bucket_tagging(Bucket=bucket), {"NoSuchTagSet"})
    except ClientError as exc:
        if _unsupported(exc):
            return False
        raise
    return CREATED_TAG in (tags or {}).get("TagSet", [])


async def merge_lifecycle_rules(s3: Any, bucket: str, public_read: bool) -> list[Problem]:
    absent = {"NoSuchLifecycleConfiguration"}
    existing = await _optional(s3.get_bucket_lifecycle_configuration(Bucket=bucket), absent)
    merged = merge_lifecycle((existing or {}).get("Rules", []), lifecycle_rules())
    if merged is None:
        return []
    await s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": merged})
    stored = await _optional(s3.get_bucket_lifecycle_configuration(Bucket=bucket), absent)
    lost = lifecycle_lost((stored or {}).get("Rules", []), merged)
    if lost:
        return [_not_stored(bucket, "PutBucketLifecycleConfiguration", f"rules {lost} missing")]
    return []


async def merge_cors_rule(s3: Any, bucket: str, origins: tuple[str, ...]) -> list[Problem]:
    """Our CORS rule for variants merged by ID into the owner's rules, read back."""
    absent = {"NoSuchCORSConfiguration"}
    ours = [variants_cors_rule(origins)]
    existing = await _optional(s3.get_bucket_cors(Bucket=bucket), absent)
    merged = merge_lifecycle((existing or {}).get("CORSRules", []), ours)
    if merged is None:
        return []
    await s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": merged})
    stored = await _optional(s3.get_bucket_cors(Bucket=bucket), absent)
    lost = lifecycle_lost((stored or {}).get("CORSRules", []), ours)
    if lost:
        return [_not_stored(bucket, "PutBucketCors", f"rules {lost} missing")]
    return []


async def read_policy(s3: Any, bucket: str) -> dict[str, Any] | None:
    found = await _optional(s3.get_bucket_policy(Bucket=bucket), {"NoSuchBucketPolicy"})
    return None if found is None else dict(json.loads(found["Policy"]))


async def read_public_access_block(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket's Block Public Access settings (a server without them: none)."""
    try:
        found = await _optional(
            s3.get_public_access_block(Bucket=bucket), {"NoSuchPublicAccessBlockConfiguration"}
        )
    except ClientError as exc:
        if _unsupported(exc):
            return None
        raise
    return None if found is None else dict(found["PublicAccessBlockConfiguration"])


async def write_public_read_policy(s3: Any, bucket: str, public_read: bool) -> list[Problem]:
    blocked = public_access_problem(bucket, await read_public_access_block(s3, bucket), public_read)
    if blocked:
        return [blocked]
    decision = decide_policy(await read_policy(s3, bucket), bucket, public_read)
    if decision.action == "conflict":
        return [policy_conflict(bucket)]
    if decision.action == "put":
        await s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(decision.document))
        if not has_public_read(await read_policy(s3, bucket), bucket):
            return [_not_stored(bucket, "PutBucketPolicy", "no public-read statement")]
    if decision.action == "delete":
        await s3.delete_bucket_policy(Bucket=bucket)
        if await read_policy(s3, bucket) is not None:
            return [_not_stored(bucket, "DeleteBucketPolicy", "the policy still there")]
    return []


# Each step reads the bucket's configuration, adds ours and reads it back.
BUCKET_STEPS: tuple[BucketStep, ...] = (merge_lifecycle_rules, write_public_read_policy)


async def queue_url(sqs: Any, name: str) -> str | None:
    try:
        url: str = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in MISSING_QUEUE:
            return None
        raise
    return url


async def ensure_queues(
    sqs: Any, queue_name: str, dlq_name: str, max_receives: int, visibility_timeout: int
) -> Queues:
    """Create a missing queue or dead-letter queue; add a redrive policy to a
    queue without one. An existing queue's settings are never changed (the
    queue contract reports what does not fit)."""
    dlq_url = await queue_url(sqs, dlq_name)
    if dlq_url is None:
        attributes = {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
        dlq_url = (await sqs.create_queue(QueueName=dlq_name, Attributes=attributes))["QueueUrl"]
    found = await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    dlq_arn = str(found["Attributes"]["QueueArn"])
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})
    url = await queue_url(sqs, queue_name)
    if url is None:
        attributes = {
            "VisibilityTimeout": str(visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": redrive,
        }
        url = str((await sqs.create_queue(QueueName=queue_name, Attributes=attributes))["QueueUrl"])
    else:
        current = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        if "RedrivePolicy" not in current.get("Attributes", {}):
            await sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": redrive})
    return Queues(queue_url=url, dlq_url=str(dlq_url), dlq_arn=dlq_arn)


async def ensure_delivery_queue(
    sqs: Any, name: str, horizon_seconds: int, create: bool = True
) -> DeliveryQueue:
    """The webhook delivery queue (the outbox of events), created when missing and `create`:
    14 days' retention, no redrive policy. An existing queue is never changed; what does not
    fit the horizon comes back as problems (`queue_contract.delivery_queue_problems`)."""
    url = await queue_url(sqs, name)
    if url is None:
        if not create:
            return DeliveryQueue(None, (Problem("WebhookQueueMissing", f"queue {name!r} does not exist"),))
        attributes = {
            "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
            "ReceiveMessageWaitTimeSeconds": "20",
        }
        url = str((await sqs.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"])
    found = await sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["MessageRetentionPeriod", "RedrivePolicy"]
    )
    problems = delivery_queue_problems(name, found.get("Attributes", {}), horizon_seconds)
    return DeliveryQueue(url, tuple(problems))
