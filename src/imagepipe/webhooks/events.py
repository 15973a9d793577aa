"""The events a job emits when its state becomes durable, as messages on the
delivery queue (the outbox) and as the payload a receiver gets.

An event's id is derived from the job, the event type and the moment of the
state change: every emission of the same change (a redelivered job message,
a repeated DELETE, the dead-letter sweeper after a worker) carries the same
id, so the deliverer and receivers see one event however often it is sent,
while a job retried and completed again emits a new one."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imagepipe.jobstore.documents import public_document
from imagepipe.jobstore.transitions import COMPLETED, DELETED, FAILED, StatusDoc

IMAGE_COMPLETED, IMAGE_FAILED, IMAGE_DELETED = "image.completed", "image.failed", "image.deleted"
EVENT_TYPES: tuple[str, ...] = (IMAGE_COMPLETED, IMAGE_FAILED, IMAGE_DELETED)
# The job state each event reports, and the document field holding its moment.
EVENT_OF_STATE = {COMPLETED: IMAGE_COMPLETED, FAILED: IMAGE_FAILED, DELETED: IMAGE_DELETED}
MOMENT_FIELD = {COMPLETED: "completed_at", FAILED: "completed_at", DELETED: "deleted_at"}
# Version of an event message on the delivery queue.
EVENT_MESSAGE_VERSION = 1
# The newest message version this deliverer knows (2: the deletion intent,
# imagepipe.webhooks.intents); it leaves a newer one for a newer deliverer.
KNOWN_MESSAGE_VERSION = 2


class BadEvent(ValueError):
    """A delivery-queue message that is not an event of ours."""


class NewerEvent(BadEvent):
    """An event message of a newer version than this deliverer knows."""


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    job_id: str
    # ISO 8601 UTC: when the state change became durable (the delivery horizon counts from it).
    timestamp: str
    # The job's status document as GET returns it.
    data: StatusDoc


def event_id(job_id: str, event_type: str, timestamp: str) -> str:
    digest = hashlib.sha256(f"{job_id}\n{event_type}\n{timestamp}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def event_for(doc: StatusDoc, variant_base_url: str) -> WebhookEvent | None:
    """The event a durable document reports; None for a state that emits none."""
    state, job_id = doc.get("status"), doc.get("job_id")
    event_type = EVENT_OF_STATE.get(state) if isinstance(state, str) else None
    if event_type is None or not isinstance(job_id, str):
        return None
    moment = doc.get(MOMENT_FIELD[str(state)])
    if not isinstance(moment, str):
        return None
    return WebhookEvent(
        id=event_id(job_id, event_type, moment),
        type=event_type,
        job_id=job_id,
        timestamp=moment,
        data=public_document(doc, variant_base_url),
    )


def payload(event: WebhookEvent) -> bytes:
    """The body a receiver gets (the convention's recommended shape: type, timestamp, data)."""
    body = {"type": event.type, "timestamp": event.timestamp, "data": event.data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def to_message(event: WebhookEvent) -> str:
    return json.dumps(
        {
            "v": EVENT_MESSAGE_VERSION,
            "id": event.id,
            "type": event.type,
            "job_id": event.job_id,
            "timestamp": event.timestamp,
            "data": event.data,
        },
        separators=(",", ":"),
    )


def load_message(body: str) -> tuple[int, dict[str, Any]]:
    """A delivery-queue message's version and fields; NewerEvent for a version newer
    than this deliverer knows, BadEvent for anything that is no message of ours."""
    try:
        raw: Any = json.loads(body)
    except ValueError as exc:
        raise BadEvent(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadEvent("not a JSON object")
    version = raw.get("v")
    if not isinstance(version, int) or isinstance(version, bool) or version < EVENT_MESSAGE_VERSION:
        raise BadEvent(f"unknown message version {version!r}")
    if version > KNOWN_MESSAGE_VERSION:
        raise NewerEvent(f"message version {version}; this deliverer knows {KNOWN_MESSAGE_VERSION}")
    return version, raw


def parse_message(body: str) -> WebhookEvent:
    """An event message; NewerEvent for a newer version, BadEvent for anything else."""
    version, raw = load_message(body)
    if version != EVENT_MESSAGE_VERSION:
        raise BadEvent(f"message version {version} is not an event")
    return event_from(raw)


def event_from(raw: dict[str, Any]) -> WebhookEvent:
    """The event in an event message's fields; BadEvent when they are not one."""
    fields = {name: raw.get(name) for name in ("id", "type", "job_id", "timestamp")}
    if not all(isinstance(value, str) and value for value in fields.values()):
        raise BadEvent("id, type, job_id and timestamp must be non-empty strings")
    if fields["type"] not in EVENT_TYPES:
        raise BadEvent(f"unknown event type {fields['type']!r}")
    if not isinstance(raw.get("data"), dict):
        raise BadEvent("data must be a JSON object")
    try:
        datetime.fromisoformat(str(fields["timestamp"]))
    except ValueError:
        raise BadEvent(f"timestamp is not an ISO 8601 time: {fields['timestamp']!r}") from None
    return WebhookEvent(
        id=str(fields["id"]),
        type=str(fields["type"]),
        job_id=str(fields["job_id"]),
        timestamp=str(fields["timestamp"]),
        data=raw["data"],
    )
