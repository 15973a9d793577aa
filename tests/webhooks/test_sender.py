"""One attempt against real aiohttp receivers on 127.0.0.1: what a receiver
sees (verified with the `standardwebhooks` package) and what each receiver
behaviour gives back; the sender never raises for any of them, never
follows a redirect, never reads more than its bound of an answer and never
connects to an address its rules refuse."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from imagepipe import __version__
from imagepipe.webhooks.events import WebhookEvent, payload
from imagepipe.webhooks.sender import (
    BODY_EXCERPT_BYTES,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    REDIRECT,
    TIMEOUT,
    TLS,
    UNSAFE_TARGET,
    AttemptResult,
    Sender,
)
from imagepipe.webhooks.signing import parse_secret
from tests.webhooks.receivers import Receiver, Resetter

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
KEYS = (parse_secret(SECRET),)
EVENT = WebhookEvent(
    id="msg_0123456789abcdef0123456789abcdef",
    type="image.completed",
    job_id="0b6f2f4c-8d3e-4b5a-9c1d-2e3f4a5b6c7d",
    timestamp="2026-12-02T07:00:00.000Z",
    data={"job_id": "0b6f2f4c-8d3e-4b5a-9c1d-2e3f4a5b6c7d", "status": "completed"},
)
# Generous for a loaded machine; the slow receiver waits far beyond it.
TIMEOUT_SECONDS = 2.0
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def status(code: int, text: str = "", **headers: str) -> Handler:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=code, text=text, headers=headers)

    return handle


def one_attempt(handler: Handler, allow_private: bool = True) -> tuple[AttemptResult, Receiver]:
    async def go() -> tuple[AttemptResult, Receiver]:
        async with Receiver(handler) as receiver, _sender(allow_private) as sender:
            return await sender.send(receiver.url, KEYS, EVENT), receiver

    return asyncio.run(go())


def _sender(allow_private: bool = True, clock: Callable[[], float] = time.time) -> Sender:
    return Sender(allow_private=allow_private, timeout_seconds=TIMEOUT_SECONDS, clock=clock)


def test_an_accepting_receiver_gets_the_payload_signed_with_the_event_id_and_a_fresh_timestamp() -> None:
    moments = iter([time.time() - 60, time.time()])

    async def go() -> tuple[list[AttemptResult], Receiver]:
        async with Receiver(status(204)) as receiver, _sender(clock=lambda: next(moments)) as sender:
            return [await sender.send(receiver.url, KEYS, EVENT) for _ in range(2)], receiver

    results, receiver = asyncio.run(go())
    assert [(r.delivered, r.status, r.error) for r in results] == [(True, 204, None)] * 2
    first, second = receiver.requests
    for seen in (first, second):
        assert Webhook(SECRET).verify(seen.body, seen.headers)["type"] == "image.completed"
        assert seen.body == payload(EVENT)
        assert seen.headers["webhook-id"] == EVENT.id
        assert seen.headers["User-Agent"] == f"imagepipe/{__version__} (webhooks)"
        assert seen.headers["Content-Type"] == "application/json"
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) in (59, 60, 61)


@pytest.mark.parametrize(("code", "text"), [(500, "boom"), (410, "gone"), (400, "bad"), (503, "later")])
def test_a_non_2xx_answer_is_a_failed_attempt_with_its_status_and_body(code: int, text: str) -> None:
    result, _ = one_attempt(status(code, text))
    assert (result.delivered, result.status, result.error, result.body) == (False, code, None, text)
    assert result.as_record()["status"] == code and result.as_record()["body"] == text


def test_retry_after_is_read_in_seconds() -> None:
    result, _ = one_attempt(status(429, "slow down", **{"Retry-After": "120"}))
    assert (result.status, result.retry_after_seconds) == (429, 120)


def test_a_receiver_slower_than_the_timeout_is_a_timeout() -> None:
    async def never(request: web.BaseRequest) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    result, receiver = one_attempt(never)
    assert (result.delivered, result.status, result.error) == (False, None, TIMEOUT)
    assert receiver.connections == 1
    assert result.as_record() == {"error": TIMEOUT, "duration_ms": result.as_record()["duration_ms"]}


def test_an_endless_body_is_read_only_to_the_bound() -> None:
    offered: list[int] = [0]
    ended = asyncio.Event()

    async def endless(request: web.BaseRequest) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while True:
                offered[0] += len(chunk)
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            ended.set()  # the sender closed the connection
            raise

    async def go() -> tuple[AttemptResult, int]:
        async with Receiver(endless) as receiver, _sender() as sender:
            tracemalloc.start()
            try:
                result = await sender.send(receiver.url, KEYS, EVENT)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            await asyncio.wait_for(ended.wait(), 30)
            return result, peak

    result, peak = asyncio.run(go())
    assert (result.delivered, result.status, result.error) == (True, 200, None)
    assert result.body == "x" * BODY_EXCERPT_BYTES
    assert offered[0] > BODY_EXCERPT_BYTES
    # Both ends of the connection run in this process; reading on for the
    # timeout at loopback speed would hold hundreds of megabytes.
    assert peak < 2 * 1024 * 1024, peak


def test_a_redirect_is_a_failed_attempt_and_is_not_followed() -> None:
    async def go() -> tuple[AttemptResult, Receiver, str]:
        async with Receiver(status(204)) as elsewhere:
            redirect = status(307, "moved", Location=elsewhere.url)
            async with Receiver(redirect) as receiver, _sender() as sender:
                return await sender.send(receiver.url, KEYS, EVENT), elsewhere, elsewhere.url

    result, elsewhere, location = asyncio.run(go())
    assert (result.delivered, result.status, result.error) == (False, 307, REDIRECT)
    assert result.detail == f"Location: {location}"
    assert (elsewhere.connections, elsewhere.requests) == (0, [])


def test_nothing_listening_is_connection_refused() -> None:
    async def go(port: int) -> AttemptResult:
        async with _sender() as sender:
            return await sender.send(f"http://127.0.0.1:{port}/hook", KEYS, EVENT)

    # Bound but not listening: the port stays ours and refuses connections.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        result = asyncio.run(go(held.getsockname()[1]))
    assert (result.delivered, result.status, result.error) == (False, None, CONNECTION_REFUSED)


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 200 OK\r\nContent-"], ids=["before", "mid-head"])
def test_a_reset_before_the_status_is_complete_is_connection_reset(answer: bytes) -> None:
    async def go() -> tuple[AttemptResult, int]:
        async with Resetter(answer) as receiver, _sender() as sender:
            return await sender.send(receiver.url, KEYS, EVENT), receiver.resets

    result, resets = asyncio.run(go())
    assert resets == 1
    assert (result.delivered, result.status, result.error) == (False, None, CONNECTION_RESET)


def test_a_reset_after_a_2xx_status_is_delivered_with_what_arrived() -> None:
    async def go() -> AttemptResult:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\naccepted"
        async with Resetter(head) as receiver, _sender() as sender:
            return await sender.send(receiver.url, KEYS, EVENT)

    result = asyncio.run(go())
    assert (result.delivered, result.status, result.error) == (True, 200, None)
    assert result.body in ("accepted", "")  # the reset may overtake the bytes


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_loopback_target_is_refused_before_any_connection_unless_private_is_allowed(host: str) -> None:
    async def go(allow_private: bool) -> tuple[AttemptResult, int]:
        async with Receiver(status(204)) as receiver, _sender(allow_private) as sender:
            url = receiver.url.replace("127.0.0.1", host)
            return await sender.send(url, KEYS, EVENT), receiver.connections

    refused, connections = asyncio.run(go(allow_private=False))
    assert (refused.delivered, refused.error, connections) == (False, UNSAFE_TARGET, 0)
    assert "127.0.0.1 is loopback" in refused.detail
    allowed, connections = asyncio.run(go(allow_private=True))
    assert (allowed.delivered, allowed.status, connections) == (True, 204, 1)


def test_cookies_are_not_kept_between_attempts() -> None:
    async def go() -> Receiver:
        handler = status(204, **{"Set-Cookie": "session=abc; Path=/"})
        async with Receiver(handler) as receiver, _sender() as sender:
            # A name: aiohttp's default jar would keep no cookie of an address anyway.
            url = receiver.url.replace("127.0.0.1", "localhost")
            await sender.send(url, KEYS, EVENT)
            await sender.send(url, KEYS, EVENT)
            return receiver

    receiver = asyncio.run(go())
    assert len(receiver.requests) == 2
    assert [("Cookie" in seen.headers) for seen in receiver.requests] == [False, False]


def test_proxy_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> tuple[AttemptResult, Receiver, Receiver]:
        async with Receiver(status(204)) as proxy, Receiver(status(204)) as receiver:
            for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
                monkeypatch.setenv(name, proxy.url.removesuffix("/hook"))
            for name in ("NO_PROXY", "no_proxy"):
                monkeypatch.delenv(name, raising=False)
            async with _sender() as sender:
                return await sender.send(receiver.url, KEYS, EVENT), proxy, receiver

    result, proxy, receiver = asyncio.run(go())
    assert result.delivered and (proxy.connections, receiver.connections) == (0, 1)


def test_tls_to_a_plain_http_receiver_is_a_tls_error() -> None:
    async def go() -> tuple[AttemptResult, int]:
        async with Receiver(status(204)) as receiver, _sender() as sender:
            https = receiver.url.replace("http://", "https://")
            return await sender.send(https, KEYS, EVENT), len(receiver.requests)

    result, requests = asyncio.run(go())
    assert (result.delivered, result.error, requests) == (False, TLS, 0)
