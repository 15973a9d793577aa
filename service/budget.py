"""The upload budget: the bytes of uploads one ingest holds at once.

An upload is charged before its body is read when it declares its length, and
as its bytes arrive otherwise (chunked, or decoded bytes beyond the declared
length). A charge that does not fit waits briefly for uploads in flight to
finish, then the upload is refused with 503 `overloaded`: waiting happens
before the client has sent its body (the `100 Continue` is sent only after
the charge), so a waiting upload costs no memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time

from imagepipe.capacity import HELD_COPIES
from imagepipe.errors import Overloaded

# How long a charge that does not fit may wait for room.
WAIT_SECONDS = 2.0
RETRY_AFTER_SECONDS = 2


class Decision(enum.Enum):
    ADMIT = "admit"
    WAIT = "wait"
    REFUSE = "refuse"


def decide(in_use: int, budget: int, charge: int, waited: float, max_wait: float) -> Decision:
    """Whether a charge of `charge` bytes fits now, may wait, or is refused."""
    if in_use + charge <= budget:
        return Decision.ADMIT
    if charge > budget or waited >= max_wait:
        return Decision.REFUSE
    return Decision.WAIT


def overloaded(budget: int) -> Overloaded:
    return Overloaded(
        f"this ingest holds as many uploads as its budget allows ({budget} bytes); retry shortly",
        RETRY_AFTER_SECONDS,
    )


class UploadBudget:
    """Owns the count of bytes charged; `Charge` objects add to and release it.
    Each byte of upload is charged HELD_COPIES times (capacity.py)."""

    def __init__(self, budget: int, max_wait: float = WAIT_SECONDS) -> None:
        self.budget, self.max_wait = budget, max_wait
        self.in_use = 0
        # Set (and replaced) whenever bytes are given back: wakes every waiter.
        self._freed = asyncio.Event()

    def has_room(self, upload_bytes: int) -> bool:
        return self.in_use + HELD_COPIES * upload_bytes <= self.budget

    def charge(self) -> Charge:
        return Charge(self)

    async def _take(self, amount: int) -> None:
        started = time.monotonic()
        while True:
            waited = time.monotonic() - started
            decision = decide(self.in_use, self.budget, amount, waited, self.max_wait)
            if decision is Decision.ADMIT:
                self.in_use += amount
                return
            if decision is Decision.REFUSE:
                raise overloaded(self.budget)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.max_wait - waited):
                    await self._freed.wait()

    def _give_back(self, amount: int) -> None:
        # Synchronous: it runs in `finally` blocks, also of cancelled handlers.
        self.in_use -= amount
        self._freed.set()
        self._freed = asyncio.Event()


class Charge:
    """One upload's share of the budget: grows to cover its bytes, released once."""

    def __init__(self, budget: UploadBudget) -> None:
        self._budget = budget
        self.held = 0

    async def cover(self, upload_bytes: int) -> None:
        """Hold enough for `upload_bytes` of upload (waits, or raises Overloaded)."""
        total = HELD_COPIES * upload_bytes
        if total > self.held:
            await self._budget._take(total - self.held)
            self.held = total

    def release(self) -> None:
        held, self.held = self.held, 0
        if held:
            self._budget._give_back(held)
