"""The retry schedule as a table: doubling with equal jitter, capped, the
receiver's Retry-After honoured up to the cap, never beyond the horizon,
whole seconds SQS accepts; every failure retried until the horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from imagepipe.config import MAX_WEBHOOK_BACKOFF_SECONDS, Settings
from imagepipe.webhooks.schedule import (
    Backoff,
    Decision,
    Delivered,
    GiveUp,
    RetryIn,
    delay_seconds,
    next_step,
)
from imagepipe.webhooks.sender import CONNECTION_REFUSED, REDIRECT, TIMEOUT, UNSAFE_TARGET, AttemptResult

EVENT = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
DEFAULT = Backoff(first_seconds=5, max_seconds=600, horizon_seconds=86400)


def answer(status: int | None, error: str | None = None, retry_after: int | None = None) -> AttemptResult:
    delivered = status is not None and 200 <= status < 300
    return AttemptResult(delivered, status, error, "", 0.01, "", retry_after)


def low() -> float:
    return 0.0


def high() -> float:
    return 0.999999


def after(seconds: float) -> datetime:
    return EVENT + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("attempts", "now", "result", "random", "backoff", "expected"),
    [
        # Any 2xx is delivered, even past the horizon.
        (1, after(1), answer(200), low, DEFAULT, Delivered()),
        (3, after(90000), answer(204), low, DEFAULT, Delivered()),
        # Equal jitter: between half the doubled delay and all of it.
        (1, after(1), answer(500), low, DEFAULT, RetryIn(3)),  # 2.5 rounded up
        (1, after(1), answer(500), high, DEFAULT, RetryIn(5)),
        (2, after(10), answer(503), low, DEFAULT, RetryIn(5)),
        (2, after(10), answer(503), high, DEFAULT, RetryIn(10)),
        (5, after(100), answer(None, TIMEOUT), low, DEFAULT, RetryIn(40)),
        (5, after(100), answer(None, TIMEOUT), high, DEFAULT, RetryIn(80)),
        # Capped at the maximum (5 * 2**7 = 640 > 600), however many attempts.
        (8, after(1000), answer(502), low, DEFAULT, RetryIn(300)),
        (8, after(1000), answer(502), high, DEFAULT, RetryIn(600)),
        (400, after(5000), answer(502), high, DEFAULT, RetryIn(600)),
        # Every failure is retried: 4xx of every kind, redirects, unsafe targets.
        (1, after(1), answer(400), low, DEFAULT, RetryIn(3)),
        (1, after(1), answer(401), low, DEFAULT, RetryIn(3)),
        (1, after(1), answer(410), low, DEFAULT, RetryIn(3)),
        (1, after(1), answer(302, REDIRECT), low, DEFAULT, RetryIn(3)),
        (1, after(1), answer(None, UNSAFE_TARGET), low, DEFAULT, RetryIn(3)),
        (1, after(1), answer(None, CONNECTION_REFUSED), low, DEFAULT, RetryIn(3)),
        # Retry-After of a 429 or 503 is honoured, up to the maximum; not on other answers.
        (1, after(1), answer(429, retry_after=120), low, DEFAULT, RetryIn(120)),
        (1, after(1), answer(503, retry_after=7200), low, DEFAULT, RetryIn(600)),
        (8, after(1000), answer(429, retry_after=10), high, DEFAULT, RetryIn(600)),
        (1, after(1), answer(500, retry_after=120), low, DEFAULT, RetryIn(3)),
        # Never past the horizon: the last retry lands on its edge, then it is given up.
        (9, after(86400 - 100), answer(500), high, DEFAULT, RetryIn(100)),
        (9, after(86400 - 100.5), answer(500), high, DEFAULT, RetryIn(100)),
        (
            10,
            after(86400 - 0.5),
            answer(500),
            high,
            DEFAULT,
            GiveUp("horizon of 86400 s reached after 10 attempts"),
        ),
        (
            10,
            after(86400),
            answer(500),
            high,
            DEFAULT,
            GiveUp("horizon of 86400 s reached after 10 attempts"),
        ),
        (
            2,
            after(90000),
            answer(None, TIMEOUT),
            low,
            DEFAULT,
            GiveUp("horizon of 86400 s reached after 2 attempts"),
        ),
        # Sub-second settings still give whole seconds, at least one.
        (1, after(0), answer(500), low, Backoff(0.1, 0.5, 60), RetryIn(1)),
        # The longest settings stay within SQS's 12 hours.
        (30, after(10), answer(500), high, Backoff(43200, 43200, 13 * 86400), RetryIn(43200)),
    ],
)
def test_next_step(
    attempts: int, now: datetime, result: AttemptResult, random: object, backoff: Backoff, expected: Decision
) -> None:
    assert callable(random)
    assert next_step(attempts, EVENT, now, result, backoff, random) == expected


@pytest.mark.parametrize("attempts", range(1, 40))
def test_every_delay_is_whole_seconds_sqs_accepts_and_never_below_half(attempts: int) -> None:
    base = min(600, 5 * 2 ** (attempts - 1))
    for random in (low, high, lambda: 0.5):
        delay = delay_seconds(attempts, answer(500), DEFAULT, random)
        assert isinstance(delay, int) and 1 <= delay <= MAX_WEBHOOK_BACKOFF_SECONDS
        assert base / 2 <= delay <= base


def test_a_whole_schedule_ends_at_the_horizon() -> None:
    """Attempting at every decided moment: retries stop at the horizon, not before, not after."""
    backoff, moment, attempts = Backoff(5, 600, 3600), EVENT, 0
    while True:
        attempts += 1
        decision = next_step(attempts, EVENT, moment, answer(500), backoff, high)
        if isinstance(decision, GiveUp):
            break
        assert isinstance(decision, RetryIn)
        moment += timedelta(seconds=decision.seconds)
        assert moment <= EVENT + timedelta(seconds=3600)
    assert moment == EVENT + timedelta(seconds=3600)
    # Waits of 5 10 20 40 80 160 320, then 600 four times, then the 565 s left: 13 attempts.
    assert attempts == 13


def test_backoff_from_settings() -> None:
    settings = Settings(
        bucket="b",
        queue_name="q",
        webhook_backoff_seconds=2,
        webhook_backoff_max_seconds=60,
        webhook_horizon_seconds=600,
    )
    assert Backoff.from_settings(settings) == Backoff(2, 60, 600)
