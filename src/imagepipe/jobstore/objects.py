"""S3 objects as the job store needs them: one call wrapper (timeout, one
error type), the error codes that mean "missing" and "someone else wrote
first" (listed once), and conditional JSON reads and writes."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from imagepipe.errors import BackendUnavailable

log = logging.getLogger("imagepipe.jobstore")
T = TypeVar("T")
FAILURES = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError)
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# 412 for a failed If-Match / If-None-Match; real S3 may answer 409 to
# concurrent conditional writes of one key.
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
JSON_TYPE = "application/json"


def error_code(exc: BaseException) -> str:
    """The S3 error code behind `exc` (through BackendUnavailable), or ''."""
    cause = exc.__cause__ if isinstance(exc, BackendUnavailable) else exc
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", ""))
    return ""


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in MISSING_CODES


def is_conflict(exc: BaseException) -> bool:
    return error_code(exc) in CONFLICT_CODES


@dataclass(frozen=True)
class Versioned:
    """A JSON object and its ETag; both None when the key does not exist."""

    doc: dict[str, Any] | None
    etag: str | None


class Objects:
    def __init__(self, s3: Any, bucket: str, timeout: float) -> None:
        self.s3, self.bucket, self.timeout = s3, bucket, timeout

    async def call(self, what: str, call: Awaitable[T]) -> T:
        """Await one S3 call; every failure or timeout becomes BackendUnavailable."""
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except FAILURES as exc:
            if error_code(exc) not in MISSING_CODES | CONFLICT_CODES:
                log.warning("backend call failed", extra={"operation": what, "error": type(exc).__name__})
            raise BackendUnavailable(f"storage or queue unavailable ({what}); retry later") from exc

    async def read_bytes(self, key: str) -> tuple[bytes, str] | None:
        """The object's body and ETag, or None when it does not exist."""

        async def get() -> tuple[bytes, str]:
            response = await self.s3.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as stream:
                return bytes(await stream.read()), str(response.get("ETag", ""))

        try:
            return await self.call(f"get {key.split('/')[0]}", get())
        except BackendUnavailable as exc:
            if is_missing(exc):
                return None
            raise

    async def read_json(self, key: str) -> Versioned:
        found = await self.read_bytes(key)
        if found is None:
            return Versioned(None, None)
        body, etag = found
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise BackendUnavailable(f"{key} is not JSON") from exc
        return Versioned(doc if isinstance(doc, dict) else None, etag)

    async def write_json(
        self, key: str, doc: dict[str, Any], etag: str | None, tag: str | None = None
    ) -> str | None:
        """Compare-and-swap: replace the version `etag` (None: create only if absent).

        The new version's ETag; None when another writer got there first (412,
        or 409 from real S3).
        """
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        extra = {"Tagging": tag} if tag else {}
        body = json.dumps(doc, separators=(",", ":")).encode()
        try:
            response = await self.call(
                f"put {key.split('/')[0]}",
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType=JSON_TYPE,
                    CacheControl="no-cache",
                    **condition,
                    **extra,
                ),
            )
        except BackendUnavailable as exc:
            if is_conflict(exc):
                return None
            raise
        return str(response.get("ETag", ""))

    async def put(self, key: str, body: bytes, **extra: Any) -> None:
        await self.call(
            f"put {key.split('/')[0]}", self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        )

    async def put_once(self, key: str, body: bytes, **extra: Any) -> bool:
        """Write unless the key exists (then False, and nothing is overwritten)."""
        try:
            await self.put(key, body, IfNoneMatch="*", **extra)
        except BackendUnavailable as exc:
            if is_conflict(exc):
                return False
            raise
        return True

    async def delete(self, key: str, etag: str | None = None) -> None:
        extra = {"IfMatch": etag} if etag is not None else {}
        await self.call(
            f"delete {key.split('/')[0]}", self.s3.delete_object(Bucket=self.bucket, Key=key, **extra)
        )

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            listing = await self.call(
                f"list {prefix.split('/')[0]}",
                self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1000, **token),
            )
            keys += [item["Key"] for item in listing.get("Contents", [])]
            if not listing.get("IsTruncated"):
                return keys
            token = {"ContinuationToken": listing["NextContinuationToken"]}

    async def delete_prefix(self, prefix: str) -> None:
        keys = await self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            answer = await self.call(
                "delete batch",
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}),
            )
            # A key S3 refused comes back in Errors under a 200: it is still there.
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise BackendUnavailable(
                    f"storage refused to delete {first.get('Key')} ({first.get('Code')})"
                )
