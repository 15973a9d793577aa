"""`imagepipe dev` provisions with the same code and refuses to start on a
problem, naming it in one line: here a bucket whose policy makes originals
public."""

from __future__ import annotations

import json

import boto3  # type: ignore[import-untyped]
import pytest

from imagepipe.config import load_settings
from imagepipe.localprovision import BackendRefused, provision
from tests.support.backend import CREDENTIALS, MotoServer


def env(moto: MotoServer) -> dict[str, str]:
    return {
        **CREDENTIALS,
        "IMAGEPIPE_AWS_ENDPOINT_URL": moto.endpoint,
        "IMAGEPIPE_BUCKET": "dev-bucket",
        "IMAGEPIPE_QUEUE_NAME": "dev-jobs",
    }


def test_dev_provisions_a_private_stack(moto: MotoServer) -> None:
    moto.reset()
    queues = provision(load_settings(env(moto)), CREDENTIALS)
    assert queues.queue_url.endswith("/dev-jobs")


def test_dev_refuses_public_originals(moto: MotoServer) -> None:
    moto.reset()
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="dev-bucket")
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::dev-bucket/*",
    }
    s3.put_bucket_policy(
        Bucket="dev-bucket", Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    )
    with pytest.raises(BackendRefused) as refused:
        provision(load_settings(env(moto)), CREDENTIALS)
    assert refused.value.problem.reason == "OriginalsPublic"
    assert str(refused.value).startswith("OriginalsPublic: ") and "\n" not in str(refused.value)
