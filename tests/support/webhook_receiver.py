"""A real webhook receiver on 127.0.0.1 for the deliverer's tests: an aiohttp
server in a thread of its own (so synchronous tests driving real processes
can use it), which verifies every request's signature with the
`standardwebhooks` package (an implementation independent of ours), answers
`failing` requests with 503 before accepting, and can be stopped and started
again on the same port (a receiver down for a while: connections refused),
or answer slowly."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from imagepipe.loopback import free_port


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class Seen:
    webhook_id: str
    # What the receiver answered.
    status: int
    verified: bool
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    secret: str
    port: int = field(default_factory=free_port)
    # Requests still to answer 503 (then every one is accepted with 204).
    failing: int = 0
    # Seconds each answer takes (a slow receiver).
    delay: float = 0.0
    # Requests that arrived (their answer may still be on its way).
    arrived: int = 0
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    # While down, the port stays bound (not listening: connections are refused), so
    # no other server or outgoing connection of this machine takes it meanwhile.
    _hold: socket.socket | None = None

    def __post_init__(self) -> None:
        self._hold_port()

    def _hold_port(self) -> None:
        self._hold = socket.socket()
        self._hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._hold.bind(("127.0.0.1", self.port))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        assert started.wait(10), "the receiver did not start"
        assert self._hold is not None
        self._hold.close()
        return self

    def stop(self) -> None:
        """Close the port (connections are refused until `start` again)."""
        if self._loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = self._thread = None
        self._hold_port()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._hold is not None:
            self._hold.close()

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def accepted(self) -> Counter[str]:
        """webhook-id → how many times it was accepted (2xx)."""
        return Counter(s.webhook_id for s in self.requests() if 200 <= s.status < 300)

    def wait_for(self, check: Callable[[Receiver], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            assert time.monotonic() < deadline, f"timed out waiting for {what}; seen {self.requests()}"
            time.sleep(0.2)

    def _serve(self, started: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        self._loop.run_until_complete(site.start())
        started.set()
        self._loop.run_forever()
        self._loop.close()

    async def _cleanup(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.arrived += 1
        await asyncio.sleep(self.delay)
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
            verified = True
        except WebhookVerificationError:
            verified = False
        with self._lock:
            status = 503 if self.failing > 0 or not verified else 204
            self.failing = max(0, self.failing - 1)
            self.seen.append(Seen(request.headers.get("webhook-id", ""), status, verified, body))
        return web.Response(status=status)
