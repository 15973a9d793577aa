"""The job store: every read and write of a job's objects in S3 (its status
document, original, variants, failure markers) by every role.

Status documents change only through `apply`: read with the ETag, decide
with the pure transition function, write with If-Match (If-None-Match: *
to create), and on a lost race read and decide again."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from imagepipe.context import RenderedVariant
from imagepipe.errors import BackendUnavailable, OriginalMissing
from imagepipe.jobs import now_iso
from imagepipe.lifecycle import status_tag

from .conflicts import WRITE_CONFLICT
from .deliveries import Attempt, DeliveryRecord, listed, record_attempt
from .keys import (
    delivery_key,
    failure_day_prefix,
    failure_key,
    idempotency_key,
    original_key,
    probe_key,
    status_key,
    variant_key,
    variants_prefix,
)
from .objects import Objects, Versioned
from .transitions import DELETED, Delete, Event, Fail, Refused, StatusDoc, decide

log = logging.getLogger("imagepipe.jobstore")
VARIANT_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Lost compare-and-swap races before giving up (each one means another writer progressed).
MAX_RACES = 20


class JobStore:
    def __init__(
        self,
        s3: Any,
        bucket: str,
        timeout: float = 15.0,
        on_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.objects = Objects(s3, bucket, timeout)
        self.s3, self.bucket = s3, bucket
        # Called with the refusing state (or "write_conflict" for a lost race).
        self.on_refused = on_refused

    # --- status documents ---------------------------------------------------

    async def read(self, job_id: str) -> Versioned:
        return await self.objects.read_json(status_key(job_id))

    async def status(self, job_id: str) -> StatusDoc | None:
        """The job's document as clients see it: None when unknown or deleted."""
        doc = (await self.read(job_id)).doc
        return None if doc is None or doc.get("status") == DELETED else doc

    async def apply(self, job_id: str, event: Event, known: Versioned | None = None) -> StatusDoc | Refused:
        """Move the job's document by `event`: the new document, or the refusal.

        `known`: a version just read, decided on first (saving a read); a
        stale one only costs a lost race.
        """
        if isinstance(event, Fail):
            # Indexed first, so a failure is never missing from `imagepipe jobs list`;
            # the listing reads each job's document, so a marker of a job that
            # ends otherwise is harmless.
            await self.mark_failed(job_id, event.at)
        for race in range(MAX_RACES):
            current = known if known is not None and race == 0 else await self.read(job_id)
            decided = decide(current.doc, event)
            if isinstance(decided, Refused):
                self.on_refused(decided.reason)
                return decided
            tag = status_tag(decided)
            if await self.objects.write_json(status_key(job_id), decided, current.etag, tag) is not None:
                return decided
            self.on_refused(WRITE_CONFLICT)
            await asyncio.sleep(random.random() * min(1.0, 0.02 * 2**race))
        raise BackendUnavailable(f"status of {job_id} kept changing under {MAX_RACES} writes")

    async def tombstone(self, job_id: str) -> StatusDoc | Refused:
        """Mark the job deleted: the document itself, by compare-and-swap. Its outputs
        are the caller's to remove next (remove_outputs)."""
        return await self.apply(job_id, Delete(at=now_iso()))

    async def remove_outputs(self, job_id: str) -> None:
        """A deleted job's variants and original."""
        await self.remove_variants(job_id)
        await self.objects.delete(original_key(job_id))

    async def remove_variants(self, job_id: str, spec_hash: str | None = None) -> None:
        """The job's variants of one spec (a worker's own writes), or of every spec."""
        await self.objects.delete_prefix(variants_prefix(job_id, spec_hash))

    async def discard(self, job_id: str) -> None:
        """Best effort: what an upload that failed half-way wrote (its lifecycle rules expire the rest)."""
        for key in (status_key(job_id), original_key(job_id)):
            try:
                await self.objects.delete(key)
            except BackendUnavailable:
                return

    # --- originals and variants ---------------------------------------------

    async def put_original(self, job_id: str, data: bytes, content_type: str) -> None:
        await self.objects.put(original_key(job_id), data, ContentType=content_type)

    async def get_original(self, job_id: str) -> bytes:
        found = await self.objects.read_bytes(original_key(job_id))
        if found is None:
            raise OriginalMissing(f"the original {original_key(job_id)} does not exist")
        return found[0]

    async def has_original(self, job_id: str) -> bool:
        return bool(await self.objects.list_keys(original_key(job_id)))

    async def put_variant(self, job_id: str, spec_hash: str, rendered: RenderedVariant) -> None:
        """Write once: an existing object (same job, same spec, same bytes) is never overwritten."""
        variant = rendered.variant
        await self.objects.put_once(
            variant_key(job_id, spec_hash, variant.name, variant.extension),
            rendered.data,
            ContentType=variant.content_type,
            CacheControl=VARIANT_CACHE_CONTROL,
        )

    # --- the failure index --------------------------------------------------

    async def mark_failed(self, job_id: str, at: str) -> None:
        await self.objects.put(failure_key(at[:10], job_id), b"")

    async def failed_since(self, since: datetime, until: datetime | None = None) -> list[str]:
        """Job ids with a failure marker from `since`'s day on (UTC), oldest day first."""
        day, last = since.astimezone(UTC).date(), (until or datetime.now(UTC)).astimezone(UTC).date()
        job_ids: list[str] = []
        while day <= last:
            prefix = failure_day_prefix(day.isoformat())
            job_ids += [key[len(prefix) :] for key in await self.objects.list_keys(prefix)]
            day += timedelta(days=1)
        return list(dict.fromkeys(job_ids))

    # --- idempotency records -------------------------------------------------

    async def read_claim(self, owner: str | None, key: str) -> Versioned:
        return await self.objects.read_json(idempotency_key(owner, key))

    async def write_claim(
        self, owner: str | None, key: str, record: dict[str, Any], etag: str | None
    ) -> str | None:
        """Compare-and-swap the key's record (etag None: claim a free key).

        The new ETag; None when another request won."""
        return await self.objects.write_json(idempotency_key(owner, key), record, etag)

    async def drop_claim(self, owner: str | None, key: str, etag: str) -> None:
        await self.objects.delete(idempotency_key(owner, key), etag)

    # --- delivery records of webhook events ------------------------------------

    async def deliveries(self, job_id: str) -> list[dict[str, Any]]:
        """The job's webhook deliveries, each with its event `id`, oldest first; [] before any."""
        return listed((await self.objects.read_json(delivery_key(job_id))).doc)

    async def read_deliveries(self, job_id: str) -> DeliveryRecord | None:
        return (await self.objects.read_json(delivery_key(job_id))).doc

    async def record_delivery(
        self, job_id: str, event_id: str, event_type: str, attempt: Attempt
    ) -> DeliveryRecord | None:
        """Count `attempt` in the job's delivery record (compare-and-swap, decided again on a lost
        race): the record written, or None when the event was already settled (nothing written)."""
        key = delivery_key(job_id)
        for race in range(MAX_RACES):
            current = await self.objects.read_json(key)
            updated = record_attempt(current.doc, job_id, event_id, event_type, attempt)
            if updated is None:
                return None
            if await self.objects.write_json(key, updated, current.etag) is not None:
                return updated
            await asyncio.sleep(random.random() * min(1.0, 0.02 * 2**race))
        raise BackendUnavailable(f"delivery record of {job_id} kept changing under {MAX_RACES} writes")

    # --- the backend ----------------------------------------------------------

    async def ping(self) -> None:
        await self.objects.call("head bucket", self.s3.head_bucket(Bucket=self.bucket))

    async def check_conditional_writes(self) -> None:
        """Refuse a backend that ignores If-None-Match: every guarantee of the job store rests on it."""
        key = probe_key(f"conditional-writes-{uuid.uuid4().hex}")
        first = await self.objects.put_once(key, b"probe")
        second = await self.objects.put_once(key, b"probe")
        await self.objects.delete(key)
        if not first or second:
            raise ConditionalWritesUnsupported(
                f"the S3 backend of bucket {self.bucket!r} accepted a second PutObject with "
                "If-None-Match: * on the same key; imagepipe needs an S3 server that enforces "
                "conditional writes (If-None-Match and If-Match on PutObject)"
            )


class ConditionalWritesUnsupported(Exception):
    """The S3 backend does not enforce conditional writes: no role may start against it."""
