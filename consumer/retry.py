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
# SQS visibility timeouts are capped at 12 hours.
MAX_VISIBILITY_SECONDS = 43_200


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)].

    `attempt` counts from 0. Full jitter spreads retries of many workers hit
    by the same outage, so they do not return in lockstep.
    """
    return float(rand() * min(cap, base * 2 ** max(0, attempt)))


def release_visibility(receive_count: int, base: int, cap: int = 900) -> int:
    """Seconds a failed message stays hidden before its next receive: base·2^(n-1), capped.

    Grows with each receive so a long outage is ridden out with few receives.
    """
    seconds = base * 2 ** max(0, receive_count - 1)
    return int(min(cap, MAX_VISIBILITY_SECONDS, max(1, seconds)))


def is_last_receive(receive_count: int, max_receives: int) -> bool:
    """True when the redrive policy moves the message to the DLQ instead of a next receive."""
    return receive_count >= max_receives


def is_transient(exc: BaseException) -> bool:
    """True for faults that may pass by themselves: network, timeouts, throttling, 5xx."""
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
