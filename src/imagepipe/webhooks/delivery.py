"""One event message, the steps of docs/design.md ("Deliverer") in order:
parse it (a deletion intent is first resolved against the job's status
document: intents.py); read the job's delivery record and stop at an event
already delivered or abandoned; send it (one signed attempt); record the
attempt (compare-and-swap); then delete the message, or hide it until its retry.

The message is settled only after the record is written: a deliverer killed
anywhere in between leaves the message to reappear after its receive
visibility, and the record then says whether the attempt is still owed."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from imagepipe.errors import BackendUnavailable
from imagepipe.jobstore.deliveries import attempts_so_far, is_settled
from imagepipe.jobstore.store import JobStore
from imagepipe.webhooks.deliveryqueue import Received, delete, hide
from imagepipe.webhooks.events import BadEvent, NewerEvent, WebhookEvent
from imagepipe.webhooks.intents import DeletionIntent, Drop, LookAgain, parse_outbox_message, resolve
from imagepipe.webhooks.metrics import DelivererMetrics
from imagepipe.webhooks.outcome import (
    BACKEND_ERROR,
    DELETION_PENDING,
    DUPLICATE,
    NEWER_VERSION,
    NEWER_VERSION_HIDE_SECONDS,
    NOT_DELETED,
    UNPARSEABLE,
    Settle,
    attempt_of,
    settle_after,
)
from imagepipe.webhooks.schedule import Backoff, Delivered, next_step
from imagepipe.webhooks.sender import Sender
from imagepipe.webhooks.signingkeys import SigningKeys

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeliveryEnv:
    """What every delivery of one deliverer shares."""

    sqs: Any
    queue_url: str
    store: JobStore
    sender: Sender
    target_url: str
    # Each signs every attempt (several during a secret rotation); current() per attempt.
    keys: SigningKeys
    backoff: Backoff
    metrics: DelivererMetrics
    # After a job-store failure, the message comes back this much later.
    backend_retry_seconds: int
    # The base of variant URLs in an event resolved from a deletion intent (IMAGEPIPE_PUBLIC_URL).
    variant_base_url: str
    clock: Callable[[], datetime] = utc_now
    random: Callable[[], float] = field(default=random.random)


async def deliver(env: DeliveryEnv, message: Received) -> str:
    """Settle one message; its outcome (imagepipe.webhooks.outcome.OUTCOMES)."""
    try:
        parsed = parse_outbox_message(message.body)
    except NewerEvent as exc:
        log.info("event message for a newer deliverer; left for it", extra=_about(message, exc))
        return await _settle(env, message, Settle(NEWER_VERSION, False, NEWER_VERSION_HIDE_SECONDS))
    except BadEvent as exc:
        log.warning("not an event message; deleted", extra=_about(message, exc))
        return await _settle(env, message, Settle(UNPARSEABLE, delete=True))
    try:
        settle = await _deliver(env, parsed)
    except BackendUnavailable as exc:
        log.warning(
            "job store unavailable; the message comes back",
            extra={"job_id": parsed.job_id, "error": str(exc)},
        )
        settle = Settle(BACKEND_ERROR, False, env.backend_retry_seconds)
    return await _settle(env, message, settle)


async def _deliver(env: DeliveryEnv, parsed: WebhookEvent | DeletionIntent) -> Settle:
    if isinstance(parsed, WebhookEvent):
        return await _attempt(env, parsed)
    resolution = resolve((await env.store.read(parsed.job_id)).doc, parsed, env.clock(), env.variant_base_url)
    if isinstance(resolution, LookAgain):
        return Settle(DELETION_PENDING, False, resolution.seconds)
    if isinstance(resolution, Drop):
        log.info("deletion intent dropped", extra={"job_id": parsed.job_id, "reason": resolution.reason})
        return Settle(NOT_DELETED, delete=True)
    return await _attempt(env, resolution.event)


async def _attempt(env: DeliveryEnv, event: WebhookEvent) -> Settle:
    moment = _moment(event.timestamp)
    record = await env.store.read_deliveries(event.job_id)
    if is_settled(record, event.id):
        return Settle(DUPLICATE, delete=True)
    started = env.clock()
    result = await env.sender.send(env.target_url, env.keys.current(), event)
    env.metrics.attempt_duration.observe(result.duration_seconds)
    decided = env.clock()
    attempts = attempts_so_far(record, event.id) + 1
    decision = next_step(attempts, moment, decided, result, env.backoff, env.random)
    attempt = attempt_of(decision, started, decided, result)
    recorded = await env.store.record_delivery(event.job_id, event.id, event.type, attempt)
    if isinstance(decision, Delivered) and recorded is not None:
        env.metrics.event_age.observe(max(0.0, (decided - moment).total_seconds()))
    log.info(
        "webhook attempt",
        extra={
            "event_id": event.id,
            "job_id": event.job_id,
            "event": event.type,
            "attempts": attempts,
            "state": attempt.state,
            "result": attempt.result,
        },
    )
    return settle_after(decision, recorded is not None)


async def _settle(env: DeliveryEnv, message: Received, settle: Settle) -> str:
    if settle.delete:
        await delete(env.sqs, env.queue_url, message)
    else:
        await hide(env.sqs, env.queue_url, message, settle.hide_seconds)
    env.metrics.deliveries.labels(settle.outcome).inc()
    return settle.outcome


def _moment(timestamp: str) -> datetime:
    """The event's moment (checked by events.event_from); without a zone, UTC."""
    moment = datetime.fromisoformat(timestamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _about(message: Received, exc: Exception) -> dict[str, Any]:
    return {"message_id": message.message_id, "bytes": len(message.body.encode()), "reason": str(exc)}
