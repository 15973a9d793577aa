"""A fault-injecting TCP proxy on loopback, for outage tests.

    proxy = FaultProxy("127.0.0.1", moto_port)
    port = proxy.start()          # point the client at 127.0.0.1:port
    proxy.mode = "refuse"         # or "stall", "reset", "pass"
    proxy.stop()

Modes (switchable at any time from the test thread; switching aborts the
connections already open, so clients meet the new mode at once):
  pass    forward bytes both ways
  refuse  close the listening socket: connects are refused
  stall   accept and read, never forward nor answer (clients time out)
  reset   accept, then reset the connection (RST) as soon as it is open

In `pass` mode, `proxy.hold(pattern, ...)` freezes matching HTTP exchanges
until the test releases them (holds.py).

The proxy runs its own event loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Any
from urllib.parse import urlsplit

from tests.support.holds import Hold, split_interim

MODES = ("pass", "refuse", "stall", "reset")


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset instead of an orderly FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target_host, self.target_port, self.host = target_host, target_port, host
        self.port = 0
        self._mode = "pass"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        # Connections accepted since start, by mode at accept time (for assertions).
        self.accepted: dict[str, int] = dict.fromkeys(MODES, 0)
        # Bytes forwarded from clients to the target (requests sent through).
        self.sent_bytes = 0
        self._holds: list[Hold] = []

    # -- control, from the test thread ---------------------------------------

    def start(self) -> int:
        """Start listening; returns the port."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="faultproxy", daemon=True)
        self._thread.start()
        self._call(self._listen())
        return self.port

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._call(self._switch(mode))

    def hold(self, pattern: bytes, *, after: bytes | None = None, response: bool = False) -> Hold:
        """Hold the requests matching `pattern` (their final answers with `response`) until released."""
        assert self._loop is not None, "start() the proxy first"
        hold = Hold(self._loop, pattern, after, response)
        self._loop.call_soon_threadsafe(self._holds.append, hold)
        return hold

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None

    @classmethod
    def to(cls, endpoint: str) -> FaultProxy:
        """A proxy in front of the server at the URL `endpoint` (started by `with`)."""
        target = urlsplit(endpoint)
        assert target.hostname and target.port, f"no host and port in {endpoint!r}"
        return cls(target.hostname, target.port)

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "start() the proxy first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # -- inside the proxy's loop ---------------------------------------------

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: str) -> None:
        if mode == self._mode:
            return
        self._mode = mode
        for writer in list(self._writers):
            _rst(writer)
        self._writers.clear()
        if mode == "refuse":
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
                self._server = None
        else:
            await self._listen()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            _rst(writer)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Let them finish cancelling before the loop stops (no "destroyed but pending").
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self._mode
        self.accepted[mode] += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if mode == "reset" or mode == "refuse":
                _rst(writer)
            elif mode == "stall":
                while await reader.read(65536):
                    pass
            else:
                await self._forward(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        self._writers.add(up_writer)
        # The hold on this connection's next final answer, set when its request passed.
        answer_held: list[Hold] = []
        try:
            await asyncio.gather(
                self._pump_requests(reader, up_writer, answer_held),
                self._pump_answers(up_reader, writer, answer_held),
            )
        finally:
            self._writers.discard(up_writer)
            if not up_writer.is_closing():
                up_writer.close()

    async def _pump_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer_held: list[Hold]
    ) -> None:
        tail = b""
        try:
            while data := await reader.read(65536):
                window = tail + data
                for hold in self._holds:
                    if hold.matches(window):
                        if hold.response:
                            answer_held.append(hold)
                        else:
                            await hold.hold()
                keep = max((hold.window for hold in self._holds), default=0)
                tail = window[-keep:] if keep else b""
                self.sent_bytes += len(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            _end(writer)

    async def _pump_answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer_held: list[Hold]
    ) -> None:
        buffer = b""
        try:
            while data := await reader.read(65536):
                if not answer_held:
                    writer.write(data)
                    await writer.drain()
                    continue
                interim, buffer, incomplete = split_interim(buffer + data)
                writer.write(interim)
                await writer.drain()
                if buffer and not incomplete:
                    await answer_held.pop(0).hold()
                    writer.write(buffer)
                    await writer.drain()
                    buffer = b""
        except OSError:
            pass
        finally:
            _end(writer)


def _end(writer: asyncio.StreamWriter) -> None:
    """Pass an orderly end of stream on."""
    if not writer.is_closing():
        with contextlib.suppress(OSError):
            writer.write_eof()
