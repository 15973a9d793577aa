"""Every object the pipeline writes is reachable from a live job or expires
by a lifecycle rule. moto stores lifecycle rules but never runs them, so the
rules are checked as configuration, and the tags and prefixes they act on
by behaviour, through the real job store against the moto server."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import boto3  # type: ignore[import-untyped]

from imagepipe import lifecycle
from imagepipe.aws import open_clients
from imagepipe.config import load_settings
from imagepipe.context import SourceInfo
from imagepipe.jobs import new_job_id, now_iso
from imagepipe.jobstore import keys
from imagepipe.jobstore.documents import queued_doc
from imagepipe.jobstore.store import JobStore
from imagepipe.jobstore.transitions import Delete, Event, Fail, Queue, Start
from imagepipe.spec import DEFAULT_SPEC
from tests.support.backend import CREDENTIALS, MotoServer, provision

# Reachable from a live job: its status document and its variants (removed with it).
KEPT = {keys.VARIANTS}
SQS_MAX_RETENTION_DAYS, SQS_MAX_VISIBILITY_HOURS = 14, 12


def test_every_prefix_we_write_is_kept_with_its_job_or_expires() -> None:
    rules = lifecycle.lifecycle_rules()
    by_prefix = {r["Filter"]["Prefix"] for r in rules if "Prefix" in r["Filter"]}
    by_tag = {
        tag["Value"]
        for r in rules
        if "And" in r["Filter"] and r["Filter"]["And"]["Prefix"] == keys.JOBS
        for tag in r["Filter"]["And"]["Tags"]
    }
    # Every prefix the keys module defines (a new one must be kept or expire).
    written = {v for n, v in vars(keys).items() if n.isupper() and isinstance(v, str) and v.endswith("/")}
    assert {keys.ORIGINALS, keys.JOBS, keys.WEBHOOKS} <= written
    assert written - KEPT - {keys.JOBS} == by_prefix
    assert by_tag == {lifecycle.UNSENT, lifecycle.TOMBSTONE}, (
        "status documents expire only when unsent or deleted"
    )
    assert len({r["ID"] for r in rules}) == len(rules)
    # A tombstone, and a delivery record, outlive every message that could bring its job back
    # or carry one of its events.
    assert _expiry_days(rules, keys.WEBHOOKS) == lifecycle.MESSAGE_LIFETIME_DAYS
    assert lifecycle.MESSAGE_LIFETIME_DAYS * 24 >= SQS_MAX_RETENTION_DAYS * 24 + SQS_MAX_VISIBILITY_HOURS


def _expiry_days(rules: list[dict[str, Any]], prefix: str) -> int:
    [days] = [r["Expiration"]["Days"] for r in rules if r["Filter"].get("Prefix") == prefix]
    return int(days)


def test_provisioning_stores_every_rule(moto: MotoServer) -> None:
    env = {
        **CREDENTIALS,
        "IMAGEPIPE_AWS_ENDPOINT_URL": moto.endpoint,
        "IMAGEPIPE_BUCKET": "lifecycle-rules",
        "IMAGEPIPE_QUEUE_NAME": "lifecycle-jobs",
    }
    provision(load_settings(env))
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    stored = s3.get_bucket_lifecycle_configuration(Bucket="lifecycle-rules")["Rules"]
    assert {r["ID"]: r["Expiration"] for r in stored} == {
        r["ID"]: r["Expiration"] for r in lifecycle.lifecycle_rules()
    }


def test_status_documents_carry_the_tag_their_state_needs(moto: MotoServer) -> None:
    env = {
        **CREDENTIALS,
        "IMAGEPIPE_AWS_ENDPOINT_URL": moto.endpoint,
        "IMAGEPIPE_BUCKET": "lifecycle-tags",
        "IMAGEPIPE_QUEUE_NAME": "lifecycle-tags-jobs",
    }
    settings = load_settings(env)
    provision(settings)
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    job_id = new_job_id()

    def tags() -> list[dict[str, Any]]:
        return list(s3.get_object_tagging(Bucket=settings.bucket, Key=keys.status_key(job_id))["TagSet"])

    async def step(event: Event) -> None:
        async with AsyncExitStack() as exits:
            client, _ = await open_clients(settings, exits)
            await JobStore(client, settings.bucket).apply(job_id, event)

    async def probe() -> None:
        async with AsyncExitStack() as exits:
            client, _ = await open_clients(settings, exits)
            await JobStore(client, settings.bucket).check_conditional_writes()

    source = SourceInfo(format="jpeg", width=1, height=1, frames=1, bytes=1)
    asyncio.run(step(Queue(queued_doc(job_id, "default", DEFAULT_SPEC, source, None, now_iso()))))
    assert tags() == [{"Key": lifecycle.TAG_KEY, "Value": lifecycle.UNSENT}], "expires if never started"
    asyncio.run(step(Start(1, now_iso())))
    assert tags() == [], "a started job's document is kept"
    asyncio.run(step(Fail("internal", "x", now_iso())))
    assert tags() == []
    markers = s3.list_objects_v2(Bucket=settings.bucket, Prefix=keys.FAILURES).get("Contents", [])
    assert [m["Key"] for m in markers] == [keys.failure_key(now_iso()[:10], job_id)]
    asyncio.run(step(Delete(now_iso())))
    assert tags() == [{"Key": lifecycle.TAG_KEY, "Value": lifecycle.TOMBSTONE}]
    asyncio.run(probe())
    assert s3.list_objects_v2(Bucket=settings.bucket, Prefix=keys.PROBES).get("KeyCount", 0) == 0
