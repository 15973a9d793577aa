"""Private stays private: originals and status documents are kept private
only by the bucket's policy, and some S3-compatible servers do not enforce
it. The probe writes an object under `originals/`, GETs it without
credentials and expects a refusal."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from imagepipe.problems import Problem
from imagepipe.provision import http_status

# Under originals/ (so the rules that keep originals private cover it), but
# never a job id, so no consumer or client can mistake it for a job.
PROBE_KEY = "originals/imagepipe-privacy-probe"


def probe_verdict(bucket: str, status: int) -> Problem | None:
    """An anonymous GET's HTTP status → the problem it shows (None: refused, private)."""
    if status in (401, 403):
        return None
    where = f"an anonymous GET of s3://{bucket}/{PROBE_KEY} answered {status}"
    if 200 <= status < 300:
        return Problem(
            "OriginalsPublic",
            f"{where}: anyone can read originals and status documents; this S3 server does not enforce"
            " the bucket's privacy (docs/backends.md lists what a server must enforce)",
        )
    return Problem("OriginalsPrivacyUnknown", f"{where}, neither a refusal (403) nor the object")


async def originals_problem(s3: Any, anonymous_s3: Any, bucket: str) -> Problem | None:
    """Write the probe with our credentials, read it without, remove it."""
    await s3.put_object(Bucket=bucket, Key=PROBE_KEY, Body=b"imagepipe privacy probe\n")
    try:
        try:
            response = await anonymous_s3.get_object(Bucket=bucket, Key=PROBE_KEY)
            async with response["Body"] as body:
                await body.read()
            status = int(response["ResponseMetadata"]["HTTPStatusCode"])
        except ClientError as exc:
            status = http_status(exc)
    finally:
        await s3.delete_object(Bucket=bucket, Key=PROBE_KEY)
    return probe_verdict(bucket, status)
