"""Fair shares: a token bucket per API key id, per ingest process.

Each upload takes one token; a key's bucket holds up to `burst` tokens and
refills at `rate` per second. Limits are per pod: N ingest replicas let a key
send up to N × rate uploads per second (the Service spreads connections, not
keys). Without authentication there are no keys and no limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from imagepipe.errors import RateLimited


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated: float


def take(bucket: Bucket | None, now: float, rate: float, burst: int) -> tuple[Bucket, float]:
    """One upload's token: the bucket after it, and 0 when taken, else seconds until one is there."""
    if bucket is None:
        bucket = Bucket(float(burst), now)
    tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.updated) * rate)
    if tokens >= 1.0:
        return Bucket(tokens - 1.0, now), 0.0
    return Bucket(tokens, now), (1.0 - tokens) / rate


def rate_limited(rate: float, burst: int, wait: float) -> RateLimited:
    return RateLimited(
        f"this API key may send {rate:g} uploads per second (bursts of {burst}) to each ingest; "
        f"retry in {wait:.1f} s",
        max(1, math.ceil(wait)),
    )


class RateLimiter:
    """Owns every key's bucket (bounded: keys come from IMAGEPIPE_API_KEYS)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, Bucket] = {}

    def check(self, key_id: str | None) -> None:
        """Take a token for the key, or raise RateLimited; a rate of 0 means no limit."""
        if key_id is None or self.rate <= 0:
            return
        bucket, wait = take(self._buckets.get(key_id), time.monotonic(), self.rate, self.burst)
        self._buckets[key_id] = bucket
        if wait > 0:
            raise rate_limited(self.rate, self.burst, wait)
