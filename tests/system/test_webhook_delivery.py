"""Webhook delivery with real processes on the loopback stack (moto server,
`imagepipe serve`, `imagepipe consume`, `imagepipe deliver`) and a real
aiohttp receiver, every request's signature verified by the
`standardwebhooks` package: a receiver failing its first attempts then
accepting (through real uploads and a DELETE), one down for a while and back,
a deliverer SIGKILLed mid-retry and restarted, and an unsafe target refused
at start-up. Backoff is 1 s doubling to 2 s, a received event is hidden
20 s; every wait polls with a generous timeout, and no duration is asserted."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import requests

from imagepipe.jobs import new_job_id, now_iso
from imagepipe.jobstore.deliveries import DELIVERED, listed
from imagepipe.jobstore.keys import delivery_key
from imagepipe.loopback import DUMMY_CREDENTIALS, LoopbackStack
from imagepipe.processes import ROLE_COMMAND
from imagepipe.webhooks.events import IMAGE_COMPLETED, IMAGE_DELETED, WebhookEvent, event_for, to_message
from tests.support.webhook_receiver import Receiver, new_secret

pytestmark = pytest.mark.system
TIMEOUT = 180


def webhook_env(receiver: Receiver) -> dict[str, str]:
    return {
        "IMAGEPIPE_WEBHOOK_URL": receiver.url,
        "IMAGEPIPE_WEBHOOK_SECRET": receiver.secret,
        "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE": "true",
        "IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS": "2",
        "IMAGEPIPE_WEBHOOK_BACKOFF_SECONDS": "1",
        "IMAGEPIPE_WEBHOOK_BACKOFF_MAX_SECONDS": "2",
        # A SIGKILLed deliverer's events come back after this, not the default 2 + 60 s;
        # still ten times one attempt, so none reappears during its own delivery.
        "IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS": "20",
        "IMAGEPIPE_SHUTDOWN_GRACE_SECONDS": "5",
        "IMAGEPIPE_SHUTDOWN_DELAY_SECONDS": "0",
        "IMAGEPIPE_LOG_LEVEL": "info",
    }


@contextmanager
def stack_for(receiver: Receiver, log_dir: Path, *roles: str) -> Iterator[LoopbackStack]:
    with LoopbackStack(extra_env=webhook_env(receiver), log_dir=log_dir) as stack:
        for role in roles:
            getattr(stack, f"start_{role}")()
        stack.wait_ready()
        yield stack


def client(stack: LoopbackStack, service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=stack.endpoint, **_keys())


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def records(stack: LoopbackStack, job_id: str) -> list[dict[str, Any]]:
    s3 = client(stack, "s3")
    try:
        body = s3.get_object(Bucket=stack.bucket, Key=delivery_key(job_id))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return listed(json.loads(body))


def queue_empty(stack: LoopbackStack) -> bool:
    assert stack.queues is not None
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    found = client(stack, "sqs").get_queue_attributes(
        QueueUrl=stack.queues.webhook_queue_url, AttributeNames=names
    )
    return all(found["Attributes"][name] == "0" for name in names)


def wait_for(check: Callable[[], bool], what: str, stack: LoopbackStack) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not check():
        assert not stack.exited(), f"{stack.exited()} exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def send_events(stack: LoopbackStack, count: int) -> list[WebhookEvent]:
    """Events as a producer emits them, sent straight to the delivery queue."""
    assert stack.queues is not None
    sqs, events = client(stack, "sqs"), []
    for _ in range(count):
        doc = {"job_id": new_job_id(), "status": "completed", "completed_at": now_iso(), "variants": {}}
        event = event_for(doc, stack.variant_base_url)
        assert event is not None
        sqs.send_message(QueueUrl=stack.queues.webhook_queue_url, MessageBody=to_message(event))
        events.append(event)
    return events


def assert_each_accepted_once(receiver: Receiver, ids: set[str]) -> None:
    assert all(seen.verified for seen in receiver.requests()), "every attempt is signed for the secret"
    assert receiver.accepted() == dict.fromkeys(ids, 1)
    for event_id in ids:
        bodies = {seen.body for seen in receiver.requests() if seen.webhook_id == event_id}
        assert len(bodies) == 1, "every attempt of an event carries the same id and body"


def upload(api: str, photo: Path) -> str:
    with photo.open("rb") as body:
        answer = requests.post(f"{api}/v1/images", files={"file": ("p.jpg", body, "image/jpeg")}, timeout=30)
    assert answer.status_code in (200, 202), answer.text
    return str(answer.json()["job_id"])


def test_a_receiver_failing_first_gets_every_upload_and_deletion_once(
    tmp_path: Path, corpus_dir: Path
) -> None:
    with (
        Receiver(new_secret(), failing=3) as receiver,
        stack_for(receiver, tmp_path, "ingest", "consumer", "deliverer") as stack,
    ):
        photos = sorted((corpus_dir / "recurser").glob("*.jpg"))[:2]
        jobs = [upload(stack.api, photo) for photo in photos]

        def completed_events() -> dict[str, str]:
            found = {}
            for seen in receiver.requests():
                if 200 <= seen.status < 300 and seen.payload["type"] == IMAGE_COMPLETED:
                    found[seen.payload["data"]["job_id"]] = seen.webhook_id
            return found

        wait_for(lambda: set(completed_events()) == set(jobs), "both image.completed accepted", stack)
        assert requests.delete(f"{stack.api}/v1/images/{jobs[0]}", timeout=30).status_code == 204
        wait_for(
            lambda: any(
                s.payload["type"] == IMAGE_DELETED and 200 <= s.status < 300 for s in receiver.requests()
            ),
            "image.deleted accepted",
            stack,
        )
        wait_for(lambda: queue_empty(stack), "the delivery queue to drain", stack)
        shown = requests.get(f"{stack.api}/v1/images/{jobs[1]}", timeout=10).json()
        kept = records(stack, jobs[0])
    assert_each_accepted_once(receiver, {s.webhook_id for s in receiver.requests()})
    assert sum(s.status == 503 for s in receiver.requests()) == 3
    (delivery,) = shown["deliveries"]
    assert (delivery["id"], delivery["state"]) == (completed_events()[jobs[1]], DELIVERED)
    attempts = [s for s in receiver.requests() if s.webhook_id == delivery["id"]]
    assert delivery["attempts"] == len(attempts), "every attempt recorded and shown by GET"
    assert [d["event"] for d in kept] == [IMAGE_COMPLETED, IMAGE_DELETED], "kept past the job's DELETE"


def test_a_receiver_down_for_a_while_gets_every_event_once_back(tmp_path: Path) -> None:
    receiver = Receiver(new_secret())  # not started: its port refuses connections
    with stack_for(receiver, tmp_path, "deliverer") as stack:
        events = send_events(stack, 4)

        def refused_twice() -> bool:
            found = [records(stack, e.job_id) for e in events]
            return all(
                r and r[0]["attempts"] >= 2 and r[0]["last_result"].get("error") == "connection_refused"
                for r in found
            )

        wait_for(refused_twice, "two refused attempts of every event", stack)
        with receiver:
            wait_for(lambda: len(receiver.accepted()) == len(events), "every event accepted", stack)
            wait_for(lambda: queue_empty(stack), "the delivery queue to drain", stack)
        after = {e.id: records(stack, e.job_id) for e in events}
    assert_each_accepted_once(receiver, {e.id for e in events})
    for event in events:
        (record,) = after[event.id]
        assert record["state"] == DELIVERED and record["attempts"] >= 3


def test_a_deliverer_killed_mid_retry_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    with (
        Receiver(new_secret(), failing=10**6) as receiver,
        stack_for(receiver, tmp_path, "deliverer") as stack,
    ):
        events = send_events(stack, 5)
        wait_for(
            lambda: all(records(stack, e.job_id) for e in events), "a failed attempt of every event", stack
        )
        killed = stack.roles.pop("deliverer")
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        receiver.failing = 0
        stack.start_deliverer()
        wait_for(lambda: len(receiver.accepted()) == len(events), "every event accepted", stack)
        wait_for(lambda: queue_empty(stack), "the delivery queue to drain", stack)
        after = {e.id: records(stack, e.job_id) for e in events}
    assert_each_accepted_once(receiver, {e.id for e in events})
    for event in events:
        (record,) = after[event.id]
        sent = [s for s in receiver.requests() if s.webhook_id == event.id]
        assert record["state"] == DELIVERED
        # An attempt cut off by the kill may be unrecorded; none is recorded twice.
        assert 2 <= record["attempts"] <= len(sent)


def test_an_unsafe_target_is_refused_at_start_up(tmp_path: Path) -> None:
    receiver = Receiver(new_secret())
    with stack_for(receiver, tmp_path) as stack:
        env = {k: v for k, v in stack.env.items() if k != "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE"}
        for target in ("http://169.254.169.254/latest", f"http://127.0.0.1:{receiver.port}/hook"):
            result = subprocess.run(
                [*ROLE_COMMAND, "deliver"],
                env={**env, "IMAGEPIPE_WEBHOOK_URL": target},
                capture_output=True,
                text=True,
                timeout=60,
                cwd=tmp_path,
                check=False,
            )
            assert result.returncode == 2, result.stderr
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith("imagepipe deliver: IMAGEPIPE_WEBHOOK_URL: ") and not result.stdout
