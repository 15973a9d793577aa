"""One delivery attempt: sign the event, POST it to the receiver, and say
what happened, without ever raising for what the receiver does.

The HTTP client is configured against the receiver: it connects only to
addresses `targets.VettingResolver` allowed (and refuses a host written as a
disallowed address before any connection), follows no redirect (a 3xx is a
failed attempt: a redirect could lead anywhere, and the receiver's URL is
configuration), ignores proxy variables and cookies, reads at most
`BODY_EXCERPT_BYTES` of the answer, and gives the whole attempt, connection
to the last byte read, `IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS`."""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from imagepipe import __version__
from imagepipe.config import Settings
from imagepipe.webhooks.events import WebhookEvent, payload
from imagepipe.webhooks.signing import signed_headers
from imagepipe.webhooks.targets import UnsafeTarget, VettingResolver, address_problem, parse_target

# The most of an answer ever read: enough for a receiver's error message in the
# delivery record; an endless body costs no more (aiohttp buffers at most twice
# its read size before it stops reading the socket).
BODY_EXCERPT_BYTES = 4096
# The most of a Location or an exception kept in a result.
DETAIL_CHARS = 200
USER_AGENT = f"imagepipe/{__version__} (webhooks)"
_RESETS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})

# Why an attempt failed without a usable answer (a non-2xx answer is its status).
TIMEOUT = "timeout"
UNRESOLVABLE = "unresolvable"
UNSAFE_TARGET = "unsafe_target"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_RESET = "connection_reset"
CONNECTION_FAILED = "connection_failed"
TLS = "tls"
REDIRECT = "redirect"
BAD_RESPONSE = "bad_response"
ATTEMPT_ERRORS = (
    TIMEOUT,
    UNRESOLVABLE,
    UNSAFE_TARGET,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    CONNECTION_FAILED,
    TLS,
    REDIRECT,
    BAD_RESPONSE,
)


@dataclass(frozen=True)
class AttemptResult:
    # A 2xx answer: the receiver has the event.
    delivered: bool
    # The answer's status; None when none came.
    status: int | None
    # One of ATTEMPT_ERRORS; None for an answer taken as it is (2xx, 4xx, 5xx).
    error: str | None
    # For an error: what it was (the refused address and why, a redirect's
    # Location, the exception), at most DETAIL_CHARS.
    detail: str
    duration_seconds: float
    # The start of the answer's body (at most BODY_EXCERPT_BYTES, decoded leniently).
    body: str
    # The receiver's Retry-After in seconds (its delta-seconds form), if it sent one.
    retry_after_seconds: int | None = None

    def as_record(self) -> dict[str, object]:
        """The JSON form for a delivery record's `last_result`."""
        record: dict[str, object] = {"duration_ms": round(self.duration_seconds * 1000)}
        if self.status is not None:
            record["status"] = self.status
        if self.error is not None:
            record["error"] = self.error
        if self.detail:
            record["detail"] = self.detail
        if self.body:
            record["body"] = self.body
        return record


class Sender:
    """The HTTP client of one deliverer; `async with Sender(...) as sender`."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_seconds: float,
        body_limit: int = BODY_EXCERPT_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.allow_private = allow_private
        self.timeout_seconds = timeout_seconds
        self.body_limit = body_limit
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sender:
        return cls(
            allow_private=settings.webhook_allow_private,
            timeout_seconds=settings.webhook_timeout_seconds,
        )

    async def __aenter__(self) -> Sender:
        # A fresh resolution (and vetting) for every new connection: the
        # answer a check saw is never reused past its connection.
        connector = aiohttp.TCPConnector(resolver=VettingResolver(self.allow_private), use_dns_cache=False)
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            auto_decompress=False,
            read_bufsize=self.body_limit,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, target_url: str, keys: tuple[bytes, ...], event: WebhookEvent) -> AttemptResult:
        """One attempt: signed now with each key, with the event's id."""
        assert self._session is not None, "use `async with Sender(...)`"
        started = time.monotonic()
        try:
            target = parse_target(target_url)
        except ValueError as exc:
            return _failed(started, UNSAFE_TARGET, str(exc))
        unsafe = address_problem(target.literal, self.allow_private) if target.literal else None
        if unsafe is not None:
            return _failed(started, UNSAFE_TARGET, f"{target.host} is {unsafe}")
        body = payload(event)
        headers = signed_headers(keys, event.id, int(self.clock()), body)
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._session.post(
                    target.url, data=body, headers=headers, allow_redirects=False
                )
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            return _failed(started, *failure_of(exc))
        try:
            excerpt = await read_excerpt(response.content, self.body_limit, deadline)
        finally:
            # Unread bytes left on a connection would be the next answer's start.
            if response.content.at_eof():
                response.release()
            else:
                response.close()
        return answered(started, response, excerpt)


async def read_excerpt(content: aiohttp.StreamReader, limit: int, deadline: float) -> bytes:
    """At most `limit` bytes of a body, what arrived by the deadline."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            while size < limit:
                chunk = await content.read(limit - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass  # the status is the answer; the excerpt is only what came with it
    return b"".join(chunks)


def answered(started: float, response: aiohttp.ClientResponse, excerpt: bytes) -> AttemptResult:
    status = response.status
    redirect = 300 <= status < 400
    return AttemptResult(
        delivered=200 <= status < 300,
        status=status,
        error=REDIRECT if redirect else None,
        detail=f"Location: {response.headers.get('Location', '')}"[:DETAIL_CHARS] if redirect else "",
        duration_seconds=time.monotonic() - started,
        body=excerpt.decode("utf-8", errors="replace"),
        retry_after_seconds=retry_after(response.headers.get("Retry-After")),
    )


def retry_after(value: str | None) -> int | None:
    """Retry-After's delta-seconds form (the HTTP-date form is not honoured)."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


def failure_of(exc: BaseException) -> tuple[str, str]:
    """The error kind and detail of an attempt that got no answer."""
    cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(cause, UnsafeTarget):
        return UNSAFE_TARGET, str(cause)
    if isinstance(exc, TimeoutError):
        return TIMEOUT, ""
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return TLS, _detail(exc)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UNRESOLVABLE, _detail(cause)
    # aiohttp reports a reset as a ClientOSError carrying only the errno.
    code = cause.errno if isinstance(cause, OSError) else None
    if isinstance(cause, ConnectionRefusedError) or code == errno.ECONNREFUSED:
        return CONNECTION_REFUSED, _detail(cause)
    if isinstance(cause, ConnectionResetError | aiohttp.ServerDisconnectedError) or code in _RESETS:
        return CONNECTION_RESET, _detail(cause)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return BAD_RESPONSE, _detail(exc)
    return CONNECTION_FAILED, _detail(exc)


def _detail(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:DETAIL_CHARS]


def _failed(started: float, error: str, detail: str) -> AttemptResult:
    return AttemptResult(
        delivered=False,
        status=None,
        error=error,
        detail=detail[:DETAIL_CHARS],
        duration_seconds=time.monotonic() - started,
        body="",
    )
