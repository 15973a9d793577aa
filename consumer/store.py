"""The consumer's S3 calls for one job: its status document, its original
and its variants (written once, never overwritten)."""

from __future__ import annotations

import json
import logging

from botocore.exceptions import ClientError

from imagepipe.aws import Backends
from imagepipe.context import RenderedVariant
from imagepipe.errors import OriginalMissing
from imagepipe.jobs import QUEUED, VARIANT_CACHE_CONTROL, JobMessage, StatusDoc, status_key, variant_key

log = logging.getLogger(__name__)
MISSING = ("NoSuchKey", "404")


async def read_status(b: Backends, job: JobMessage) -> StatusDoc:
    try:
        response = await b.s3.get_object(Bucket=b.bucket, Key=status_key(job.job_id))
        async with response["Body"] as body:
            doc: StatusDoc = json.loads(await body.read())
            return doc
    except ClientError as exc:
        if _code(exc) not in MISSING:
            raise
    log.warning("no status document; starting one from the message")
    return _status_from_message(job)


async def put_status(b: Backends, job_id: str, doc: StatusDoc) -> None:
    await b.s3.put_object(
        Bucket=b.bucket,
        Key=status_key(job_id),
        Body=json.dumps(doc).encode(),
        ContentType="application/json",
        CacheControl="no-cache",
    )


async def download(b: Backends, job: JobMessage) -> bytes:
    try:
        response = await b.s3.get_object(Bucket=b.bucket, Key=job.original_key)
    except ClientError as exc:
        if _code(exc) in MISSING:
            raise OriginalMissing(f"the original {job.original_key} does not exist") from exc
        raise
    async with response["Body"] as body:
        data: bytes = await body.read()
        return data


async def put_variant(b: Backends, job: JobMessage, rendered: RenderedVariant) -> None:
    """Write once: an existing object (same job, same spec) is never overwritten."""
    variant = rendered.variant
    try:
        await b.s3.put_object(
            Bucket=b.bucket,
            Key=variant_key(job.job_id, job.spec, variant.name, variant.extension),
            Body=rendered.data,
            ContentType=variant.content_type,
            CacheControl=VARIANT_CACHE_CONTROL,
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if _code(exc) not in ("PreconditionFailed", "412"):
            raise


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status_from_message(job: JobMessage) -> StatusDoc:
    return {
        "job_id": job.job_id,
        "status": QUEUED,
        "pipeline": job.pipeline,
        "spec": job.spec,
        "source": None,
        "variants": {},
        "error": None,
        "created_at": job.enqueued_at,
        "started_at": None,
        "completed_at": None,
        "attempts": 0,
        "owner": None,
    }
