"""The outbox: producers (consumer, dead-letter sweeper, ingest DELETE) put
each event on the delivery queue once the state it reports is durable; the
deliverer sends it from there. Nothing is POSTed from a producer: a slow or
hostile receiver never holds a render slot or an API request.

Emitting is at least once, never exactly once: a producer emits before it
lets go of what would make it try again (the job message, the dead-letter
message, the 204), and re-emits the CURRENT document's event when it meets a
state that is already final. The event id derives from the state change
(`events.event_id`), so every copy of one change carries one id. A DELETE,
whose 204 is nothing SQS would hand back, first queues a deletion intent
(intents.py) that the deliverer resolves should the emission never come."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError
from prometheus_client import CollectorRegistry, Counter

from imagepipe.config import Settings
from imagepipe.errors import BackendUnavailable
from imagepipe.jobstore.transitions import StatusDoc

from .events import EVENT_TYPES, WebhookEvent, event_for, to_message
from .intents import deletion_intent, intent_due, intent_message, tombstone_deadline

log = logging.getLogger("imagepipe.webhooks")
T = TypeVar("T")
FAILURES = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError)
# What SQS (and moto) answer for a queue that does not exist, by name or by URL.
NO_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


class DeliveryQueueMissing(Exception):
    """Webhooks are on but their delivery queue does not exist: no role may start."""


def events_counter(registry: CollectorRegistry) -> Counter:
    """`imagepipe_webhook_events_total{event}`, every type at zero from start-up."""
    counter = Counter(
        "imagepipe_webhook_events",
        "Webhook events put on the delivery queue, by event type (re-emissions included).",
        ["event"],
        registry=registry,
    )
    for event in EVENT_TYPES:
        counter.labels(event)
    return counter


def event_to_emit(doc: StatusDoc | None, settings: Settings) -> WebhookEvent | None:
    """The event a durable document makes this deployment emit; None: nothing to emit
    (webhooks off, a state that emits none, or a type left out of IMAGEPIPE_WEBHOOK_EVENTS)."""
    if doc is None or not settings.webhooks_enabled:
        return None
    event = event_for(doc, settings.variant_base_url())
    return event if event is not None and event.type in settings.webhook_events else None


def _queue_missing(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    return str(exc.response.get("Error", {}).get("Code", "")) in NO_QUEUE_CODES


class Outbox:
    """The delivery queue as a producer sees it; one per role process."""

    def __init__(self, sqs: Any, settings: Settings, counter: Counter, timeout: float = 15.0) -> None:
        self.sqs, self.settings, self.counter, self.timeout = sqs, settings, counter, timeout
        self.queue_url: str | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.webhooks_enabled

    async def open(self) -> None:
        """Resolve the delivery queue (once): DeliveryQueueMissing when it does not
        exist, BackendUnavailable when SQS does not answer (the caller may try again)."""
        if not self.enabled or self.queue_url is not None:
            return
        url, name = self.settings.webhook_queue()
        try:
            self.queue_url = await self._resolve(url, name)
        except BackendUnavailable as exc:
            if not _queue_missing(exc.__cause__ or exc):
                raise
            raise DeliveryQueueMissing(
                f"the webhook delivery queue {url or name!r} does not exist "
                "(IMAGEPIPE_WEBHOOK_QUEUE_URL or IMAGEPIPE_WEBHOOK_QUEUE_NAME; default: the job "
                "queue's name + '-webhooks'); create it, or unset IMAGEPIPE_WEBHOOK_URL"
            ) from None

    async def _resolve(self, url: str, name: str) -> str:
        # GetQueueUrl for a given URL too (its account and name): the one call,
        # besides SendMessage, that the emitting roles are granted on the queue.
        account = ""
        if url:
            account, name = url.rstrip("/").rsplit("/", 2)[-2:]
        ask = {"QueueName": name, **({"QueueOwnerAWSAccountId": account} if account else {})}
        found = await self._call("delivery queue", self.sqs.get_queue_url(**ask))
        return url or str(found["QueueUrl"])

    async def emit(self, doc: StatusDoc | None) -> WebhookEvent | None:
        """Put the document's event on the delivery queue; the event, or None when none is due.

        Raises BackendUnavailable when it could not: the caller must not let go of
        what would make it try again."""
        event = event_to_emit(doc, self.settings)
        if event is None:
            return None
        await self.open()
        await self._call(
            "send event", self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=to_message(event))
        )
        self.counter.labels(event.type).inc()
        log.info("event emitted", extra={"event_id": event.id, "event": event.type, "job_id": event.job_id})
        return event

    async def intend_deletion(self, job_id: str) -> float | None:
        """Queue the job's deletion intent, hidden for IMAGEPIPE_WEBHOOK_DELETION_CHECK_SECONDS.

        The event-loop time by which the DELETE must have its tombstone (counted from
        before the send, like the intent's `check_at`), or None when its deletion emits
        nothing (no intent, no deadline). BackendUnavailable when the intent could not
        be queued: the DELETE must not tombstone then."""
        if not intent_due(self.settings):
            return None
        window = self.settings.webhook_deletion_check_seconds
        deadline = asyncio.get_running_loop().time() + tombstone_deadline(window)
        intent = deletion_intent(job_id, datetime.now(UTC), window)
        await self.open()
        body = intent_message(intent)
        await self._call(
            "send deletion intent",
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=window),
        )
        log.info("deletion intent queued", extra={"job_id": job_id, "check_at": intent.check_at})
        return deadline

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except FAILURES as exc:
            raise BackendUnavailable(f"delivery queue unavailable ({what}); retry later") from exc
