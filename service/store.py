"""The ingest's S3 and SQS operations. Every backend failure or timeout
surfaces as BackendUnavailable (503 with Retry-After), never as a hang."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from imagepipe.aws import Backends
from imagepipe.jobs import JobMessage, StatusDoc, original_key, status_key, variants_prefix
from imagepipe.service.errors import BackendUnavailable

log = logging.getLogger("imagepipe.service")
T = TypeVar("T")
FAILURES = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError)
MISSING = {"NoSuchKey", "404", "NotFound"}
PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class JobStore:
    def __init__(self, backends: Backends, timeout: float) -> None:
        self.s3, self.sqs = backends.s3, backends.sqs
        self.bucket, self.queue_url = backends.bucket, backends.queue_url
        self.timeout = timeout

    async def _call(self, what: str, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except FAILURES as exc:
            expected = isinstance(exc, ClientError) and _code(exc) in MISSING | PRECONDITION
            if not expected:
                log.warning("backend call failed", extra={"operation": what, "error": type(exc).__name__})
            raise BackendUnavailable(f"storage or queue unavailable ({what}); retry later") from exc

    async def put_original(self, job_id: str, data: bytes, content_type: str) -> None:
        await self._call(
            "put original",
            self.s3.put_object(
                Bucket=self.bucket, Key=original_key(job_id), Body=data, ContentType=content_type
            ),
        )

    async def put_json(self, key: str, doc: dict[str, Any], only_if_absent: bool = False) -> bool:
        """Write a JSON object; with only_if_absent, False when it already exists."""
        extra = {"IfNoneMatch": "*"} if only_if_absent else {}
        body = json.dumps(doc, separators=(",", ":")).encode()
        try:
            await self._call(
                f"put {key.split('/')[0]}",
                self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **extra
                ),
            )
        except BackendUnavailable as exc:
            cause = exc.__cause__
            if only_if_absent and isinstance(cause, ClientError) and _code(cause) in PRECONDITION:
                return False
            raise
        return True

    async def get_json(self, key: str) -> dict[str, Any] | None:
        """A JSON object, or None when the key does not exist."""

        async def get() -> bytes:
            response = await self.s3.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as stream:
                return bytes(await stream.read())

        try:
            body = await self._call(f"get {key.split('/')[0]}", get())
        except BackendUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in MISSING:
                return None
            raise
        try:
            doc = json.loads(body)
        except json.JSONDecodeError as exc:
            raise BackendUnavailable(f"{key.split('/')[0]} object is not JSON") from exc
        return doc if isinstance(doc, dict) else None

    async def put_status(self, doc: StatusDoc) -> None:
        await self.put_json(status_key(doc["job_id"]), doc)

    async def get_status(self, job_id: str) -> StatusDoc | None:
        return await self.get_json(status_key(job_id))

    async def enqueue(self, message: JobMessage, trace_id: str) -> None:
        attributes = {
            "trace_id": {"DataType": "String", "StringValue": trace_id},
            "enqueued_at": {"DataType": "String", "StringValue": message.enqueued_at},
        }
        await self._call(
            "send message",
            self.sqs.send_message(
                QueueUrl=self.queue_url, MessageBody=message.to_json(), MessageAttributes=attributes
            ),
        )

    async def delete_job(self, job_id: str) -> None:
        """Variants, then the original, then the status: a failed delete can be retried."""
        prefix = variants_prefix(job_id)
        while True:
            listing = await self._call(
                "list variants", self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1000)
            )
            keys = [{"Key": item["Key"]} for item in listing.get("Contents", [])]
            if not keys:
                break
            await self._call(
                "delete variants",
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}),
            )
        await self._call(
            "delete original", self.s3.delete_object(Bucket=self.bucket, Key=original_key(job_id))
        )
        await self._call("delete status", self.s3.delete_object(Bucket=self.bucket, Key=status_key(job_id)))

    async def discard(self, job_id: str) -> None:
        """Best effort: remove what a failed upload left behind (unreachable anyway)."""
        for key in (status_key(job_id), original_key(job_id)):
            try:
                await self._call("discard", self.s3.delete_object(Bucket=self.bucket, Key=key))
            except BackendUnavailable:
                return

    async def ping(self) -> None:
        await self._call("head bucket", self.s3.head_bucket(Bucket=self.bucket))
        await self._call(
            "queue attributes",
            self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"]),
        )
