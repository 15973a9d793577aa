"""Provisioning against a real S3+SQS server: what `imagepipe dev` and the
operator's `provision` create, and that doing it twice changes nothing."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from imagepipe.aws import open_clients
from imagepipe.config import Settings
from imagepipe.provision import LIFECYCLE, ensure_bucket, ensure_queues
from tests.support.backend import MotoServer


def _provision_twice(settings: Settings) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with AsyncExitStack() as stack:
            s3, sqs = await open_clients(settings, stack)
            for _ in range(2):
                await ensure_bucket(s3, settings.bucket, settings.region)
                queues = await ensure_queues(sqs, "jobs", "jobs-dlq", max_receives=4, visibility_timeout=12)
            attributes = await sqs.get_queue_attributes(QueueUrl=queues.queue_url, AttributeNames=["All"])
            return {
                "policy": json.loads((await s3.get_bucket_policy(Bucket=settings.bucket))["Policy"]),
                "lifecycle": await s3.get_bucket_lifecycle_configuration(Bucket=settings.bucket),
                "queue": attributes["Attributes"],
                "dlq_arn": queues.dlq_arn,
                "queues": (await sqs.list_queues())["QueueUrls"],
            }

    return asyncio.run(go())


def test_bucket_and_queues_are_created_idempotently(moto: MotoServer) -> None:
    moto.reset()
    settings = Settings(
        bucket="imagepipe-prov", s3_endpoint_url=moto.endpoint, sqs_endpoint_url=moto.endpoint
    )
    got = _provision_twice(settings)

    (statement,) = got["policy"]["Statement"]
    assert statement["Principal"] == "*" and statement["Action"] == "s3:GetObject"
    assert statement["Resource"] == "arn:aws:s3:::imagepipe-prov/variants/*"
    rules = {rule["ID"]: rule for rule in got["lifecycle"]["Rules"]}
    assert set(rules) == {rule["ID"] for rule in LIFECYCLE["Rules"]}
    assert rules["expire-originals"]["Expiration"]["Days"] == 7
    assert len(got["queues"]) == 2, "provisioning twice must not create more queues"
    redrive = json.loads(got["queue"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == got["dlq_arn"]
    assert int(redrive["maxReceiveCount"]) == 4
    assert got["queue"]["VisibilityTimeout"] == "12"
