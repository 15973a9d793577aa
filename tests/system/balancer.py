"""A small loopback TCP balancer for rollout tests: round-robin over the
backends whose /readyz last answered 200 (polled every `interval`), as a
Service's endpoints follow readiness. No ready backend: the connection is closed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from typing import Any


class Balancer:
    def __init__(self, backends: list[int], interval: float = 0.1) -> None:
        self.backends, self.interval = backends, interval
        self.ready: set[int] = set()
        self.port = 0
        # Connections routed, by backend port (for assertions).
        self.routed: dict[int, int] = dict.fromkeys(backends, 0)
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="balancer", daemon=True)
        self._tasks: list[asyncio.Task[Any]] = []

    def __enter__(self) -> Balancer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self._watch(port)) for port in self.backends]

    async def _stop(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self, port: int) -> None:
        while True:
            if await _ready(port):
                self.ready.add(port)
            else:
                self.ready.discard(port)
            await asyncio.sleep(self.interval)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ready = sorted(self.ready)
        if not ready:
            writer.close()
            return
        port = ready[next(self._turn) % len(ready)]
        self.routed[port] += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))


async def _ready(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    try:
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: balancer\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(1.0):
            head = await reader.readline()
        return head.startswith(b"HTTP/1.1 200")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            if writer.can_write_eof():
                writer.write_eof()
