"""Readiness from what this pod knows, never a backend call per probe.

/readyz answers from state: whether the process is still accepting (not
stopping), whether its upload budget has room for one more maximum upload, and
the result of the last background S3/SQS check, which runs on its own
interval and timeout. A slow backend therefore makes probes neither slow nor
more frequent, and a stampede of probers adds no backend calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from imagepipe.errors import ImagePipeError
from imagepipe.service.errors import ApiError

log = logging.getLogger("imagepipe.service")


@dataclass(frozen=True)
class Readiness:
    ready: bool
    # Why not: the error code and message /readyz answers with.
    code: str = ""
    reason: str = ""


def readiness(stopping: bool, backend_ok: bool | None, room: bool) -> Readiness:
    if stopping:
        return Readiness(False, "shutting_down", "shutting down: finishing the uploads in flight")
    if backend_ok is None:
        return Readiness(False, "backend_unavailable", "starting: storage and queue not checked yet")
    if not backend_ok:
        return Readiness(False, "backend_unavailable", "storage or queue failed the last check")
    if not room:
        return Readiness(False, "overloaded", "the upload budget has no room for another upload")
    return Readiness(True)


class BackendCheck:
    """Owns the backend's last known health; `run` keeps it fresh until cancelled."""

    def __init__(self, interval: float, timeout: float) -> None:
        self.interval, self.timeout = interval, timeout
        # None until the first check has finished.
        self.ok: bool | None = None

    async def check(self, ping: Callable[[], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await ping()
            ok = True
        except (TimeoutError, ApiError, ImagePipeError):
            ok = False
        if ok != self.ok:
            log.log(logging.INFO if ok else logging.WARNING, "backend check", extra={"ok": ok})
        self.ok = ok

    async def run(self, ping: Callable[[], Awaitable[None]]) -> None:
        """Check every interval, after the first check (made at start-up)."""
        while True:
            await asyncio.sleep(self.interval)
            await self.check(ping)
