"""The consumer's failure rules as one pure function: (what went wrong, the
receive count, the queue's maxReceiveCount, shutting down or not) → what to
do with the job and its message. `job.py` only carries the action out.

- A bad image (a permanent core error) or a missing original fails the job
  at once and the message is deleted: retrying cannot help.
- Anything else is retried: the message is handed back with a visibility
  that doubles with each receive (at once when shutting down, so another
  consumer takes it).
- On the last receive the redrive policy allows, the job is recorded as
  failed (`retries_exhausted`) before the message is handed back; the
  redrive policy moves it to the dead-letter queue, whose sweeper deletes it.
- A job whose final state is durable but whose webhook event could not be
  put on the delivery queue is never failed: its message is handed back
  like a transient fault's, on the last receive too (its redelivery, or the
  dead-letter sweeper, finds the job final and emits the event again).
- A message from a newer producer is left for a newer consumer (a visibility
  of at least a minute); an unparseable one is handed back quickly, so that
  the redrive policy moves it to the dead-letter queue. Neither touches a job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

RETRIES_EXHAUSTED = "retries_exhausted"
# SQS caps a visibility timeout at 12 hours; ours stop growing at 15 minutes.
MAX_VISIBILITY_SECONDS = 43_200
RELEASE_CAP_SECONDS = 900
NEWER_VERSION_MIN_SECONDS = 60


class Trouble(Enum):
    PERMANENT = "permanent"  # a bad image, a missing original
    TRANSIENT = "transient"  # a backend fault, a timeout, a crashed render worker
    INTERRUPTED = "interrupted"  # the job was cut off by a shutdown
    NEWER_VERSION = "newer_version"  # a message this consumer must not process
    BAD_MESSAGE = "bad_message"  # a message that is not a job at all
    EVENT_UNSENT = "event_unsent"  # the job is final, its webhook event not on the delivery queue


@dataclass(frozen=True)
class Action:
    # Record the job as failed with this code first (None: leave the job as it is).
    fail_with: str | None
    # Delete the message; otherwise hand it back hidden for `visibility` seconds.
    delete: bool
    visibility: int = 0


def release_visibility(receive_count: int, base: int, cap: int = RELEASE_CAP_SECONDS) -> int:
    """Seconds a handed-back message stays hidden: base·2^(n-1), capped.

    Grows with each receive so a long outage is ridden out with few receives.
    """
    seconds = base * 2 ** max(0, receive_count - 1)
    return int(min(cap, MAX_VISIBILITY_SECONDS, max(1, seconds)))


def decide(
    trouble: Trouble,
    receive_count: int,
    max_receives: int,
    shutting_down: bool,
    release_base: int,
    code: str = "internal",
) -> Action:
    """What to do after `trouble` on receive `receive_count` of at most `max_receives`.

    `code` is the error's code, recorded for a permanent failure.
    """
    if trouble is Trouble.PERMANENT:
        return Action(fail_with=code, delete=True)
    if trouble is Trouble.NEWER_VERSION:
        return Action(
            None, False, release_visibility(receive_count, max(NEWER_VERSION_MIN_SECONDS, release_base))
        )
    if trouble is Trouble.BAD_MESSAGE:
        return Action(None, False, release_visibility(receive_count, 1))
    if trouble is Trouble.EVENT_UNSENT:
        return Action(None, False, 0 if shutting_down else release_visibility(receive_count, release_base))
    if receive_count >= max_receives:
        # The next receive would move the message to the dead-letter queue.
        return Action(fail_with=RETRIES_EXHAUSTED, delete=False, visibility=0)
    if shutting_down or trouble is Trouble.INTERRUPTED:
        return Action(None, False, 0)
    return Action(None, False, release_visibility(receive_count, release_base))
