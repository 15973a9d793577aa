"""What follows an attempt, as tables: the record entry each decision writes,
and what then happens to the message and which outcome is counted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imagepipe.jobstore.deliveries import ABANDONED, DELIVERED, PENDING
from imagepipe.webhooks.outcome import (
    ABANDONED_OUTCOME,
    DELIVERED_OUTCOME,
    DUPLICATE,
    RETRIED,
    Settle,
    attempt_of,
    settle_after,
)
from imagepipe.webhooks.schedule import Decision, Delivered, GiveUp, RetryIn
from imagepipe.webhooks.sender import AttemptResult

STARTED = datetime(2026, 12, 2, 7, 0, 0, 250000, tzinfo=UTC)
DECIDED = datetime(2026, 12, 2, 7, 0, 1, tzinfo=UTC)
OK = AttemptResult(True, 204, None, "", 0.75, "")
UNAVAILABLE = AttemptResult(False, 503, None, "", 0.5, "busy")
REFUSED = AttemptResult(False, None, "connection_refused", "[Errno 111]", 0.001, "")
NO_ANSWER = {"error": "connection_refused", "detail": "[Errno 111]", "duration_ms": 1}


@pytest.mark.parametrize(
    ("decision", "result", "state", "last_result", "next_attempt_at"),
    [
        (Delivered(), OK, DELIVERED, {"status": 204, "duration_ms": 750}, None),
        (RetryIn(30), UNAVAILABLE, PENDING, {"status": 503, "duration_ms": 500, "body": "busy"},
         "2026-12-02T07:00:31.000Z"),
        (RetryIn(1), REFUSED, PENDING,
         NO_ANSWER, "2026-12-02T07:00:02.000Z"),
        (GiveUp("horizon"), REFUSED, ABANDONED,
         {**NO_ANSWER, "gave_up": "horizon"}, None),
    ],
)  # fmt: skip
def test_the_entry_an_attempt_writes(
    decision: Decision,
    result: AttemptResult,
    state: str,
    last_result: dict[str, object],
    next_attempt_at: str | None,
) -> None:
    attempt = attempt_of(decision, STARTED, DECIDED, result)
    assert attempt.at == "2026-12-02T07:00:00.250Z", "the attempt's own start"
    assert (attempt.state, attempt.result, attempt.next_attempt_at) == (state, last_result, next_attempt_at)


@pytest.mark.parametrize(
    ("decision", "recorded", "settle"),
    [
        (Delivered(), True, Settle(DELIVERED_OUTCOME, delete=True)),
        (RetryIn(40), True, Settle(RETRIED, delete=False, hide_seconds=40)),
        (GiveUp("horizon"), True, Settle(ABANDONED_OUTCOME, delete=True)),
        # Another deliverer settled the event while this attempt ran.
        (Delivered(), False, Settle(DUPLICATE, delete=True)),
        (RetryIn(40), False, Settle(DUPLICATE, delete=True)),
        (GiveUp("horizon"), False, Settle(DUPLICATE, delete=True)),
    ],
)
def test_what_happens_to_the_message(decision: Decision, recorded: bool, settle: Settle) -> None:
    assert settle_after(decision, recorded) == settle
