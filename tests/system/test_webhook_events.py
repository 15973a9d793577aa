"""Webhook events end to end through real `imagepipe serve` and `imagepipe
consume` processes on the loopback stack (which provisions the delivery
queue when webhooks are on): an upload's `image.completed` carries exactly
what GET answers (but its `deliveries`), a broken image's `image.failed` its
error, and DELETE's `image.deleted` is on the queue before the 204; the
delivery queue is read directly (no deliverer runs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import requests

from imagepipe.loopback import LoopbackStack
from imagepipe.webhooks.events import WebhookEvent, event_id, parse_message

pytestmark = pytest.mark.system
HOOK = "https://hooks.example.test/imagepipe"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoopbackStack, Any]]:
    stack = LoopbackStack(
        extra_env={"IMAGEPIPE_WEBHOOK_URL": HOOK, "IMAGEPIPE_LOG_LEVEL": "info"},
        log_dir=tmp_path_factory.mktemp("webhook-stack"),
    )
    with stack:
        stack.start_ingest()
        stack.start_consumer()
        stack.wait_ready()
        sqs = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=stack.endpoint,
            aws_access_key_id="imagepipe-dev",
            aws_secret_access_key="imagepipe-dev",
        )
        assert stack.queues is not None and stack.queues.webhook_queue_url
        yield stack, sqs


def events(stack: LoopbackStack, sqs: Any, count: int, timeout: float = 60) -> list[WebhookEvent]:
    assert stack.queues is not None
    got: list[WebhookEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, got
        response = sqs.receive_message(
            QueueUrl=stack.queues.webhook_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=600,
        )
        got += [parse_message(m["Body"]) for m in response.get("Messages", [])]
    return got


def finished(stack: LoopbackStack, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc: dict[str, Any] = requests.get(f"{stack.api}/v1/images/{job_id}", timeout=10).json()
        if doc["status"] in ("completed", "failed"):
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)


def upload(stack: LoopbackStack, data: bytes) -> str:
    r = requests.post(f"{stack.api}/v1/images", files={"file": data}, timeout=30)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def test_completed_failed_and_deleted_events_carry_what_get_answers(
    running: tuple[LoopbackStack, Any], corpus_dir: Path
) -> None:
    stack, sqs = running
    good = upload(stack, (corpus_dir / "sharp/320x240.jpg").read_bytes())
    bad = upload(stack, (corpus_dir / "sharp/truncated.jpg").read_bytes())
    shown = {job_id: finished(stack, job_id) for job_id in (good, bad)}
    got = {event.job_id: event for event in events(stack, sqs, 2)}
    for job_id, event_type in ((good, "image.completed"), (bad, "image.failed")):
        doc = shown[job_id]
        assert doc.pop("deliveries") == [], "no deliverer runs: no attempt yet"
        assert got[job_id].type == event_type and got[job_id].data == doc
        assert got[job_id].id == event_id(job_id, event_type, doc["completed_at"])
    assert shown[bad]["error"]["code"] == "corrupt_image"
    assert shown[good]["variants"] and shown[good]["srcset"]

    assert requests.delete(f"{stack.api}/v1/images/{good}", timeout=10).status_code == 204
    [deleted] = events(stack, sqs, 1)
    assert (deleted.type, deleted.job_id, deleted.data["status"]) == ("image.deleted", good, "deleted")
    metrics = requests.get(f"{stack.api}/metrics", timeout=10).text
    assert 'imagepipe_webhook_events_total{event="image.deleted"} 1.0' in metrics
