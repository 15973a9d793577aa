"""The backend check against S3+SQS on loopback (moto's server): missing
pieces give a reason; `provision` creates them, redrive included."""

from __future__ import annotations

import asyncio
from typing import Any

from imagepipe.operator.backend import check_backend, queue_name
from imagepipe.operator.imagepipeline import parse_imagepipeline
from tests.support.backend import MotoServer


def pipeline(body: dict[str, Any], endpoint: str, provision: bool) -> Any:
    body["spec"]["backend"].update(endpointUrl=endpoint, provision=provision)
    return parse_imagepipeline(body)


def test_missing_bucket_then_provisioned(moto: MotoServer, minimal: dict[str, Any]) -> None:
    moto.reset()
    state = asyncio.run(check_backend(pipeline(minimal, moto.endpoint, provision=False)))
    assert (state.ready, state.reason) == (False, "BucketMissing")
    state = asyncio.run(check_backend(pipeline(minimal, moto.endpoint, provision=True)))
    assert (state.ready, state.reason) == (True, "BackendReady")
    # Idempotent: a second pass with provision off finds everything.
    state = asyncio.run(check_backend(pipeline(minimal, moto.endpoint, provision=False)))
    assert state.ready
    minimal["spec"]["backend"]["queue"] = "other-jobs"
    state = asyncio.run(check_backend(pipeline(minimal, moto.endpoint, provision=False)))
    assert (state.ready, state.reason) == (False, "QueueMissing")


def test_unreachable_backend(minimal: dict[str, Any], aws_credentials: None) -> None:
    state = asyncio.run(check_backend(pipeline(minimal, "http://127.0.0.1:9", provision=False)))
    assert (state.ready, state.reason) == (False, "BackendUnreachable")


def test_queue_name_from_url() -> None:
    assert queue_name("https://sqs.eu-west-1.amazonaws.com/123/jobs") == "jobs"
    assert queue_name("jobs") == "jobs"
