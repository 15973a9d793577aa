"""reloadpolicy as tables: a new version is read at once, a failed one again
after a doubling delay capped at a minute, for as long as it fails, and a
loaded one not again until it changes."""

from __future__ import annotations

import pytest

from imagepipe.webhooks.reloadpolicy import (
    RETRY_FIRST_SECONDS,
    RETRY_MAX_SECONDS,
    Identity,
    ReloadState,
    after_read,
    read_due,
    retry_delay,
)

A: Identity = (1, 10, 1_000, 40)
B: Identity = (1, 11, 2_000, 80)
MISSING: Identity = ()

DUE: dict[str, tuple[ReloadState, Identity, float, bool]] = {
    # name: (state, identity stat'ed now, now, read?)
    "loaded, unchanged: not read": (ReloadState(A), A, 1e9, False),
    "loaded, a new version: read": (ReloadState(A), B, 0.0, True),
    "loaded, now missing: read (and fails)": (ReloadState(A), MISSING, 0.0, True),
    "failed, unchanged, before the retry: not read": (ReloadState(A, 1, 100.0), A, 99.9, False),
    "failed, unchanged, at the retry: read": (ReloadState(A, 1, 100.0), A, 100.0, True),
    "failed, unchanged, long after: read": (ReloadState(A, 7, 100.0), A, 5000.0, True),
    "failed, a new version before the retry: read at once": (ReloadState(A, 3, 100.0), B, 50.0, True),
    "missing, still missing before the retry: not read": (ReloadState(MISSING, 1, 10.0), MISSING, 9.0, False),
    "missing, back: read": (ReloadState(MISSING, 1, 10.0), A, 9.0, True),
}


@pytest.mark.parametrize("row", sorted(DUE))
def test_read_due(row: str) -> None:
    state, identity, now, due = DUE[row]
    assert read_due(state, identity, now) is due


AFTER: dict[str, tuple[ReloadState, Identity, bool, float, ReloadState]] = {
    # name: (state, identity read, loaded?, now, the state after)
    "loaded: no retry pending": (ReloadState(A, 4, 50.0), B, True, 60.0, ReloadState(B)),
    "loaded after failures of the same version": (ReloadState(A, 4, 50.0), A, True, 60.0, ReloadState(A)),
    "a new version fails: retried after a second": (ReloadState(A), B, False, 10.0, ReloadState(B, 1, 11.0)),
    "the same version fails again: the delay doubles": (
        ReloadState(B, 1, 11.0),
        B,
        False,
        11.0,
        ReloadState(B, 2, 13.0),
    ),
    "a third time: four seconds": (ReloadState(B, 2, 13.0), B, False, 13.0, ReloadState(B, 3, 17.0)),
    "failing for long: a minute at most": (
        ReloadState(B, 30, 0.0),
        B,
        False,
        500.0,
        ReloadState(B, 31, 560.0),
    ),
    "another broken version after many failures: a second again": (
        ReloadState(A, 30, 0.0),
        B,
        False,
        500.0,
        ReloadState(B, 1, 501.0),
    ),
}


@pytest.mark.parametrize("row", sorted(AFTER))
def test_after_read(row: str) -> None:
    state, identity, loaded, now, after = AFTER[row]
    assert after_read(state, identity, loaded, now) == after


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (8, 60.0), (10**6, 60.0)],
)
def test_retry_delay(failures: int, delay: float) -> None:
    assert (RETRY_FIRST_SECONDS, RETRY_MAX_SECONDS) == (1.0, 60.0)
    assert retry_delay(failures) == delay


def test_reads_of_a_file_failing_for_a_day_are_bounded() -> None:
    """Attempts every half second for 24 h read a file that never loads about once a
    minute (not 172,800 times, once per attempt), and go on reading it to the end
    (retries are bounded in rate, not in number)."""
    state, now, reads = ReloadState(A, 1, RETRY_FIRST_SECONDS), 0.0, 0
    while now < 24 * 3600:
        if read_due(state, A, now):
            state, reads = after_read(state, A, False, now), reads + 1
        now += 0.5
    assert 24 * 60 - 10 <= reads <= 24 * 60 + 10
