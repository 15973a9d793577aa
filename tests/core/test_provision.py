"""Provisioning against a real S3+SQS server (moto): what `imagepipe dev` and
the operator's `provision` create, that doing it twice changes nothing, and
that a bucket of someone else's keeps its own policy and lifecycle rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import boto3  # type: ignore[import-untyped]
import pytest

from imagepipe.aws import open_anonymous_s3, open_clients
from imagepipe.bucket_rules import CREATED_TAG, public_read_statement
from imagepipe.config import Settings, load_settings
from imagepipe.lifecycle import lifecycle_rules
from imagepipe.privacy import PROBE_KEY, originals_problem
from imagepipe.provision import (
    DLQ_RETENTION_SECONDS,
    BucketReport,
    ensure_bucket,
    ensure_delivery_queue,
    ensure_queues,
)
from tests.support.backend import CREDENTIALS, MotoServer, provision

T = TypeVar("T")
BUCKET = "imagepipe-prov"
OWN_RULE = {
    "ID": "owner-logs",
    "Filter": {"Prefix": "logs/"},
    "Status": "Enabled",
    "Expiration": {"Days": 30},
}
OWN_STATEMENT = {
    "Sid": "OwnerReadsLogs",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "s3:GetObject",
    "Resource": f"arn:aws:s3:::{BUCKET}/logs/*",
}


def settings(moto: MotoServer) -> Settings:
    return Settings(bucket=BUCKET, s3_endpoint_url=moto.endpoint, sqs_endpoint_url=moto.endpoint)


def with_clients(moto: MotoServer, work: Callable[[Any, Any, Any], Awaitable[T]]) -> T:
    async def go() -> T:
        async with AsyncExitStack() as stack:
            s3, sqs = await open_clients(settings(moto), stack)
            return await work(s3, sqs, await open_anonymous_s3(settings(moto), stack))

    return asyncio.run(go())


def bucket(moto: MotoServer, public_read: bool | None = None) -> BucketReport:
    async def go(s3: Any, sqs: Any, anonymous: Any) -> BucketReport:
        return await ensure_bucket(s3, BUCKET, "us-east-1", public_read)

    return with_clients(moto, go)


def boto(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.endpoint, region_name="us-east-1")


def policy(s3: Any) -> dict[str, Any] | None:
    try:
        return dict(json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]))
    except s3.exceptions.ClientError:
        return None


def rules(s3: Any) -> dict[str, dict[str, Any]]:
    found = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    return {rule["ID"]: rule for rule in found}


def owners_bucket(moto: MotoServer) -> Any:
    s3 = boto(moto, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [OWN_RULE]})
    s3.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [OWN_STATEMENT]})
    )
    return s3


def test_bucket_and_queues_are_created_idempotently(moto: MotoServer) -> None:
    moto.reset()

    async def twice(s3: Any, sqs: Any, anonymous: Any) -> dict[str, Any]:
        for _ in range(2):
            report = await ensure_bucket(s3, BUCKET, "us-east-1")
            queues = await ensure_queues(sqs, "jobs", "jobs-dlq", max_receives=4, visibility_timeout=12)
        attributes = await sqs.get_queue_attributes(QueueUrl=queues.queue_url, AttributeNames=["All"])
        return {"report": report, "queue": attributes["Attributes"], "dlq_arn": queues.dlq_arn,
                "queues": (await sqs.list_queues())["QueueUrls"]}  # fmt: skip

    got = with_clients(moto, twice)
    s3 = boto(moto, "s3")
    assert got["report"] == BucketReport(created_by_us=True, public_read=True, problems=())
    assert CREATED_TAG in s3.get_bucket_tagging(Bucket=BUCKET)["TagSet"]
    assert policy(s3) == {"Version": "2012-10-17", "Statement": [public_read_statement(BUCKET)]}
    assert set(rules(s3)) == {rule["ID"] for rule in lifecycle_rules()}
    assert rules(s3)["expire-originals"]["Expiration"]["Days"] == 7
    assert len(got["queues"]) == 2, "provisioning twice must not create more queues"
    redrive = json.loads(got["queue"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == got["dlq_arn"]
    assert int(redrive["maxReceiveCount"]) == 4
    assert got["queue"]["VisibilityTimeout"] == "12"


def test_an_owners_bucket_keeps_its_policy_and_rules(moto: MotoServer) -> None:
    moto.reset()
    s3 = owners_bucket(moto)
    for _ in range(2):
        report = bucket(moto)
        assert report == BucketReport(created_by_us=False, public_read=False, problems=())
    assert set(rules(s3)) == {"owner-logs", *(rule["ID"] for rule in lifecycle_rules())}
    assert rules(s3)["owner-logs"]["Expiration"] == {"Days": 30}
    assert policy(s3) == {"Version": "2012-10-17", "Statement": [OWN_STATEMENT]}, (
        "the owner's policy is untouched"
    )


def test_public_read_asked_on_an_owners_policy_is_a_conflict_not_a_rewrite(moto: MotoServer) -> None:
    moto.reset()
    s3 = owners_bucket(moto)
    report = bucket(moto, public_read=True)
    assert [p.reason for p in report.problems] == ["BucketPolicyConflict"]
    assert json.dumps(public_read_statement(BUCKET), separators=(",", ":")) in report.problems[0].message
    assert policy(s3) == {"Version": "2012-10-17", "Statement": [OWN_STATEMENT]}


@pytest.mark.parametrize("public_read", [True, False])
def test_public_read_on_a_bucket_without_policy(moto: MotoServer, public_read: bool) -> None:
    moto.reset()
    s3 = boto(moto, "s3")
    s3.create_bucket(Bucket=BUCKET)
    report = bucket(moto, public_read=public_read)
    assert (report.public_read, report.problems) == (public_read, ())
    expected = (
        {"Version": "2012-10-17", "Statement": [public_read_statement(BUCKET)]} if public_read else None
    )
    assert policy(s3) == expected
    # Turned off again: our own policy goes, and only ours.
    assert bucket(moto, public_read=False).problems == ()
    assert policy(s3) is None


def test_block_public_access_is_read_and_reported(moto: MotoServer) -> None:
    """moto stores a public policy despite the block (AWS would refuse it): we do not try."""
    moto.reset()
    s3 = boto(moto, "s3")
    s3.create_bucket(Bucket=BUCKET)
    block = {
        key: True
        for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    }
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration=block)
    report = bucket(moto, public_read=True)
    assert [p.reason for p in report.problems] == ["PublicAccessBlocked"]
    assert policy(s3) is None
    assert set(rules(s3)) == {rule["ID"] for rule in lifecycle_rules()}, "the other steps still ran"


def test_an_existing_queue_is_never_changed_only_given_a_missing_redrive(moto: MotoServer) -> None:
    moto.reset()
    sqs = boto(moto, "sqs")
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]

    async def go(s3: Any, aio_sqs: Any, anonymous: Any) -> None:
        await ensure_queues(aio_sqs, "jobs", "jobs-dlq", max_receives=3, visibility_timeout=60)

    with_clients(moto, go)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "7"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith(":jobs-dlq")


def test_the_delivery_queue_is_created_once_without_redrive(moto: MotoServer) -> None:
    moto.reset()

    async def go(s3: Any, sqs: Any, anonymous: Any) -> list[Any]:
        missing = await ensure_delivery_queue(sqs, "jobs-webhooks", 3600, create=False)
        made = [await ensure_delivery_queue(sqs, "jobs-webhooks", 3600) for _ in range(2)]
        return [missing, *made]

    missing, first, second = with_clients(moto, go)
    assert (missing.url, [p.reason for p in missing.problems]) == (None, ["WebhookQueueMissing"])
    assert first == second and first.problems == () and first.url is not None
    sqs = boto(moto, "sqs")
    assert len(sqs.list_queues()["QueueUrls"]) == 1
    attributes = sqs.get_queue_attributes(QueueUrl=first.url, AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == str(DLQ_RETENTION_SECONDS)
    assert "RedrivePolicy" not in attributes


def test_an_existing_delivery_queue_is_reported_not_changed(moto: MotoServer) -> None:
    moto.reset()
    sqs = boto(moto, "sqs")
    url = sqs.create_queue(QueueName="jobs-webhooks", Attributes={"MessageRetentionPeriod": "600"})[
        "QueueUrl"
    ]

    async def go(s3: Any, aio_sqs: Any, anonymous: Any) -> Any:
        return await ensure_delivery_queue(aio_sqs, "jobs-webhooks", 3600)

    found = with_clients(moto, go)
    assert found.url == url
    assert [p.reason for p in found.problems] == ["WebhookQueueRetentionTooShort"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "600"


@pytest.mark.parametrize(
    ("resource", "reason"),
    [(f"arn:aws:s3:::{BUCKET}/variants/*", None), (f"arn:aws:s3:::{BUCKET}/*", "OriginalsPublic")],
    ids=["variants-only", "whole-bucket"],
)
def test_originals_probe(moto: MotoServer, resource: str, reason: str | None) -> None:
    moto.reset()
    s3 = boto(moto, "s3")
    s3.create_bucket(Bucket=BUCKET)
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": resource}
    s3.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )

    async def go(aio_s3: Any, sqs: Any, anonymous: Any) -> Any:
        return await originals_problem(aio_s3, anonymous, BUCKET)

    problem = with_clients(moto, go)
    assert (problem.reason if problem else None) == reason
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=PROBE_KEY), "the probe is removed"


def test_a_local_stack_with_webhooks_gets_its_delivery_queue(moto: MotoServer) -> None:
    moto.reset()
    env = {
        **CREDENTIALS,
        "IMAGEPIPE_AWS_ENDPOINT_URL": moto.endpoint,
        "IMAGEPIPE_BUCKET": BUCKET,
        "IMAGEPIPE_QUEUE_NAME": "local-jobs",
    }
    assert provision(load_settings(env)).webhook_queue_url == "", "no webhooks, no delivery queue"
    queues = provision(load_settings({**env, "IMAGEPIPE_WEBHOOK_URL": "https://example.com/hook"}))
    assert queues.webhook_queue_url.endswith("/local-jobs-webhooks")
    sqs = boto(moto, "sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=queues.webhook_queue_url, AttributeNames=["All"])
    assert "RedrivePolicy" not in attributes["Attributes"]
