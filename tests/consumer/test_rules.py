"""The consumer's failure rules as a table: (trouble, receive count, the
queue's maxReceiveCount, shutting down) → action."""

from __future__ import annotations

import pytest

from imagepipe.consumer.rules import Action, Trouble, decide, release_visibility

P, T, INT, N, B, E = (
    Trouble.PERMANENT,
    Trouble.TRANSIENT,
    Trouble.INTERRUPTED,
    Trouble.NEWER_VERSION,
    Trouble.BAD_MESSAGE,
    Trouble.EVENT_UNSENT,
)
BASE = 30


@pytest.mark.parametrize(
    ("trouble", "count", "max_receives", "shutting_down", "expected"),
    [
        # A bad image fails at once, on any receive, shutting down or not.
        (P, 1, 5, False, Action("corrupt_image", delete=True)),
        (P, 5, 5, False, Action("corrupt_image", delete=True)),
        (P, 2, 5, True, Action("corrupt_image", delete=True)),
        # Transient faults: hand back with a growing visibility...
        (T, 1, 5, False, Action(None, delete=False, visibility=30)),
        (T, 3, 5, False, Action(None, delete=False, visibility=120)),
        (T, 4, 5, False, Action(None, delete=False, visibility=240)),
        # ...at once when shutting down (another consumer takes it)...
        (T, 2, 5, True, Action(None, delete=False, visibility=0)),
        (INT, 1, 5, True, Action(None, delete=False, visibility=0)),
        (INT, 4, 5, False, Action(None, delete=False, visibility=0)),
        # ...and on the last receive the failure is recorded first, shutting down or not.
        (T, 5, 5, False, Action("retries_exhausted", delete=False, visibility=0)),
        (T, 7, 5, False, Action("retries_exhausted", delete=False, visibility=0)),
        (T, 1, 1, False, Action("retries_exhausted", delete=False, visibility=0)),
        (INT, 5, 5, True, Action("retries_exhausted", delete=False, visibility=0)),
        (T, 3, 3, True, Action("retries_exhausted", delete=False, visibility=0)),
        # Messages that are not ours to process never touch a job.
        (N, 1, 5, False, Action(None, delete=False, visibility=60)),
        (N, 5, 5, False, Action(None, delete=False, visibility=900)),
        (N, 2, 5, True, Action(None, delete=False, visibility=120)),
        (B, 1, 5, False, Action(None, delete=False, visibility=1)),
        (B, 3, 3, False, Action(None, delete=False, visibility=4)),
        # A final job whose event is not on the delivery queue yet: handed back, never
        # failed, on the last receive too (the sweeper re-emits from the dead-letter queue).
        (E, 1, 5, False, Action(None, delete=False, visibility=30)),
        (E, 3, 5, False, Action(None, delete=False, visibility=120)),
        (E, 5, 5, False, Action(None, delete=False, visibility=480)),
        (E, 2, 5, True, Action(None, delete=False, visibility=0)),
    ],
)
def test_failure_rules(
    trouble: Trouble, count: int, max_receives: int, shutting_down: bool, expected: Action
) -> None:
    assert decide(trouble, count, max_receives, shutting_down, BASE, code="corrupt_image") == expected


def test_release_visibility_grows_and_is_capped() -> None:
    assert [release_visibility(n, 30) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 240, 480]
    assert release_visibility(10, 30) == 900
    assert release_visibility(1, 1) == 1 and release_visibility(0, 1) == 1
