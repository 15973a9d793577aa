"""Webhook events: one id per state change however often it is emitted, the
payload is the document as GET returns it, and the delivery-queue message
round-trips while anything else is refused by name."""

from __future__ import annotations

import json

import pytest

from imagepipe.jobstore.documents import public_document
from imagepipe.webhooks.events import (
    IMAGE_COMPLETED,
    IMAGE_DELETED,
    IMAGE_FAILED,
    KNOWN_MESSAGE_VERSION,
    BadEvent,
    NewerEvent,
    event_for,
    parse_message,
    payload,
    to_message,
)

JOB = "0b6f2f4c-8d3e-4b5a-9c1d-2e3f4a5b6c7d"
BASE = "https://cdn.example.com"
COMPLETED_DOC = {
    "job_id": JOB,
    "status": "completed",
    "completed_at": "2026-12-02T07:00:00.000Z",
    "variants": {
        "medium": {
            "url": f"http://127.0.0.1:5000/bucket/variants/{JOB}/abc/medium.webp",
            "width": 800,
            "height": 600,
            "format": "webp",
            "method": "fit",
        }
    },
}


def test_the_same_state_change_keeps_its_id_and_another_gets_a_new_one() -> None:
    first, again = event_for(COMPLETED_DOC, BASE), event_for(dict(COMPLETED_DOC), BASE)
    assert first is not None and again is not None and first.id == again.id
    assert first.id.startswith("msg_") and first.type == IMAGE_COMPLETED
    retried = event_for({**COMPLETED_DOC, "completed_at": "2026-12-02T08:00:00.000Z"}, BASE)
    assert retried is not None and retried.id != first.id


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"job_id": JOB, "status": "failed", "completed_at": "2026-12-02T07:00:00Z"}, IMAGE_FAILED),
        ({"job_id": JOB, "status": "deleted", "deleted_at": "2026-12-02T07:00:00Z"}, IMAGE_DELETED),
        ({"job_id": JOB, "status": "queued", "completed_at": None}, None),
        ({"job_id": JOB, "status": "processing"}, None),
        ({"job_id": JOB, "status": "completed", "completed_at": None}, None),
        ({"status": "completed", "completed_at": "2026-12-02T07:00:00Z"}, None),
    ],
)
def test_only_final_durable_states_emit(doc: dict[str, object], expected: str | None) -> None:
    event = event_for(doc, BASE)
    assert (event.type if event else None) == expected


def test_payload_carries_the_document_as_get_returns_it() -> None:
    event = event_for(COMPLETED_DOC, BASE)
    assert event is not None
    body = json.loads(payload(event))
    assert body == {
        "type": IMAGE_COMPLETED,
        "timestamp": COMPLETED_DOC["completed_at"],
        "data": public_document(COMPLETED_DOC, BASE),
    }
    assert body["data"]["variants"]["medium"]["url"].startswith(f"{BASE}/variants/{JOB}/")
    assert body["data"]["srcset"] == {"webp": f"{BASE}/variants/{JOB}/abc/medium.webp 800w"}


def test_message_round_trips() -> None:
    event = event_for(COMPLETED_DOC, BASE)
    assert event is not None and parse_message(to_message(event)) == event


def message(**fields: object) -> str:
    base = {"v": 1, "id": "m", "type": IMAGE_FAILED, "job_id": "j", "timestamp": "t", "data": {}}
    return json.dumps({**base, **fields})


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"v": 0}', "unknown message version 0"),
        ('{"v": true}', "unknown message version True"),
        (message(v=2, intent="deletion"), "is not an event"),
        (message(timestamp="yesterday"), "ISO 8601"),
        (message(id=""), "non-empty"),
        (message(type="image.resized"), "image.resized"),
        (message(data=[]), "data"),
    ],
)
def test_bad_messages_are_named(body: str, says: str) -> None:
    with pytest.raises(BadEvent, match=says) as caught:
        parse_message(body)
    assert not isinstance(caught.value, NewerEvent)


def test_a_newer_version_is_told_apart() -> None:
    with pytest.raises(NewerEvent):
        parse_message(f'{{"v": {KNOWN_MESSAGE_VERSION + 1}, "id": "m"}}')
