"""Does the pipeline's bucket, queue and dead-letter queue (and, with
spec.webhook, its delivery queue) exist, and do they keep the contract:
queues as `queue_contract` needs them, variants servable (public-read or a
CDN), originals refused to anonymous readers? With
`provision`, create what is missing and add our configuration first (the
same code as `imagepipe dev`). The operator uses its own AWS identity."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imagepipe.aws import open_anonymous_s3, open_clients
from imagepipe.bucket_rules import effective_public_read, serving_problem
from imagepipe.config import Settings
from imagepipe.lifecycle import ORIGINALS_EXPIRY_DAYS
from imagepipe.privacy import originals_problem
from imagepipe.problems import Problem
from imagepipe.provision import (
    ensure_bucket,
    ensure_delivery_queue,
    ensure_queues,
    http_status,
    is_created_by_us,
    queue_url,
)
from imagepipe.queue_contract import QueueFacts, QueueNeeds, contract_problems, queue_name

from .imagepipeline import ImagePipeline
from .webhookspec import delivery_queue

# A refusal is retried with backoff: 15 s, 30 s, ... up to 10 minutes.
RETRY_FIRST_SECONDS = 15.0
RETRY_MAX_SECONDS = 600.0


@dataclass(frozen=True)
class BackendState:
    ready: bool
    reason: str
    message: str


def retry_delay(retry: int) -> float:
    """Seconds before the next attempt after `retry` failed ones (kopf counts from 0)."""
    return float(min(RETRY_FIRST_SECONDS * 2 ** min(retry, 16), RETRY_MAX_SECONDS))


def backend_state(problems: list[Problem]) -> BackendState:
    """Ready when nothing is wrong; else the first problem's reason, every message."""
    if not problems:
        return BackendState(True, "BackendReady", "bucket, queue and dead-letter queue keep the contract")
    return BackendState(False, problems[0].reason, "; ".join(p.message for p in problems))


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
    try:
        async with AsyncExitStack() as stack:
            settings = settings_for(p)
            s3, sqs = await open_clients(settings, stack)
            problems = await _provision(p, s3, sqs) if p.backend.provision else []
            problems += await _inspect(p, s3, sqs, await open_anonymous_s3(settings, stack))
            problems += await _delivery_queue(p, sqs)
    except (ClientError, BotoCoreError, OSError) as exc:
        return failure_state(exc)
    return backend_state(problems)


def failure_state(exc: Exception) -> BackendState:
    """A call that raised: refused for want of a permission, or the backend unreachable."""
    if isinstance(exc, ClientError) and http_status(exc) in (401, 403):
        message = (
            f"{exc.operation_name} was refused: the operator's AWS identity lacks a permission"
            f" (its policy: the chart README's IAM section): {exc}"
        )
        return BackendState(False, "BackendAccessDenied", message)
    return BackendState(False, "BackendUnreachable", f"S3/SQS check failed: {exc}")


async def _provision(p: ImagePipeline, s3: Any, sqs: Any) -> list[Problem]:
    backend = p.backend
    report = await ensure_bucket(
        s3, backend.bucket, backend.region, backend.public_read, cors_origins=p.ingest.cors_origins
    )
    await ensure_queues(
        sqs,
        queue_name(backend.queue),
        queue_name(backend.dead_letter_queue),
        backend.max_receives,
        backend.visibility_timeout_seconds,
    )
    return list(report.problems)


async def _delivery_queue(p: ImagePipeline, sqs: Any) -> list[Problem]:
    """With spec.webhook: QUEUE-webhooks, created with the job queue under `provision`,
    else checked; either way it must keep an event for the whole horizon."""
    if p.webhook is None:
        return []
    name = queue_name(delivery_queue(p.backend.queue)[1])
    found = await ensure_delivery_queue(sqs, name, p.webhook.horizon(), create=p.backend.provision)
    return list(found.problems)


async def _inspect(p: ImagePipeline, s3: Any, sqs: Any, anonymous_s3: Any) -> list[Problem]:
    backend = p.backend
    try:
        await s3.head_bucket(Bucket=backend.bucket)
    except ClientError as exc:
        if http_status(exc) != 404:
            raise
        return [Problem("BucketMissing", f"bucket {backend.bucket!r} does not exist")]
    queue = await queue_url(sqs, queue_name(backend.queue))
    dlq = await queue_url(sqs, queue_name(backend.dead_letter_queue))
    if queue is None:
        return [Problem("QueueMissing", f"queue {backend.queue!r} does not exist")]
    if dlq is None:
        return [Problem("DeadLetterQueueMissing", f"queue {backend.dead_letter_queue!r} does not exist")]
    needs = QueueNeeds(backend.visibility_timeout_seconds, ORIGINALS_EXPIRY_DAYS)
    problems = contract_problems(await _queue_facts(p, sqs, queue, dlq), needs)
    public_read = effective_public_read(backend.public_read, await is_created_by_us(s3, backend.bucket))
    unservable = serving_problem(backend.bucket, public_read, p.public_url)
    public = await originals_problem(s3, anonymous_s3, backend.bucket)
    return problems + [found for found in (unservable, public) if found]


async def _queue_facts(p: ImagePipeline, sqs: Any, queue: str, dlq: str) -> QueueFacts:
    names = ["RedrivePolicy", "VisibilityTimeout", "MessageRetentionPeriod", "QueueArn"]
    attributes = (await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names))["Attributes"]
    dead = (await sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=names))["Attributes"]
    sources = await sqs.list_dead_letter_source_queues(QueueUrl=dlq)
    return QueueFacts(
        queue=p.backend.queue,
        dead_letter_queue=p.backend.dead_letter_queue,
        attributes=attributes,
        dead_letter_attributes=dead,
        dead_letter_sources=list(sources.get("queueUrls", [])),
    )


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
    url = queue if queue.startswith(("http://", "https://")) else await queue_url(sqs, queue)
    if url is None:
        raise ClientError({"Error": {"Code": "QueueDoesNotExist", "Message": queue}}, "GetQueueUrl")
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=DEPTH_ATTRIBUTES)
    attributes = response.get("Attributes", {})
    return [int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES]
