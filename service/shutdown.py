"""Graceful shutdown that really finishes in-flight uploads.

aiohttp's own graceful shutdown stops reading from every connection at once
(it ignores data that arrives after shutdown begins), so an upload whose body
is still streaming would be cut off. Instead, on SIGTERM: close the listening
sockets, wait until the requests in progress are answered (up to the grace
period), and only then let aiohttp close the connections.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("imagepipe.service")


class InFlight:
    """Counts requests being handled; `idle()` waits until there are none."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.count += 1
        self._idle.clear()
        try:
            return await handler(request)
        finally:
            self.count -= 1
            if self.count == 0:
                self._idle.set()

    async def idle(self, grace: float) -> bool:
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


async def serve(runner: web.AppRunner, host: str, port: int, in_flight: InFlight, grace: float) -> None:
    """Serve until SIGTERM or SIGINT, then drain and clean up."""
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("ingest listening", extra={"host": host, "port": port})
    try:
        await stop.wait()
        log.info("shutting down: no new connections", extra={"in_flight": in_flight.count})
        await site.stop()
        if not await in_flight.idle(grace):
            log.warning(
                "grace period over; closing requests still open", extra={"in_flight": in_flight.count}
            )
    finally:
        await runner.cleanup()
