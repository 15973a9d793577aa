"""The deletion intent: what makes `image.deleted` survive an ingest that dies
between its tombstone and its emission (docs/design.md, "The deletion intent").

A DELETE that will emit puts an intent on the delivery queue BEFORE it writes
the tombstone, hidden (SQS DelaySeconds) until `check_at`, and writes the
tombstone only within half of that window (else 503). The deliverer then
resolves the intent against the job's status document, never a copy:

- deleted: `image.deleted` from the tombstone itself, so its id (derived from
  `deleted_at`) is the one the DELETE's own emission carries, and the
  delivery record settles whichever copy comes second;
- not deleted before `check_at`: looked at again at `check_at`;
- not deleted at `check_at`, or no document: dropped, nothing is sent (the
  DELETE failed before its tombstone and answered 503).

The intent is message version 2: a deliverer of version 1 leaves it for a
newer one, as it does every newer message."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from imagepipe.config import Settings
from imagepipe.jobstore.transitions import DELETED, StatusDoc, state_of

from .events import (
    EVENT_MESSAGE_VERSION,
    IMAGE_DELETED,
    BadEvent,
    WebhookEvent,
    event_for,
    event_from,
    load_message,
)

INTENT_MESSAGE_VERSION = 2
# What an intent message says it is (room for other intents in version 2).
DELETION = "deletion"


@dataclass(frozen=True)
class DeletionIntent:
    job_id: str
    # ISO 8601 UTC: when the DELETE put the intent on the queue.
    requested_at: str
    # ISO 8601 UTC: from then on a job not deleted is taken as a DELETE that failed.
    check_at: str


@dataclass(frozen=True)
class Send:
    """Deliver this event (the tombstone's), like any event message."""

    event: WebhookEvent


@dataclass(frozen=True)
class LookAgain:
    """The job is not deleted yet but its DELETE may still tombstone it."""

    seconds: int


@dataclass(frozen=True)
class Drop:
    """No deletion to report: delete the intent unsent."""

    reason: str


Resolution = Send | LookAgain | Drop


def intent_due(settings: Settings) -> bool:
    """Whether a DELETE of this deployment puts an intent first: only when its deletion emits."""
    return settings.webhooks_enabled and IMAGE_DELETED in settings.webhook_events


def tombstone_deadline(window_seconds: int) -> float:
    """Seconds a DELETE has for its tombstone after it queued the intent; the other half of
    the window is the margin for a write cut at the deadline that S3 still applies."""
    return window_seconds / 2


def deletion_intent(job_id: str, now: datetime, window_seconds: int) -> DeletionIntent:
    return DeletionIntent(job_id, _iso(now), _iso(now + timedelta(seconds=window_seconds)))


def intent_message(intent: DeletionIntent) -> str:
    return json.dumps(
        {
            "v": INTENT_MESSAGE_VERSION,
            "intent": DELETION,
            "job_id": intent.job_id,
            "requested_at": intent.requested_at,
            "check_at": intent.check_at,
        },
        separators=(",", ":"),
    )


def parse_outbox_message(body: str) -> WebhookEvent | DeletionIntent:
    """An event or a deletion intent; NewerEvent for a newer version, BadEvent otherwise."""
    version, raw = load_message(body)
    if version == EVENT_MESSAGE_VERSION:
        return event_from(raw)
    if raw.get("intent") != DELETION:
        raise BadEvent(f"unknown intent {raw.get('intent')!r}")
    fields = {name: raw.get(name) for name in ("job_id", "requested_at", "check_at")}
    if not all(isinstance(value, str) and value for value in fields.values()):
        raise BadEvent("job_id, requested_at and check_at must be non-empty strings")
    intent = DeletionIntent(str(fields["job_id"]), str(fields["requested_at"]), str(fields["check_at"]))
    try:
        _moment(intent.check_at)
    except ValueError:
        raise BadEvent(f"check_at is not an ISO 8601 time: {intent.check_at!r}") from None
    return intent


def resolve(
    doc: StatusDoc | None, intent: DeletionIntent, now: datetime, variant_base_url: str
) -> Resolution:
    """What a deliverer does with a deletion intent, given the job's document now."""
    if state_of(doc) == DELETED:
        assert doc is not None
        event = event_for(doc, variant_base_url)
        return Send(event) if event is not None else Drop("tombstone without deleted_at")
    if doc is None:
        return Drop("no such job")
    left = (_moment(intent.check_at) - now).total_seconds()
    if left > 0:
        return LookAgain(max(1, math.ceil(left)))
    return Drop("not deleted")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
