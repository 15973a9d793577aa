"""The status document's transitions as a table: every state × every event,
either the new state or the refusal (named after the refusing state)."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe.jobstore.transitions import (
    COMPLETED,
    DELETED,
    FAILED,
    MISSING,
    PROCESSING,
    QUEUED,
    STATES,
    Complete,
    Delete,
    Event,
    Fail,
    Queue,
    Refused,
    Retry,
    Start,
    decide,
)

AT = "2026-01-02T03:04:05.000Z"
NEW = {"job_id": "j", "status": QUEUED, "owner": "alice", "attempts": 0, "variants": {}}
EVENTS: dict[str, Event] = {
    "queue": Queue(NEW),
    "start": Start(attempt=2, at=AT),
    "complete": Complete(
        source={"width": 1}, variants={"thumbnail": {"url": "u"}}, timings={"resize": 0.12345}, at=AT
    ),
    "fail": Fail("corrupt_image", "bad", AT),
    "delete": Delete(AT),
    "retry": Retry(AT),
}
# (state, event) → the state after it; absent: refused by that state.
ALLOWED = {
    (MISSING, "queue"): QUEUED,
    (QUEUED, "start"): PROCESSING,
    (PROCESSING, "start"): PROCESSING,
    (PROCESSING, "complete"): COMPLETED,
    (QUEUED, "fail"): FAILED,
    (PROCESSING, "fail"): FAILED,
    (QUEUED, "delete"): DELETED,
    (PROCESSING, "delete"): DELETED,
    (COMPLETED, "delete"): DELETED,
    (FAILED, "delete"): DELETED,
    (FAILED, "retry"): QUEUED,
}


def doc_in(state: str) -> dict[str, Any] | None:
    if state == MISSING:
        return None
    if state == DELETED:
        return {"job_id": "j", "status": DELETED, "owner": "alice", "deleted_at": AT}
    return {**NEW, "status": state, "error": {"code": "x", "message": "y"} if state == FAILED else None}


@pytest.mark.parametrize("event", sorted(EVENTS))
@pytest.mark.parametrize("state", STATES)
def test_every_state_and_event(state: str, event: str) -> None:
    decided = decide(doc_in(state), EVENTS[event])
    if (state, event) in ALLOWED:
        assert not isinstance(decided, Refused)
        assert decided["status"] == ALLOWED[(state, event)]
    else:
        assert decided == Refused(state)


def test_completed_and_deleted_are_never_left_by_a_worker() -> None:
    for state in (COMPLETED, DELETED, FAILED):
        for event in ("start", "complete", "fail"):
            assert isinstance(decide(doc_in(state), EVENTS[event]), Refused), (state, event)


def test_deleted_keeps_only_owner_and_time() -> None:
    decided = decide({**NEW, "status": COMPLETED, "variants": {"a": {}}}, Delete(AT))
    assert decided == {"job_id": "j", "status": DELETED, "owner": "alice", "deleted_at": AT}


def test_complete_records_variants_and_rounded_timings() -> None:
    decided = decide(doc_in(PROCESSING), EVENTS["complete"])
    assert not isinstance(decided, Refused)
    assert decided["variants"] == {"thumbnail": {"url": "u"}} and decided["completed_at"] == AT
    assert decided["timings"] == {"resize": 0.1235} and decided["error"] is None


def test_retry_clears_the_failure_and_counts_retries() -> None:
    decided = decide(doc_in(FAILED), Retry(AT))
    assert not isinstance(decided, Refused)
    assert decided["error"] is None and decided["attempts"] == 0 and decided["retries"] == 1


def test_unknown_status_value_reads_as_missing() -> None:
    assert decide({"status": "weird"}, Start(1, AT)) == Refused(MISSING)
