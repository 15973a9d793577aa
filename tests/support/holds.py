"""Holding one HTTP exchange at the fault proxy (faultproxy.py), so that a
test can freeze a client at an exact point of its protocol, act, then let it
go on.

    hold = proxy.hold(b"PUT /bucket/jobs/ID.json", after=b"PUT /bucket/variants/ID/")
    hold.wait_held(1, timeout=60)   # the client is frozen there now
    ...                             # race it
    hold.release()

A hold matches requests by bytes of the request stream (a request line,
typically), from the moment its `after` bytes have passed through (on any
connection) or at once. It freezes either the request before the server sees
it, or, with `response=True`, the server's final answer after the server has
acted on the request: interim `1xx` answers (`100 Continue`) still pass, so
the client sends its body. Every match is held until `release()`; later ones
pass.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time

# Interim answers, passed through while a final answer is held.
INTERIM = re.compile(rb"HTTP/1\.[01] 1\d\d[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n")
STATUS_PREFIX = b"HTTP/1.1 1"


def split_interim(buffer: bytes) -> tuple[bytes, bytes, bool]:
    """(leading interim answers, the rest, whether the rest may still be one
    that has not fully arrived)."""
    end = 0
    while match := INTERIM.match(buffer, end):
        end = match.end()
    rest = buffer[end:]
    head = rest[: len(STATUS_PREFIX)]
    incomplete = (len(rest) < len(STATUS_PREFIX) and STATUS_PREFIX.startswith(head)) or (
        bool(re.match(rb"HTTP/1\.[01] 1", rest)) and b"\r\n\r\n" not in rest
    )
    return buffer[:end], rest, incomplete


class Hold:
    """Matches and counts held exchanges; lives in the proxy's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pattern: bytes, after: bytes | None, response: bool):
        self.loop, self.pattern, self.after, self.response = loop, pattern, after, response
        self.armed = after is None
        self.released = asyncio.Event()
        self._held = 0
        self._changed = threading.Condition()

    @property
    def window(self) -> int:
        """Bytes of the stream to keep, to match across two reads."""
        return max(len(self.pattern), len(self.after or b"")) - 1

    def matches(self, window: bytes) -> bool:
        """Whether the request in `window` is to be held (arming on `after` first)."""
        if self.released.is_set():
            return False
        if not self.armed:
            self.armed = self.after is not None and self.after in window
            return False
        return self.pattern in window

    async def hold(self) -> None:
        """Count one held exchange and wait for the release."""
        with self._changed:
            self._held += 1
            self._changed.notify_all()
        await self.released.wait()

    # -- from the test thread --------------------------------------------------

    @property
    def held(self) -> int:
        with self._changed:
            return self._held

    def wait_held(self, count: int, timeout: float) -> None:
        """Block until `count` exchanges are held; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._held < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{self._held} of {count} exchanges matching {self.pattern!r} held"
                self._changed.wait(left)

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self.released.set)
