"""What follows an attempt: the event is delivered, tried again in so many
seconds, or given up. A pure decision (docs/design.md, "Retry schedule").

Every failed attempt is retried until the horizon, whatever the failure:
like Standard Webhooks' reference senders, Svix and Stripe, we take any
non-2xx answer as "not yet". A 4xx is usually a receiver being deployed or
misconfigured (a rotated secret, a route not yet there), which its operators
fix within hours; an unsafe target or a name that does not resolve can
change with DNS. Giving up early would lose events a fix would have saved,
and the horizon bounds the cost.

The delay doubles from IMAGEPIPE_WEBHOOK_BACKOFF_SECONDS up to
IMAGEPIPE_WEBHOOK_BACKOFF_MAX_SECONDS, with "equal jitter": half the delay
fixed, half random, so deliverers retrying after one outage spread out while
no delay collapses towards zero. A receiver's Retry-After (429, 503) is
honoured up to the maximum. Delays are whole seconds, at least one, at most
12 hours: what SQS ChangeMessageVisibility takes."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from imagepipe.config import MAX_WEBHOOK_BACKOFF_SECONDS, Settings
from imagepipe.webhooks.sender import AttemptResult

# The answers whose Retry-After is a receiver asking for time.
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Backoff:
    first_seconds: float
    max_seconds: float
    # How long after the event's own moment it is still attempted.
    horizon_seconds: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(
            first_seconds=settings.webhook_backoff_seconds,
            max_seconds=settings.webhook_backoff_max_seconds,
            horizon_seconds=settings.webhook_horizon_seconds,
        )


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class RetryIn:
    seconds: int


@dataclass(frozen=True)
class GiveUp:
    reason: str


Decision = Delivered | RetryIn | GiveUp


def next_step(
    attempts: int,
    event_time: datetime,
    now: datetime,
    result: AttemptResult,
    backoff: Backoff,
    random: Callable[[], float],
) -> Decision:
    """After the `attempts`-th attempt (counting this one) ended in `result`.
    `random` returns a float in [0, 1) (random.random in production)."""
    if result.delivered:
        return Delivered()
    left = (event_time + timedelta(seconds=backoff.horizon_seconds) - now).total_seconds()
    if left < 1:
        return GiveUp(f"horizon of {backoff.horizon_seconds} s reached after {attempts} attempts")
    # The last retry lands on the horizon's edge rather than beyond it.
    return RetryIn(min(delay_seconds(attempts, result, backoff, random), math.floor(left)))


def delay_seconds(attempts: int, result: AttemptResult, backoff: Backoff, random: Callable[[], float]) -> int:
    """The wait before the next attempt: doubling, capped, with equal jitter."""
    # Capped before the power is taken: attempts is unbounded, a float is not.
    doublings = min(max(attempts - 1, 0), 64)
    base = min(backoff.max_seconds, backoff.first_seconds * 2.0**doublings)
    delay = base / 2 + random() * base / 2
    if result.status in RETRY_AFTER_STATUSES and result.retry_after_seconds is not None:
        delay = max(delay, min(result.retry_after_seconds, backoff.max_seconds))
    return max(1, min(math.ceil(delay), MAX_WEBHOOK_BACKOFF_SECONDS))
