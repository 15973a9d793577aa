"""The deletion intent: what the deliverer does with one given the job's
document (a table), its message read back, bad ones named, and when a DELETE
queues one at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from imagepipe.config import load_settings
from imagepipe.jobstore.transitions import StatusDoc
from imagepipe.webhooks.events import BadEvent, event_for, event_id, to_message
from imagepipe.webhooks.intents import (
    DeletionIntent,
    Drop,
    LookAgain,
    Resolution,
    Send,
    deletion_intent,
    intent_due,
    intent_message,
    parse_outbox_message,
    resolve,
    tombstone_deadline,
)
from tests.support.backend import CREDENTIALS

JOB = "0b7f3f5e-8f0c-4d2a-9a1e-3c5d7e9f1a2b"
BASE = "https://cdn.example.test"
QUEUED_AT = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
INTENT = deletion_intent(JOB, QUEUED_AT, 120)
DELETED_AT = "2026-12-02T07:00:00.040000+00:00"
TOMBSTONE = {"job_id": JOB, "status": "deleted", "owner": "alice", "deleted_at": DELETED_AT}
COMPLETED = {
    "job_id": JOB,
    "status": "completed",
    "completed_at": "2026-12-02T06:59:00+00:00",
    "variants": {},
}


def at(seconds: float) -> datetime:
    return QUEUED_AT + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("doc", "now", "expected"),
    [
        # Deleted: the tombstone's own event, whenever it is looked at.
        (TOMBSTONE, at(120), Send(event_for(TOMBSTONE, BASE))),  # type: ignore[arg-type]
        (TOMBSTONE, at(5), Send(event_for(TOMBSTONE, BASE))),  # type: ignore[arg-type]
        (TOMBSTONE, at(86_400), Send(event_for(TOMBSTONE, BASE))),  # type: ignore[arg-type]
        # Not deleted yet, within the window: looked at again at check_at (a whole second at least).
        (COMPLETED, at(100), LookAgain(20)),
        (COMPLETED, at(119.5), LookAgain(1)),
        ({**COMPLETED, "status": "queued"}, at(0), LookAgain(120)),
        ({**COMPLETED, "status": "processing"}, at(60.2), LookAgain(60)),
        # Not deleted once the window is over: the DELETE failed before its tombstone.
        (COMPLETED, at(120), Drop("not deleted")),
        ({**COMPLETED, "status": "failed"}, at(3600), Drop("not deleted")),
        # No document (never stored, or an expired tombstone): nothing to report.
        (None, at(0), Drop("no such job")),
        (None, at(500), Drop("no such job")),
        # A tombstone without its moment has no event id.
        ({"job_id": JOB, "status": "deleted"}, at(120), Drop("tombstone without deleted_at")),
    ],
)
def test_what_a_deliverer_does_with_an_intent(
    doc: StatusDoc | None, now: datetime, expected: Resolution
) -> None:
    assert resolve(doc, INTENT, now, BASE) == expected


def test_the_event_sent_from_an_intent_is_the_one_the_delete_emits() -> None:
    """Same id, type, moment and payload as the ingest's own emission of that tombstone."""
    resolved = resolve(TOMBSTONE, INTENT, at(120), BASE)
    assert isinstance(resolved, Send)
    assert resolved.event == event_for(TOMBSTONE, "https://another-base.test")
    assert resolved.event.id == event_id(JOB, "image.deleted", DELETED_AT)
    assert resolved.event.data == TOMBSTONE


def test_an_intent_message_reads_back() -> None:
    assert DeletionIntent(JOB, "2026-12-02T07:00:00.000+00:00", "2026-12-02T07:02:00.000+00:00") == INTENT
    assert parse_outbox_message(intent_message(INTENT)) == INTENT
    event = event_for(TOMBSTONE, BASE)
    assert event is not None and parse_outbox_message(to_message(event)) == event


def intent_body(**fields: object) -> str:
    return json.dumps({**json.loads(intent_message(INTENT)), **fields})


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (intent_body(intent="rename"), "unknown intent 'rename'"),
        (intent_body(job_id=""), "non-empty"),
        (intent_body(check_at=7), "non-empty"),
        (intent_body(check_at="soon"), "ISO 8601"),
        (intent_body(check_at="2026-12-02T07:02:00"), "ISO 8601"),
    ],
)
def test_bad_intents_are_named(body: str, says: str) -> None:
    with pytest.raises(BadEvent, match=says):
        parse_outbox_message(body)


@pytest.mark.parametrize(
    ("env", "due"),
    [
        ({}, False),
        ({"IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.test/x"}, True),
        (
            {
                "IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.test/x",
                "IMAGEPIPE_WEBHOOK_EVENTS": "image.deleted",
            },
            True,
        ),
        (
            {
                "IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.test/x",
                "IMAGEPIPE_WEBHOOK_EVENTS": "image.completed,image.failed",
            },
            False,
        ),
    ],
)
def test_only_a_delete_that_emits_queues_an_intent(env: dict[str, str], due: bool) -> None:
    settings = load_settings({**CREDENTIALS, "IMAGEPIPE_BUCKET": "b", "IMAGEPIPE_QUEUE_NAME": "q", **env})
    assert intent_due(settings) is due


def test_the_tombstone_has_half_the_window() -> None:
    assert tombstone_deadline(120) == 60
    assert tombstone_deadline(1) == 0.5
