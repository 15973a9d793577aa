"""Does the pipeline's bucket, queue and dead-letter queue (with a redrive
policy to it) exist? With `provision`, create what is missing first (the
same code as `imagepipe dev`). The operator uses its own AWS identity."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imagepipe.aws import open_clients
from imagepipe.config import Settings
from imagepipe.provision import ensure_bucket, ensure_queues

from .imagepipeline import ImagePipeline


@dataclass(frozen=True)
class BackendState:
    ready: bool
    reason: str
    message: str


def queue_name(queue: str) -> str:
    """A queue name from a name or a URL (its last path segment)."""
    return queue.rstrip("/").rsplit("/", 1)[-1]


def settings_for(p: ImagePipeline) -> Settings:
    backend = p.backend
    return Settings(
        bucket=backend.bucket,
        queue_name=queue_name(backend.queue),
        s3_endpoint_url=backend.endpoint_url,
        sqs_endpoint_url=backend.endpoint_url,
        region=backend.region,
    )


async def check_backend(p: ImagePipeline) -> BackendState:
    backend = p.backend
    try:
        async with AsyncExitStack() as stack:
            s3, sqs = await open_clients(settings_for(p), stack)
            if backend.provision:
                await ensure_bucket(s3, backend.bucket, backend.region)
                await ensure_queues(
                    sqs,
                    queue_name(backend.queue),
                    queue_name(backend.dead_letter_queue),
                    backend.max_receives,
                    backend.visibility_timeout_seconds,
                )
            return await _inspect(p, s3, sqs)
    except (ClientError, BotoCoreError, OSError) as exc:
        return BackendState(False, "BackendUnreachable", f"S3/SQS check failed: {exc}")


async def _inspect(p: ImagePipeline, s3: Any, sqs: Any) -> BackendState:
    backend = p.backend
    try:
        await s3.head_bucket(Bucket=backend.bucket)
    except ClientError:
        return BackendState(False, "BucketMissing", f"bucket {backend.bucket!r} does not exist")
    queue_url = await _queue_url(sqs, backend.queue)
    dlq_url = await _queue_url(sqs, backend.dead_letter_queue)
    if queue_url is None:
        return BackendState(False, "QueueMissing", f"queue {backend.queue!r} does not exist")
    if dlq_url is None:
        message = f"queue {backend.dead_letter_queue!r} does not exist"
        return BackendState(False, "DeadLetterQueueMissing", message)
    attributes = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    dlq = await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = json.loads(attributes.get("Attributes", {}).get("RedrivePolicy", "{}"))
    if redrive.get("deadLetterTargetArn") != dlq["Attributes"]["QueueArn"]:
        message = f"queue {backend.queue!r} has no redrive policy to {backend.dead_letter_queue!r}"
        return BackendState(False, "NoRedrivePolicy", message)
    return BackendState(True, "BackendReady", "bucket, queue and dead-letter queue exist")


async def _queue_url(sqs: Any, queue: str) -> str | None:
    try:
        url: str = (await sqs.get_queue_url(QueueName=queue_name(queue)))["QueueUrl"]
    except ClientError:
        return None
    return url


@dataclass(frozen=True)
class QueueDepth:
    """SQS's approximate message counts of the job queue and its dead-letter queue."""

    visible: int
    in_flight: int
    delayed: int
    dead_letter: int

    @property
    def total(self) -> int:
        """Every message not yet deleted from the job queue (the arrival balance uses it)."""
        return self.visible + self.in_flight + self.delayed


DEPTH_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


async def read_queue_depth(p: ImagePipeline) -> QueueDepth:
    """The queue's and the DLQ's counts; raises ClientError/BotoCoreError/OSError when unreachable."""
    async with AsyncExitStack() as stack:
        _, sqs = await open_clients(settings_for(p), stack)
        counts = await _attributes(sqs, p.backend.queue)
        dead = await _attributes(sqs, p.backend.dead_letter_queue)
    return QueueDepth(visible=counts[0], in_flight=counts[1], delayed=counts[2], dead_letter=dead[0])


async def _attributes(sqs: Any, queue: str) -> list[int]:
    url = queue if queue.startswith(("http://", "https://")) else await _queue_url(sqs, queue)
    if url is None:
        raise ClientError({"Error": {"Code": "QueueDoesNotExist", "Message": queue}}, "GetQueueUrl")
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=DEPTH_ATTRIBUTES)
    attributes = response.get("Attributes", {})
    return [int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES]
