"""The ingest's decisions as tables: the upload budget (admit, wait, refuse),
each key's token bucket, readiness, and the budget a memory limit leaves."""

from __future__ import annotations

import pytest

from imagepipe.capacity import (
    DEFAULT_UPLOAD_BUDGET_BYTES,
    INGEST_BASE_BYTES,
    MIB,
    budget_from_limit,
    drain_seconds,
    parse_memory_limit,
    termination_grace_seconds,
)
from imagepipe.service.budget import Decision, decide
from imagepipe.service.ratelimit import Bucket, take
from imagepipe.service.readiness import readiness


@pytest.mark.parametrize(
    ("in_use", "charge", "waited", "expected"),
    [
        (0, 100, 0.0, Decision.ADMIT),
        (900, 100, 0.0, Decision.ADMIT),  # exactly full fits
        (901, 100, 0.0, Decision.WAIT),
        (901, 100, 1.9, Decision.WAIT),
        (901, 100, 2.0, Decision.REFUSE),  # waited long enough
        (0, 1001, 0.0, Decision.REFUSE),  # can never fit: no point waiting
        (1000, 1, 0.0, Decision.WAIT),
    ],
)
def test_budget_decision(in_use: int, charge: int, waited: float, expected: Decision) -> None:
    assert decide(in_use, 1000, charge, waited, max_wait=2.0) is expected


@pytest.mark.parametrize(
    ("bucket", "now", "expected_tokens", "expected_wait"),
    [
        (None, 0.0, 4.0, 0.0),  # a new key starts with a full burst
        (Bucket(0.0, 0.0), 0.0, 0.0, 0.5),  # empty: one token in 1/rate
        (Bucket(0.0, 0.0), 0.25, 0.5, 0.25),  # half a token refilled
        (Bucket(0.0, 0.0), 0.5, 0.0, 0.0),  # one token refilled and taken
        (Bucket(4.5, 0.0), 100.0, 4.0, 0.0),  # refill stops at the burst
        (Bucket(1.0, 10.0), 9.0, 0.0, 0.0),  # a clock step back refills nothing
    ],
)
def test_token_bucket(
    bucket: Bucket | None, now: float, expected_tokens: float, expected_wait: float
) -> None:
    after, wait = take(bucket, now, rate=2.0, burst=5)
    assert after == Bucket(expected_tokens, now)
    assert wait == pytest.approx(expected_wait)


def test_a_flooding_key_is_held_to_rate_times_time_plus_burst() -> None:
    bucket, taken = None, 0
    for step in range(1000):  # 1000 attempts over 10 s
        bucket, wait = take(bucket, step / 100, rate=2.0, burst=5)
        taken += wait == 0
    assert taken == 5 + 20 - 1  # burst + rate x elapsed (the last step is at 9.99 s)


@pytest.mark.parametrize(
    ("stopping", "backend_ok", "room", "ready", "code"),
    [
        (False, True, True, True, ""),
        (True, True, True, False, "shutting_down"),
        (False, None, True, False, "backend_unavailable"),
        (False, False, True, False, "backend_unavailable"),
        (False, True, False, False, "overloaded"),
        (True, False, False, False, "shutting_down"),
    ],
)
def test_readiness(stopping: bool, backend_ok: bool | None, room: bool, ready: bool, code: str) -> None:
    state = readiness(stopping, backend_ok, room)
    assert (state.ready, state.code) == (ready, code)


@pytest.mark.parametrize(
    ("text", "limit"),
    [("max\n", None), ("536870912\n", 512 * MIB), ("9223372036854771712", None)],
)
def test_cgroup_memory_limit(text: str, limit: int | None) -> None:
    assert parse_memory_limit(text) == limit


@pytest.mark.parametrize(
    ("limit", "budget"),
    [
        (None, DEFAULT_UPLOAD_BUDGET_BYTES),
        (512 * MIB, 512 * MIB - INGEST_BASE_BYTES),
        (INGEST_BASE_BYTES + 20 * MIB, 20 * MIB),  # exactly one maximum upload, held twice
    ],
)
def test_budget_from_limit(limit: int | None, budget: int) -> None:
    assert budget_from_limit(limit, 10 * MIB) == budget


@pytest.mark.parametrize("limit", [INGEST_BASE_BYTES + 20 * MIB - 1, 64 * MIB])
def test_a_limit_below_base_plus_one_upload_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="less than one maximum upload"):
        budget_from_limit(limit, 10 * MIB)


@pytest.mark.parametrize(
    ("upload_timeout", "grace", "drain", "termination"),
    [(60, 25, 75, 85), (10, 25, 25, 35), (60, 120, 120, 130)],
)
def test_drain_covers_one_whole_upload(upload_timeout: int, grace: int, drain: int, termination: int) -> None:
    assert drain_seconds(upload_timeout, grace) == drain
    assert termination_grace_seconds(5, upload_timeout, grace) == termination
