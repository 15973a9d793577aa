"""The status document's life as one pure function: (current document,
event) → the new document, or a refusal naming the state that refused it.

    (none) ──Queue──▶ queued ──Start──▶ processing ──Complete──▶ completed
                        │  ▲              │  ▲ Start (redelivery)
                        │  └──Retry──┐    │──┘
                        └──Fail──▶ failed ◀──Fail──┘
    queued | processing | completed | failed ──Delete──▶ deleted

`completed` and `failed` are final for workers: only a Delete leaves
`completed`, and only an explicit Retry (an operator's `imagepipe jobs
retry`) leaves `failed`. `deleted` is final: it keeps the owner and the time,
nothing else, and reads as 404. The store applies a decision with a
compare-and-swap write and decides again when another writer won.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

QUEUED, PROCESSING, COMPLETED = "queued", "processing", "completed"
FAILED, DELETED = "failed", "deleted"
# The state of a job whose status document does not exist.
MISSING = "missing"
STATES = (MISSING, QUEUED, PROCESSING, COMPLETED, FAILED, DELETED)
StatusDoc = dict[str, Any]


@dataclass(frozen=True)
class Queue:
    """Ingest creates the job (the whole new document)."""

    doc: StatusDoc


@dataclass(frozen=True)
class Start:
    """A worker begins an attempt (the message's receive count)."""

    attempt: int
    at: str


@dataclass(frozen=True)
class Complete:
    source: dict[str, Any] | None
    # Variant name → url, width, height, format, bytes.
    variants: dict[str, Any]
    timings: dict[str, float]
    at: str
    # The placeholder fields (imagepipe.placeholders); None when the pipeline turns them off.
    placeholder: dict[str, Any] | None = None


@dataclass(frozen=True)
class Fail:
    code: str
    message: str
    at: str


@dataclass(frozen=True)
class Delete:
    at: str


@dataclass(frozen=True)
class Retry:
    at: str


Event = Queue | Start | Complete | Fail | Delete | Retry


@dataclass(frozen=True)
class Refused:
    # The state that refused the event (a STATES value): the metric's label.
    reason: str


# Event → the states it may leave. Everything else is refused.
ALLOWED: dict[type, frozenset[str]] = {
    Queue: frozenset({MISSING}),
    Start: frozenset({QUEUED, PROCESSING}),
    Complete: frozenset({PROCESSING}),
    Fail: frozenset({QUEUED, PROCESSING}),
    Delete: frozenset({QUEUED, PROCESSING, COMPLETED, FAILED}),
    Retry: frozenset({FAILED}),
}


def state_of(doc: StatusDoc | None) -> str:
    if doc is None:
        return MISSING
    state = doc.get("status")
    return state if isinstance(state, str) and state in STATES else MISSING


def decide(current: StatusDoc | None, event: Event) -> StatusDoc | Refused:
    state = state_of(current)
    if state not in ALLOWED[type(event)]:
        return Refused(state)
    return _apply(current or {}, event)


def _apply(doc: StatusDoc, event: Event) -> StatusDoc:
    match event:
        case Queue(doc=new):
            return dict(new)
        case Start(attempt=attempt, at=at):
            return {**doc, "status": PROCESSING, "started_at": at, "attempts": attempt}
        case Complete(source=source, variants=variants, timings=timings, at=at, placeholder=placeholder):
            return {
                **doc,
                "status": COMPLETED,
                "source": source if source is not None else doc.get("source"),
                "variants": variants,
                "placeholder": placeholder,
                "error": None,
                "completed_at": at,
                "timings": {stage: round(seconds, 4) for stage, seconds in timings.items()},
            }
        case Fail(code=code, message=message, at=at):
            return {**doc, "status": FAILED, "error": {"code": code, "message": message}, "completed_at": at}
        case Delete(at=at):
            return {
                "job_id": doc.get("job_id"),
                "status": DELETED,
                "owner": doc.get("owner"),
                "deleted_at": at,
            }
        case Retry(at=at):
            return {
                **doc,
                "status": QUEUED,
                "error": None,
                "started_at": None,
                "completed_at": None,
                "attempts": 0,
                "retried_at": at,
                "retries": int(doc.get("retries") or 0) + 1,
            }
    raise AssertionError(f"unknown event {event!r}")
