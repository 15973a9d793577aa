"""`Idempotency-Key`: the same key from the same API key (anyone, when
authentication is off) within 24 hours returns the original job instead of
creating another; the same key with a different body is a conflict.

The key is claimed with a conditional create before anything is stored, so
concurrent requests with one key make one job: the others wait for it
briefly, then answer `409 idempotency_in_progress` with Retry-After. A claim
whose request died expires and is taken over with If-Match. Records live at
`idempotency/{sha256(owner + ":" + key)}.json` (nothing the client sent is
stored unhashed) and expire by lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from imagepipe.errors import BackendUnavailable, BadRequest, IdempotencyInProgress
from imagepipe.geometry import Focus
from imagepipe.jobstore.store import JobStore
from imagepipe.service.errors import ApiError

log = logging.getLogger("imagepipe.service")
WINDOW_SECONDS = 24 * 3600
# How long a request waits for a concurrent one with the same key to finish.
WAIT_SECONDS = 5.0
POLL_SECONDS = 0.1
# Printable ASCII without spaces, like a UUID or a request hash.
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
CLAIMED, DONE = "claimed", "done"
CONFLICT, REPLAY, IN_PROGRESS, EXPIRED = "conflict", "replay", "in_progress", "expired"


def parse_key(header: str | None) -> str | None:
    if header is None:
        return None
    if not VALID_KEY.fullmatch(header):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters without spaces")
    return header


def body_hash(pipeline: str, data: bytes, focus: Focus | None = None) -> str:
    """What a replay must match: the pipeline, the bytes and the focal point."""
    h = hashlib.sha256(pipeline.encode())
    if focus is not None:
        # Only with a focus, so that earlier records without one still match.
        h.update(f"\0focus={focus.x!r},{focus.y!r}".encode())
    h.update(b"\0")
    h.update(data)
    return h.hexdigest()


def conflict() -> ApiError:
    return ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with a different upload")


def judge(record: dict[str, Any], digest: str, now: float, claim_seconds: float) -> str:
    """What an existing record means for a request with body `digest` at `now`."""
    if now - float(record.get("created", 0)) > WINDOW_SECONDS:
        return EXPIRED
    if record.get("body_sha256") != digest:
        return CONFLICT
    if record.get("state") == DONE:
        return REPLAY
    if now - float(record.get("claimed_at", 0)) > claim_seconds:
        return EXPIRED
    return IN_PROGRESS


@dataclass(frozen=True)
class Replay:
    """A finished earlier request: the job it created and the body that answered it."""

    job_id: str
    response: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """This request holds the key for `job_id` (the record's version is `etag`)."""

    job_id: str
    etag: str


class Idempotency:
    def __init__(
        self, store: JobStore, owner: str | None, key: str, digest: str, claim_seconds: float
    ) -> None:
        self.store, self.owner, self.key, self.digest = store, owner, key, digest
        # A claim older than this belongs to a request that died.
        self.claim_seconds = claim_seconds

    def record(self, job_id: str, state: str, response: dict[str, Any] | None = None) -> dict[str, Any]:
        now = time.time()
        return {
            "state": state,
            "job_id": job_id,
            "body_sha256": self.digest,
            "created": now,
            "claimed_at": now,
            "response": response or {},
        }

    async def claim(self, job_id: str) -> Replay | Claim:
        """Claim the key for a new job `job_id`, or the earlier job it names; 409 on conflict or timeout."""
        give_up = time.monotonic() + WAIT_SECONDS
        while True:
            current = await self.store.read_claim(self.owner, self.key)
            verdict = (
                EXPIRED
                if current.doc is None
                else judge(current.doc, self.digest, time.time(), self.claim_seconds)
            )
            if verdict == CONFLICT:
                raise conflict()
            if verdict == REPLAY and current.doc is not None:
                replay = Replay(str(current.doc.get("job_id")), dict(current.doc.get("response") or {}))
                if await self.store.status(replay.job_id) is not None:
                    return replay
                verdict = EXPIRED  # deleted since: the key may create a new job
            if verdict == EXPIRED:
                etag = await self.store.write_claim(
                    self.owner, self.key, self.record(job_id, CLAIMED), current.etag
                )
                if etag is not None:
                    return Claim(job_id, etag)
                continue  # another request claimed it first: judge its claim
            if time.monotonic() >= give_up:
                raise IdempotencyInProgress(
                    "another request with this Idempotency-Key is still creating its job; retry shortly"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def finish(self, claim: Claim, response: dict[str, Any]) -> None:
        """The job is durable: later requests replay it."""
        record = self.record(claim.job_id, DONE, response)
        if await self.store.write_claim(self.owner, self.key, record, claim.etag) is None:
            log.warning(
                "idempotency claim was taken over before its job was made", extra={"job_id": claim.job_id}
            )

    async def release(self, claim: Claim) -> None:
        """The job was not made: free the key at once (best effort; else the claim expires)."""
        with contextlib.suppress(BackendUnavailable):
            await self.store.drop_claim(self.owner, self.key, claim.etag)
