"""`Idempotency-Key`: the same key from the same API key (anyone, when
authentication is off) within 24 hours returns the original job instead of
creating another; the same key with a different body is a conflict.

Records live at `idempotency/{sha256(owner + ":" + key)}.json`: nothing the
client sent is stored unhashed. A record is written only after the job is
durable (original, status, message), so it never points at a job that does
not exist.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

from imagepipe.errors import BadRequest
from imagepipe.service.errors import ApiError
from imagepipe.service.store import JobStore

WINDOW_SECONDS = 24 * 3600
PREFIX = "idempotency/"
# Printable ASCII without spaces, like a UUID or a request hash.
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def parse_key(header: str | None) -> str | None:
    if header is None:
        return None
    if not VALID_KEY.fullmatch(header):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters without spaces")
    return header


def record_key(owner: str | None, key: str) -> str:
    digest = hashlib.sha256(f"{owner or ''}:{key}".encode()).hexdigest()
    return f"{PREFIX}{digest}.json"


def body_hash(pipeline: str, data: bytes) -> str:
    h = hashlib.sha256(pipeline.encode())
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


def conflict() -> ApiError:
    return ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with a different upload")


@dataclass(frozen=True)
class Replay:
    """A live record: the job it created and the body that answered it."""

    job_id: str
    response: dict[str, Any]


class Idempotency:
    def __init__(self, store: JobStore, owner: str | None, key: str, digest: str) -> None:
        self.store, self.key, self.digest = store, record_key(owner, key), digest

    async def replay(self) -> Replay | None:
        """The earlier job for this key, if any is live; 409 if its body differed."""
        record = await self.store.get_json(self.key)
        if record is None or time.time() - float(record.get("created", 0)) > WINDOW_SECONDS:
            return None
        if record.get("body_sha256") != self.digest:
            raise conflict()
        job_id = str(record.get("job_id"))
        # A job deleted since is gone: the key may create a new one.
        if await self.store.get_status(job_id) is None:
            return None
        return Replay(job_id, dict(record.get("response") or {}))

    async def remember(self, job_id: str, response: dict[str, Any]) -> Replay | None:
        """Record the new job; if a concurrent request won the race, its job instead."""
        record = {"job_id": job_id, "body_sha256": self.digest, "created": time.time(), "response": response}
        if await self.store.put_json(self.key, record, only_if_absent=True):
            return None
        existing = await self.replay()
        if existing is None:
            # Expired or pointing at a deleted job: take the key over.
            await self.store.put_json(self.key, record)
        return existing
