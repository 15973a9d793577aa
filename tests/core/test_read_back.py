"""Every configuration write is read back: a server that answers 200 and
stores nothing, or 501, is reported as a problem, never a crash or a
silent success; likewise a DeleteObjects that answers 200 but refused keys."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from imagepipe.aws import open_clients
from imagepipe.config import Settings
from imagepipe.errors import BackendUnavailable
from imagepipe.jobstore.objects import Objects
from imagepipe.provision import BucketReport, ensure_bucket
from tests.support.fake_s3 import LISTED_KEY, fake_s3


def provision(endpoint: str) -> BucketReport:
    async def go() -> BucketReport:
        async with AsyncExitStack() as stack:
            s3, _ = await open_clients(Settings(bucket="photos", s3_endpoint_url=endpoint), stack)
            return await ensure_bucket(s3, "photos", "us-east-1", public_read=True)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("mode", "reason", "named"),
    [
        ("forgetful", "ConfigurationNotStored", ["PutBucketLifecycleConfiguration", "PutBucketPolicy"]),
        ("unimplemented", "ConfigurationUnsupported", ["GetBucketLifecycleConfiguration", "GetBucketPolicy"]),
    ],
)
def test_unstored_and_unsupported_writes_are_reported(
    aws_credentials: None, mode: str, reason: str, named: list[str]
) -> None:
    with fake_s3(mode) as endpoint:
        report = provision(endpoint)
    assert [p.reason for p in report.problems] == [reason, reason]
    for problem, operation in zip(report.problems, named, strict=True):
        assert operation in problem.message and "'photos'" in problem.message


def test_a_delete_refused_key_by_key_is_not_taken_for_done(aws_credentials: None) -> None:
    """DeleteObjects answers 200 and lists refused keys in Errors: the job store must
    raise (the ingest answers 503), not report the variants gone."""

    async def go(endpoint: str) -> None:
        async with AsyncExitStack() as stack:
            s3, _ = await open_clients(Settings(bucket="photos", s3_endpoint_url=endpoint), stack)
            await Objects(s3, "photos", timeout=10).delete_prefix("variants/job/")

    with fake_s3("refuses-deletes") as endpoint, pytest.raises(BackendUnavailable, match=LISTED_KEY):
        asyncio.run(go(endpoint))
