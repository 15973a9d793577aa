"""The variants' CORS rule, against an S3 server that answers CORS only as
each bucket's rules say (moto with MOTO_DISABLE_GLOBAL_CORS=1, in its own
process): what `imagepipe dev` and the operator's provisioning add."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from imagepipe.aws import open_clients
from imagepipe.bucket_rules import CORS_RULE_ID
from imagepipe.config import Settings
from imagepipe.loopback import BackendServer
from imagepipe.provision import ensure_bucket
from tests.support.backend import CREDENTIALS, provision

PAGE = "https://app.example.com"
OWN_RULE = {"ID": "owner-uploads", "AllowedMethods": ["PUT"], "AllowedOrigins": ["https://admin.example.com"]}


@pytest.fixture(scope="module")
def strict_s3() -> Iterator[str]:
    """moto without its answer-every-origin CORS, as S3 proper behaves; its own
    process (the switch is read at import), environment restored after."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**CREDENTIALS, "MOTO_DISABLE_GLOBAL_CORS": "1"}.items():
            env.setenv(name, value)
        server = BackendServer(own_process=True).start()
    try:
        yield server.endpoint
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)


def preflight(url: str, origin: str) -> dict[str, str]:
    request = urllib.request.Request(
        url, method="OPTIONS", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(response.headers)
    except urllib.error.HTTPError as exc:
        return dict(exc.headers)


def get(url: str, origin: str) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Origin": origin})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers)


def test_dev_provisioning_lets_pages_on_its_origins_read_variants(strict_s3: str) -> None:
    settings = Settings(
        bucket="cors-dev",
        queue_name="cors-dev-jobs",
        s3_endpoint_url=strict_s3,
        sqs_endpoint_url=strict_s3,
        cors_origins=(PAGE,),
    )
    s3 = s3_client(strict_s3)
    # Without our rule this server answers no CORS at all (the switch works).
    s3.create_bucket(Bucket="cors-none")
    s3.put_object(Bucket="cors-none", Key="variants/x.webp", Body=b"x")
    assert "Access-Control-Allow-Origin" not in preflight(f"{strict_s3}/cors-none", PAGE)

    provision(settings)
    s3.put_object(Bucket="cors-dev", Key="variants/j/s/large.webp", Body=b"RIFF", ContentType="image/webp")
    # moto 5.2 evaluates CORS rules for preflights at the bucket's URL only
    # (S3 evaluates the same bucket rules for every key).
    headers = preflight(f"{strict_s3}/cors-dev", PAGE)
    assert headers.get("Access-Control-Allow-Origin") == PAGE
    assert set(headers.get("Access-Control-Allow-Methods", "").split(", ")) == {"GET", "HEAD"}
    assert "Access-Control-Allow-Origin" not in preflight(
        f"{strict_s3}/cors-dev", "https://elsewhere.example"
    )
    status, _ = get(f"{strict_s3}/cors-dev/variants/j/s/large.webp", PAGE)
    assert status == 200  # anonymous: the bucket policy allows variants/*


def test_the_rule_merges_with_the_owners_and_is_written_once(strict_s3: str, aws_credentials: None) -> None:
    s3 = s3_client(strict_s3)
    s3.create_bucket(Bucket="cors-owned")
    s3.put_bucket_cors(Bucket="cors-owned", CORSConfiguration={"CORSRules": [OWN_RULE]})
    settings = Settings(bucket="cors-owned", s3_endpoint_url=strict_s3, sqs_endpoint_url=strict_s3)

    async def ensure(origins: tuple[str, ...]) -> Any:
        async with AsyncExitStack() as stack:
            client, _ = await open_clients(settings, stack)
            return await ensure_bucket(client, "cors-owned", "us-east-1", False, origins)

    for _ in range(2):
        report = asyncio.run(ensure((PAGE, "http://localhost:5173")))
        assert report.problems == ()
        rules = s3.get_bucket_cors(Bucket="cors-owned")["CORSRules"]
        assert [r.get("ID") for r in rules] == ["owner-uploads", CORS_RULE_ID]
    ours = rules[1]
    assert ours["AllowedOrigins"] == [PAGE, "http://localhost:5173"]
    assert sorted(ours["AllowedMethods"]) == ["GET", "HEAD"]
