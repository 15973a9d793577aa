"""What follows each step of an event message, as pure functions: the entry an
attempt's decision writes in the delivery record, and what then happens to
the message (deleted, or hidden until its retry is due) with the outcome
counted in `imagepipe_webhook_deliveries_total`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from imagepipe.jobstore.deliveries import ABANDONED, DELIVERED, PENDING, Attempt
from imagepipe.webhooks.schedule import Decision, Delivered, GiveUp, RetryIn
from imagepipe.webhooks.sender import AttemptResult

# Outcomes of a message: sent and accepted, sent and retried later, given up at
# the horizon, already settled (a duplicate emission or a raced attempt), not an
# event (deleted), an event of a newer message version (left for a newer
# deliverer), the job store failing around an attempt (the message comes back),
# received while stopping (handed back unsent), and a deletion intent whose job is
# not deleted yet (looked at again) or will not be (deleted unsent: intents.py).
DELIVERED_OUTCOME, RETRIED, ABANDONED_OUTCOME, DUPLICATE = "delivered", "retried", "abandoned", "duplicate"
UNPARSEABLE, NEWER_VERSION, BACKEND_ERROR, HANDED_BACK = (
    "unparseable",
    "newer_version",
    "backend_error",
    "handed_back",
)
DELETION_PENDING, NOT_DELETED = "deletion_pending", "not_deleted"
OUTCOMES = (
    DELIVERED_OUTCOME,
    RETRIED,
    ABANDONED_OUTCOME,
    DUPLICATE,
    UNPARSEABLE,
    NEWER_VERSION,
    BACKEND_ERROR,
    HANDED_BACK,
    DELETION_PENDING,
    NOT_DELETED,
)
# A newer deliverer may be rolling out: look again this much later.
NEWER_VERSION_HIDE_SECONDS = 300


@dataclass(frozen=True)
class Settle:
    """What happens to the message: deleted, or visible again in `hide_seconds`."""

    outcome: str
    delete: bool
    hide_seconds: int = 0


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def attempt_of(decision: Decision, started: datetime, decided: datetime, result: AttemptResult) -> Attempt:
    """The record entry of an attempt started at `started` and decided at `decided`."""
    outcome = result.as_record()
    if isinstance(decision, Delivered):
        return Attempt(iso(started), outcome, DELIVERED)
    if isinstance(decision, RetryIn):
        due = decided + timedelta(seconds=decision.seconds)
        return Attempt(iso(started), outcome, PENDING, next_attempt_at=iso(due))
    return Attempt(iso(started), {**outcome, "gave_up": decision.reason}, ABANDONED)


def settle_after(decision: Decision, recorded: bool) -> Settle:
    """After the attempt's record write; `recorded` False: the event was settled meanwhile."""
    if not recorded:
        return Settle(DUPLICATE, delete=True)
    if isinstance(decision, Delivered):
        return Settle(DELIVERED_OUTCOME, delete=True)
    if isinstance(decision, GiveUp):
        return Settle(ABANDONED_OUTCOME, delete=True)
    return Settle(RETRIED, delete=False, hide_seconds=decision.seconds)
