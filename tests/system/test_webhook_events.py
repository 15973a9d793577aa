"""Webhook events end to end through real `imagepipe serve` and `imagepipe
consume` processes on the loopback stack (which provisions the delivery
queue when webhooks are on): an upload's `image.completed` carries exactly
what GET answers (but its `deliveries`), a broken image's `image.failed` its
error, and DELETE's `image.deleted` is on the queue before the 204; the
delivery queue is read directly (no deliverer runs). And the ingest and the
consumer emit under their own IAM policies, on a moto server that enforces
them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import requests

from imagepipe.iam import ROLES
from imagepipe.loopback import LoopbackStack
from imagepipe.webhooks.events import WebhookEvent, event_id, parse_message
from tests.support.backend import free_port
from tests.support.iam_moto import IamMoto, iam_moto
from tests.system.test_iam_enforced import (
    BUCKET,
    QUEUE,
    answers,
    assert_no_denials,
    operator_check,
    start,
    stop,
    wait_for,
)
from tests.system.test_iam_enforced import upload as iam_upload

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


@pytest.fixture
def enforced() -> Iterator[IamMoto]:
    """A moto server enforcing each role's policy, whose delivery queue is `QUEUE-webhooks`."""
    with iam_moto() as server:
        for role in ROLES:
            server.add_role(role, BUCKET, QUEUE, f"{QUEUE}-dlq")
        yield server


def test_the_emitting_roles_emit_under_their_own_policies(
    enforced: IamMoto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, corpus_dir: Path
) -> None:
    assert operator_check(enforced, monkeypatch).ready
    sqs = enforced.client("sqs")
    delivery = sqs.create_queue(QueueName=f"{QUEUE}-webhooks")["QueueUrl"]
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    hook = {"IMAGEPIPE_WEBHOOK_URL": HOOK}
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    roles = [
        start(enforced, "ingest", serve, tmp_path / "ingest.log", **hook),
        start(
            enforced,
            "consumer",
            ["consume"],
            tmp_path / "consumer.log",
            IMAGEPIPE_METRICS_PORT=str(free_port()),
            **hook,
        ),
    ]
    try:
        wait_for(answers(f"{api}/readyz", 200), "the ingest's readiness", roles)
        job_id = iam_upload(api, corpus_dir / "sharp/320x240.jpg")
        status_url = f"{api}/v1/images/{job_id}"
        wait_for(
            lambda: requests.get(status_url, timeout=5).json()["status"] == "completed", "the job", roles
        )
        assert requests.delete(status_url, timeout=30).status_code == 204
        got: list[WebhookEvent] = []

        def both() -> bool:
            response = sqs.receive_message(QueueUrl=delivery, MaxNumberOfMessages=10, VisibilityTimeout=600)
            got.extend(parse_message(m["Body"]) for m in response.get("Messages", []))
            return len(got) >= 2

        wait_for(both, "the completed and deleted events", roles)
        assert sorted((e.type, e.job_id) for e in got) == [
            ("image.completed", job_id),
            ("image.deleted", job_id),
        ]
    finally:
        stop(roles)
    assert_no_denials(tmp_path / "ingest.log", tmp_path / "consumer.log")
