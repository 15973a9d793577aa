"""The outbox: which documents emit which event (a table), and the outbox
against moto's real SQS on loopback: the message it puts on the delivery
queue, a missing queue refused by name and by URL, an unreachable one told
apart from a missing one, and nothing at all with webhooks off."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import boto3  # type: ignore[import-untyped]
import pytest
from prometheus_client import CollectorRegistry

from imagepipe.aws import open_clients
from imagepipe.config import Settings, load_settings
from imagepipe.errors import BackendUnavailable
from imagepipe.jobstore.documents import public_document
from imagepipe.webhooks.events import event_id, parse_message
from imagepipe.webhooks.outbox import DeliveryQueueMissing, Outbox, event_to_emit, events_counter
from tests.support.backend import CREDENTIALS, MotoServer, free_port

T = TypeVar("T")
JOB = "0b7f3f5e-8f0c-4d2a-9a1e-3c5d7e9f1a2b"
AT = "2026-12-02T07:00:00.000000+00:00"
HOOK = "https://hooks.example.test/imagepipe"
COMPLETED = {
    "job_id": JOB,
    "status": "completed",
    "owner": None,
    "completed_at": AT,
    "variants": {"thumb": {"url": f"http://old.test/bucket/variants/{JOB}/abc/thumb.webp", "width": 8}},
}
FAILED = {"job_id": JOB, "status": "failed", "completed_at": AT, "error": {"code": "corrupt_image"}}
DELETED = {"job_id": JOB, "status": "deleted", "owner": None, "deleted_at": AT}
QUEUED = {"job_id": JOB, "status": "queued", "completed_at": None}
ALL = "image.completed,image.failed,image.deleted"


def settings(endpoint: str = "http://127.0.0.1:9", **env: str) -> Settings:
    return load_settings(
        {
            **CREDENTIALS,
            "IMAGEPIPE_AWS_ENDPOINT_URL": endpoint,
            "IMAGEPIPE_BUCKET": "outbox-test",
            "IMAGEPIPE_QUEUE_NAME": env.pop("queue", "outbox-jobs"),
            "IMAGEPIPE_PUBLIC_URL": "https://cdn.example.test",
            **env,
        }
    )


@pytest.mark.parametrize(
    ("doc", "url", "events", "expected"),
    [
        (COMPLETED, HOOK, ALL, "image.completed"),
        (FAILED, HOOK, ALL, "image.failed"),
        (DELETED, HOOK, ALL, "image.deleted"),
        # States that report nothing, and no document.
        (QUEUED, HOOK, ALL, None),
        ({**QUEUED, "status": "processing"}, HOOK, ALL, None),
        (None, HOOK, ALL, None),
        # Webhooks off: nothing, whatever the state.
        (COMPLETED, "", ALL, None),
        (DELETED, "", ALL, None),
        # Only the chosen types.
        (COMPLETED, HOOK, "image.failed", None),
        (FAILED, HOOK, "image.failed", "image.failed"),
        (DELETED, HOOK, "image.completed,image.failed", None),
        (DELETED, HOOK, "image.deleted", "image.deleted"),
    ],
)
def test_which_documents_emit_which_event(
    doc: dict[str, Any] | None, url: str, events: str, expected: str | None
) -> None:
    env = {"IMAGEPIPE_WEBHOOK_EVENTS": events, **({"IMAGEPIPE_WEBHOOK_URL": url} if url else {})}
    event = event_to_emit(doc, settings(**env))
    assert (event.type if event else None) == expected


def test_the_payload_is_the_public_document_with_a_stable_id() -> None:
    event = event_to_emit(COMPLETED, settings(IMAGEPIPE_WEBHOOK_URL=HOOK))
    assert event is not None
    assert event.id == event_id(JOB, "image.completed", AT)
    assert event.data == public_document(COMPLETED, "https://cdn.example.test")
    assert event.data["variants"]["thumb"]["url"].startswith(f"https://cdn.example.test/variants/{JOB}/")
    assert event_to_emit(dict(COMPLETED), settings(IMAGEPIPE_WEBHOOK_URL=HOOK)) == event


def run(body: Callable[[Any], Awaitable[T]], config: Settings) -> T:
    """`body(sqs)` with an aiobotocore SQS client for these settings."""

    async def main() -> T:
        async with AsyncExitStack() as stack:
            _, sqs = await open_clients(config, stack)
            return await body(sqs)

    return asyncio.run(main())


@pytest.fixture
def delivery_queue(moto: MotoServer) -> tuple[str, str]:
    """A job-queue name and its delivery queue (name + -webhooks), created on moto."""
    name = f"outbox-{uuid.uuid4().hex[:8]}"
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.endpoint)
    url = sqs.create_queue(QueueName=f"{name}-webhooks")["QueueUrl"]
    return name, url


def test_emit_puts_the_event_on_the_delivery_queue(moto: MotoServer, delivery_queue: tuple[str, str]) -> None:
    name, url = delivery_queue
    config = settings(moto.endpoint, queue=name, IMAGEPIPE_WEBHOOK_URL=HOOK)
    counter = events_counter(CollectorRegistry())

    async def emit(sqs: Any) -> tuple[Any, Any, str | None]:
        outbox = Outbox(sqs, config, counter)
        await outbox.open()
        return await outbox.emit(COMPLETED), await outbox.emit(QUEUED), outbox.queue_url

    sent, nothing, resolved = run(emit, config)
    assert resolved == url and nothing is None and sent is not None
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto.endpoint)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [parse_message(m["Body"]) for m in messages] == [sent]
    assert counter.labels("image.completed")._value.get() == 1
    assert counter.labels("image.failed")._value.get() == 0


def test_a_missing_delivery_queue_is_refused_by_name_and_by_url(moto: MotoServer) -> None:
    name = f"outbox-{uuid.uuid4().hex[:8]}"
    by_name = settings(moto.endpoint, queue=name, IMAGEPIPE_WEBHOOK_URL=HOOK)
    by_url = settings(
        moto.endpoint,
        IMAGEPIPE_WEBHOOK_URL=HOOK,
        IMAGEPIPE_WEBHOOK_QUEUE_URL=f"{moto.endpoint}/123456789012/{name}-elsewhere",
    )
    for config, named in ((by_name, f"{name}-webhooks"), (by_url, f"{name}-elsewhere")):

        async def open_(sqs: Any, config: Settings = config) -> None:
            await Outbox(sqs, config, events_counter(CollectorRegistry())).open()

        with pytest.raises(DeliveryQueueMissing, match=named):
            run(open_, config)


def test_an_unreachable_queue_is_unavailable_not_missing() -> None:
    config = settings(f"http://127.0.0.1:{free_port()}", IMAGEPIPE_WEBHOOK_URL=HOOK)

    async def open_(sqs: Any) -> None:
        await Outbox(sqs, config, events_counter(CollectorRegistry()), timeout=5).open()

    with pytest.raises(BackendUnavailable):
        run(open_, config)


def test_with_webhooks_off_nothing_is_asked_of_sqs() -> None:
    # No client at all: any call would raise AttributeError.
    outbox = Outbox(None, settings(), events_counter(CollectorRegistry()))

    async def both() -> Any:
        await outbox.open()
        return await outbox.emit(COMPLETED)

    assert asyncio.run(both()) is None and outbox.queue_url is None
