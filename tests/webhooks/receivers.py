"""Real receivers on 127.0.0.1 (port 0) for the sender's tests: an aiohttp
server running a handler, counting the connections made to it; and a raw
one that resets the connection after reading a request."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    handler: Handler
    connections: int = 0
    requests: list[Seen] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _web: web.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    async def _record(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests.append(Seen(dict(request.headers), await request.read()))
        return await self.handler(request)

    def _connection(self) -> asyncio.Protocol:
        self.connections += 1
        assert self._web is not None
        return self._web()

    async def __aenter__(self) -> Receiver:
        self._web = web.Server(self._record)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None and self._web is not None
        self._server.close()
        await self._web.shutdown(timeout=1)
        await self._server.wait_closed()


@dataclass
class Resetter:
    """Reads a request's head, writes `answer` (possibly nothing), then resets
    the connection (SO_LINGER 0: an RST, not a FIN)."""

    answer: bytes = b""
    resets: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(self.answer)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        self.resets += 1

    async def __aenter__(self) -> Resetter:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
