"""When the deliverer reads its secret file again: a pure decision
(docs/design.md, "Rotating the signing secret").

A new version (its identity changed) is read at once. A version whose read
failed is read again too, after a delay that doubles from one second up to a
minute, for as long as it keeps failing: the fault may not be the file's
content (a kubelet swap caught mid-way, a mode or owner applied after the
files appeared, a passing EMFILE or EIO), and the fix of such a fault changes
neither content nor mtime, so waiting for the next change would leave the old
secrets signing until the next rotation. The delay bounds the reads (one a
minute at most once it is long), not their number: a cap on retries would
bring the stale secret back for any fault that outlasts it, and the failed
reads counted meanwhile are what the alert sees."""

from __future__ import annotations

import math
from dataclasses import dataclass

# Device, inode, mtime (ns) and size of the file's current version; () when it was missing.
Identity = tuple[int, ...]
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0


@dataclass(frozen=True)
class ReloadState:
    # The version last read, or tried.
    seen: Identity
    # Consecutive failed reads of `seen`; 0: the keys signing are its.
    failures: int = 0
    # Monotonic time before which a failed `seen` is not read again.
    retry_at: float = 0.0


def read_due(state: ReloadState, identity: Identity, now: float) -> bool:
    """Whether the file, now of `identity`, is to be read at `now`."""
    if identity != state.seen:
        return True
    return state.failures > 0 and now >= state.retry_at


def after_read(state: ReloadState, identity: Identity, loaded: bool, now: float) -> ReloadState:
    """The state once the version of `identity` was read at `now`, successfully or not."""
    if loaded:
        return ReloadState(identity)
    failures = state.failures + 1 if identity == state.seen else 1
    return ReloadState(identity, failures, now + retry_delay(failures))


def retry_delay(failures: int) -> float:
    """Seconds before the next read of a version that failed `failures` times in a row."""
    # The exponent capped: a file failing for days must not overflow a float.
    doublings = min(failures - 1, math.ceil(math.log2(RETRY_MAX_SECONDS / RETRY_FIRST_SECONDS)))
    return min(RETRY_MAX_SECONDS, math.ldexp(RETRY_FIRST_SECONDS, doublings))
