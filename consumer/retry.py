"""When to try again: backoff delays and the classification of faults.

Pure functions: the job runner and the worker decide with them; nothing
here sleeps or talks to a backend, except `retrying`, the one small loop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from imagepipe.errors import BackendUnavailable

T = TypeVar("T")

# S3/SQS error codes that say "not now" rather than "never".
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "OperationAborted",
        "ConditionalRequestConflict",
        "503",
        "500",
    }
)


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)].

    `attempt` counts from 0. Full jitter spreads retries of many workers hit
    by the same outage, so they do not return in lockstep.
    """
    return float(rand() * min(cap, base * 2 ** max(0, attempt)))


def is_transient(exc: BaseException) -> bool:
    """True for faults that may pass by themselves: network, timeouts, throttling, 5xx."""
    if isinstance(exc, BackendUnavailable) and exc.__cause__ is not None:
        return is_transient(exc.__cause__)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error.get("Code") in TRANSIENT_CODES or int(status or 0) >= 500
    return isinstance(
        exc, BotoCoreError | aiohttp.ClientError | asyncio.TimeoutError | ConnectionError | BrokenProcessPool
    )


async def retrying(
    operation: Callable[[], Awaitable[T]],
    attempts: int = 4,
    base: float = 0.2,
    cap: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `operation`, retrying transient faults with backoff; re-raise the last one."""
    for attempt in range(attempts):
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc) or attempt == attempts - 1:
                raise
            await sleep(backoff(attempt, base, cap))
    raise AssertionError("unreachable")
