"""Rollouts that drop nothing.

On SIGTERM the ingest reports not ready at once (/readyz 503) but keeps
accepting for IMAGEPIPE_SHUTDOWN_DELAY_SECONDS, while Kubernetes withdraws
the pod from the Service's endpoints and balancers stop sending to it; each
answer from then on closes its connection, so keep-alive clients reconnect
elsewhere. Then it closes the listening sockets and waits for the requests in
progress (at least one whole upload: capacity.drain_seconds) before letting
aiohttp close the connections.

aiohttp's own graceful shutdown stops reading from every connection at once
(it ignores data that arrives after shutdown begins), so an upload whose body
is still streaming would be cut off: hence this sequence.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger("imagepipe.service")


class Lifecycle:
    """Owns `stopping` and the count of requests being handled."""

    def __init__(self) -> None:
        self.stopping = False
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.in_flight += 1
        self._idle.clear()
        try:
            response = await handler(request)
            if self.stopping:
                response.force_close()
            return response
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def idle(self, grace: float) -> bool:
        try:
            async with asyncio.timeout(grace):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


async def serve(
    runner: web.AppRunner, host: str, port: int, lifecycle: Lifecycle, delay: float, drain: float
) -> None:
    """Serve until SIGTERM or SIGINT, then withdraw, drain and clean up."""
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
        lifecycle.stopping = True
        log.info("shutting down: not ready, still accepting", extra={"delay_seconds": delay})
        await asyncio.sleep(delay)
        log.info("shutting down: no new connections", extra={"in_flight": lifecycle.in_flight})
        await site.stop()
        if not await lifecycle.idle(drain):
            log.warning(
                "drain time over; closing requests still open", extra={"in_flight": lifecycle.in_flight}
            )
    finally:
        await runner.cleanup()
