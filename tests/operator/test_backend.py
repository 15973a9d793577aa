"""The backend check against S3+SQS on loopback (moto's server): missing
pieces give a reason; `provision` creates them, redrive included, and adds
to a bucket of someone else's without replacing its configuration; the
queue contract, servable variants and private originals are each checked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.exceptions import ClientError

from imagepipe.bucket_rules import public_read_statement
from imagepipe.lifecycle import lifecycle_rules
from imagepipe.operator.backend import BackendState, check_backend, failure_state, retry_delay
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.queue_contract import DAY
from tests.support.backend import MotoServer

BUCKET = "photos-imagepipe"


def pipeline(body: dict[str, Any], endpoint: str, provision: bool, **backend: Any) -> Any:
    body["spec"]["backend"].update(endpointUrl=endpoint, provision=provision, **backend)
    return parse_imagepipeline(body)


def check(body: dict[str, Any], moto: MotoServer, provision: bool = False, **backend: Any) -> BackendState:
    return asyncio.run(check_backend(pipeline(body, moto.endpoint, provision, **backend)))


def clients(moto: MotoServer) -> tuple[Any, Any]:
    kwargs = {"endpoint_url": moto.endpoint, "region_name": "us-east-1"}
    return boto3.client("s3", **kwargs), boto3.client("sqs", **kwargs)


def test_missing_bucket_then_provisioned(moto: MotoServer, minimal: dict[str, Any]) -> None:
    moto.reset()
    state = check(minimal, moto)
    assert (state.ready, state.reason) == (False, "BucketMissing")
    state = check(minimal, moto, provision=True)
    assert (state.ready, state.reason) == (True, "BackendReady"), state.message
    # Idempotent: a second pass with provision off finds everything.
    assert check(minimal, moto).ready
    minimal["spec"]["backend"]["queue"] = "other-jobs"
    state = check(minimal, moto)
    assert (state.ready, state.reason) == (False, "QueueMissing")


def test_unreachable_backend(minimal: dict[str, Any], aws_credentials: None) -> None:
    state = asyncio.run(check_backend(pipeline(minimal, "http://127.0.0.1:9", provision=False)))
    assert (state.ready, state.reason) == (False, "BackendUnreachable")


def owners_bucket(moto: MotoServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """moto ignores a bucket policy's Principal (any Allow reads as public), so the
    owner's statement stays off originals/ here."""
    s3, _ = clients(moto)
    s3.create_bucket(Bucket=BUCKET)
    rule = {"ID": "owner", "Filter": {"Prefix": "exports/"}, "Status": "Enabled", "Expiration": {"Days": 90}}
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [rule]})
    statement = {
        "Sid": "Owner",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:*",
        "Resource": f"arn:aws:s3:::{BUCKET}/exports/*",
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    return rule, policy


def test_an_owners_bucket_is_added_to_not_replaced(moto: MotoServer, minimal: dict[str, Any]) -> None:
    """The issue's row: provision into a bucket with its own policy and rules."""
    moto.reset()
    rule, policy = owners_bucket(moto)
    state = check(minimal, moto, provision=True)
    # Not public by default on a bucket we did not create, and no CDN named.
    assert (state.ready, state.reason) == (False, "VariantsUnservable"), state.message
    state = check(minimal, moto, provision=True, publicRead=True)
    assert (state.ready, state.reason) == (False, "BucketPolicyConflict"), state.message
    minimal["spec"]["publicUrl"] = "https://img.example.com"
    state = check(minimal, moto, provision=True, publicRead=False)
    assert state.ready, state.message
    s3, _ = clients(moto)
    assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]) == policy
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert rules.keys() == {"owner", *(rule["ID"] for rule in lifecycle_rules())}
    assert rules["owner"]["Expiration"] == rule["Expiration"]


def test_public_read_on_a_created_bucket(moto: MotoServer, minimal: dict[str, Any]) -> None:
    moto.reset()
    assert check(minimal, moto, provision=True).ready
    s3, _ = clients(moto)
    statement = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]
    assert statement == [public_read_statement(BUCKET)]
    state = check(minimal, moto, provision=True, publicRead=False)
    assert (state.ready, state.reason) == (False, "VariantsUnservable")
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_policy(Bucket=BUCKET)


def test_block_public_access_is_not_ready(moto: MotoServer, minimal: dict[str, Any]) -> None:
    moto.reset()
    s3, _ = clients(moto)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    state = check(minimal, moto, provision=True, publicRead=True)
    assert (state.ready, state.reason) == (False, "PublicAccessBlocked"), state.message


