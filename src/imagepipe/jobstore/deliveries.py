"""A job's delivery record (`webhooks/{job_id}.json`, written only by the
deliverer): per event id, its state, attempts and last result. One pure
function moves it by one attempt; the job store writes the result with a
compare-and-swap and decides again on a lost race.

    (none) ──attempt──▶ pending ──attempt──▶ pending
                           │                   │
                           ├── 2xx ──▶ delivered   (final)
                           └── given up ──▶ abandoned   (final)

A delivered or abandoned event never changes again: a duplicate message, or
an attempt that raced with another deliverer's success, leaves it as it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PENDING, DELIVERED, ABANDONED = "pending", "delivered", "abandoned"
SETTLED = frozenset({DELIVERED, ABANDONED})
# {"job_id": ..., "deliveries": {event id: {...}}}
DeliveryRecord = dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """One attempt and what was decided after it."""

    # ISO 8601 UTC, when the attempt started.
    at: str
    # What the receiver answered: {"status": 503}, or why there was no answer: {"error": "timeout"}.
    result: dict[str, Any]
    # PENDING (retried later), DELIVERED or ABANDONED.
    state: str
    # When the retry is due (PENDING only).
    next_attempt_at: str | None = None


def event_state(record: DeliveryRecord | None, event_id: str) -> str | None:
    """The event's state in the record; None before its first attempt."""
    delivery = _deliveries(record).get(event_id)
    state = delivery.get("state") if isinstance(delivery, dict) else None
    return state if isinstance(state, str) else None


def attempts_so_far(record: DeliveryRecord | None, event_id: str) -> int:
    delivery = _deliveries(record).get(event_id) or {}
    attempts = delivery.get("attempts")
    return attempts if isinstance(attempts, int) else 0


def is_settled(record: DeliveryRecord | None, event_id: str) -> bool:
    return event_state(record, event_id) in SETTLED


def record_attempt(
    record: DeliveryRecord | None, job_id: str, event_id: str, event_type: str, attempt: Attempt
) -> DeliveryRecord | None:
    """The record with `attempt` counted; None when the event is already settled (nothing to write)."""
    if attempt.state not in (PENDING, *SETTLED):
        raise ValueError(f"unknown delivery state {attempt.state!r}")
    if is_settled(record, event_id):
        return None
    deliveries = _deliveries(record)
    previous = deliveries.get(event_id) or {}
    delivery = {
        "event": event_type,
        "state": attempt.state,
        "attempts": attempts_so_far(record, event_id) + 1,
        "first_attempt_at": previous.get("first_attempt_at") or attempt.at,
        "last_attempt_at": attempt.at,
        "last_result": dict(attempt.result),
        "next_attempt_at": attempt.next_attempt_at if attempt.state == PENDING else None,
        "delivered_at": attempt.at if attempt.state == DELIVERED else None,
    }
    return {"job_id": job_id, "deliveries": {**deliveries, event_id: delivery}}


def listed(record: DeliveryRecord | None) -> list[dict[str, Any]]:
    """Each delivery with its event `id`, oldest first attempt first (what GET shows)."""
    found = [{"id": event_id, **delivery} for event_id, delivery in _deliveries(record).items()]
    return sorted(found, key=lambda delivery: (str(delivery.get("first_attempt_at") or ""), delivery["id"]))


def _deliveries(record: DeliveryRecord | None) -> dict[str, Any]:
    found = (record or {}).get("deliveries")
    return {k: v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}