def test_originals_public(moto: MotoServer, minimal: dict[str, Any]) -> None:
    moto.reset()
    assert check(minimal, moto, provision=True).ready
    s3, _ = clients(moto)
    everything = {**public_read_statement(BUCKET), "Resource": f"arn:aws:s3:::{BUCKET}/*"}
    s3.put_bucket_policy(
        Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [everything]})
    )
    state = check(minimal, moto)
    assert (state.ready, state.reason) == (False, "OriginalsPublic"), state.message
    assert "originals" in state.message


def queue_pair(sqs: Any, dlq_retention: int = 14 * DAY, visibility: int = 30) -> str:
    dlq = sqs.create_queue(
        QueueName="photos-jobs-dlq", Attributes={"MessageRetentionPeriod": str(dlq_retention)}
    )
    arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
    attributes = {"RedrivePolicy": redrive, "VisibilityTimeout": str(visibility)}
    sqs.create_queue(QueueName="photos-jobs", Attributes=attributes)
    return redrive


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (lambda sqs: queue_pair(sqs), "BackendReady"),
        (lambda sqs: queue_pair(sqs, dlq_retention=DAY), "DeadLetterRetentionTooShort"),
        (lambda sqs: queue_pair(sqs, visibility=10), "VisibilityTimeoutTooShort"),
        (
            lambda sqs: sqs.create_queue(
                QueueName="another-team-jobs", Attributes={"RedrivePolicy": queue_pair(sqs)}
            ),
            "DeadLetterQueueShared",
        ),
    ],
    ids=["kept", "dlq-retention", "visibility", "dlq-shared"],
)
def test_queue_contract(moto: MotoServer, minimal: dict[str, Any], arrange: Any, reason: str) -> None:
    moto.reset()
    _, sqs = clients(moto)
    arrange(sqs)
    minimal["spec"]["publicUrl"] = "https://img.example.com"
    state = check(minimal, moto, provision=True)
    assert state.reason == reason, state.message
    assert state.ready is (reason == "BackendReady")


def test_refusals_back_off() -> None:
    delays = [retry_delay(n) for n in range(8)]
    assert delays[:3] == [15, 30, 60]
    assert delays == sorted(delays) and max(delays) == 600
    assert retry_delay(10_000) == 600


@pytest.mark.parametrize(
    ("status", "reason"),
    [(403, "BackendAccessDenied"), (401, "BackendAccessDenied"), (500, "BackendUnreachable")],
)
def test_a_refused_call_names_the_missing_permission(status: int, reason: str) -> None:
    error = {"Error": {"Code": str(status)}, "ResponseMetadata": {"HTTPStatusCode": status}}
    state = failure_state(ClientError(error, "GetBucketTagging"))
    assert (state.ready, state.reason) == (False, reason)
    assert "GetBucketTagging" in state.message


def test_the_delivery_queue_is_provisioned_or_checked(moto: MotoServer, minimal: dict[str, Any]) -> None:
    """With spec.webhook: QUEUE-webhooks beside the job queue, kept for the whole horizon."""
    moto.reset()
    assert check(minimal, moto, provision=True).ready  # the rest, before the webhook is named
    _, sqs = clients(moto)
    with pytest.raises(ClientError):
        sqs.get_queue_url(QueueName="photos-jobs-webhooks")
    minimal["spec"]["webhook"] = {"url": "https://hooks.example.com/in", "secretRef": {"name": "hooks"}}
    state = check(minimal, moto)
    assert (state.ready, state.reason) == (False, "WebhookQueueMissing"), state.message
    assert "photos-jobs-webhooks" in state.message
    state = check(minimal, moto, provision=True)
    assert state.ready, state.message
    url = sqs.get_queue_url(QueueName="photos-jobs-webhooks")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["MessageRetentionPeriod"]) == 14 * DAY and "RedrivePolicy" not in attributes
    assert check(minimal, moto).ready  # idempotent: found, not created again
    # A queue of the owner's that drops events before their horizon is reported, never changed.
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": str(DAY)})
    minimal["spec"]["webhook"]["horizonSeconds"] = 2 * DAY
    state = check(minimal, moto, provision=True)
    assert (state.ready, state.reason) == (False, "WebhookQueueRetentionTooShort"), state.message
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    assert attributes["Attributes"]["MessageRetentionPeriod"] == str(DAY)
