"""The deliverer's loop in this process against the moto server and a real
receiver on loopback (signatures verified by `standardwebhooks`): events
retried until accepted and recorded, a settled event deleted unsent, a
message that is not an event deleted, a newer one left for a newer
deliverer, the counts on /metrics, and SIGTERM's drain finishing the attempt
in flight. Events are sent to the delivery queue by the test itself."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from imagepipe.aws import open_clients
from imagepipe.config import Settings, load_settings
from imagepipe.jobs import new_job_id, now_iso
from imagepipe.jobstore.deliveries import DELIVERED, Attempt, listed
from imagepipe.jobstore.keys import delivery_key, status_key
from imagepipe.jobstore.store import JobStore
from imagepipe.webhooks.deliverer import Deliverer, Options
from imagepipe.webhooks.events import (
    EVENT_MESSAGE_VERSION,
    KNOWN_MESSAGE_VERSION,
    WebhookEvent,
    event_for,
    payload,
    to_message,
)
from imagepipe.webhooks.intents import deletion_intent, intent_message
from tests.support.backend import CREDENTIALS, MotoServer, free_port, provision
from tests.support.webhook_receiver import Receiver, new_secret

pytestmark = pytest.mark.asyncio
BUCKET, QUEUE = "webhook-deliver", "webhook-deliver-jobs"


def completed_event(job_id: str | None = None) -> WebhookEvent:
    job_id = job_id or new_job_id()
    doc = {"job_id": job_id, "status": "completed", "completed_at": now_iso(), "variants": {}}
    event = event_for(doc, "http://cdn.test")
    assert event is not None
    return event


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(new_secret()) as running:
        yield running


@pytest.fixture
def settings(moto: MotoServer, receiver: Receiver) -> Settings:
    moto.reset()
    env = {
        **CREDENTIALS,
        "IMAGEPIPE_AWS_ENDPOINT_URL": moto.endpoint,
        "IMAGEPIPE_BUCKET": BUCKET,
        "IMAGEPIPE_QUEUE_NAME": QUEUE,
        "IMAGEPIPE_METRICS_PORT": str(free_port()),
        "IMAGEPIPE_WEBHOOK_URL": receiver.url,
        "IMAGEPIPE_WEBHOOK_SECRET": receiver.secret,
        "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE": "true",
        "IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS": "5",
        "IMAGEPIPE_WEBHOOK_BACKOFF_SECONDS": "1",
        "IMAGEPIPE_WEBHOOK_BACKOFF_MAX_SECONDS": "2",
        "IMAGEPIPE_SHUTDOWN_GRACE_SECONDS": "20",
    }
    found = load_settings(env)
    provision(found)
    return found


class Queue:
    def __init__(self, settings: Settings) -> None:
        self.sqs = boto3.client("sqs", endpoint_url=settings.sqs_endpoint_url, region_name="us-east-1")
        self.url = self.sqs.get_queue_url(QueueName=f"{QUEUE}-webhooks")["QueueUrl"]

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def counts(self) -> tuple[int, int]:
        """(visible, hidden) messages."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return int(found[names[0]]), int(found[names[1]])


def records(settings: Settings, job_id: str) -> list[dict[str, Any]]:
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
    try:
        body = s3.get_object(Bucket=BUCKET, Key=delivery_key(job_id))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return listed(json.loads(body))


async def until(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


@asynccontextmanager
async def deliverer(settings: Settings) -> AsyncIterator[Deliverer]:
    running = Deliverer(settings, Options(metrics_host="127.0.0.1", wait_seconds=1))
    task = asyncio.create_task(running.run())
    await until(lambda: running.metrics_port is not None or task.done(), "the deliverer to start")
    assert not task.done(), task.result()
    try:
        yield running
    finally:
        running.stop()
        assert await asyncio.wait_for(task, 60) == 0


def counted(running: Deliverer, outcome: str) -> float:
    text = requests.get(f"http://127.0.0.1:{running.metrics_port}/metrics", timeout=5).text
    line = f'imagepipe_webhook_deliveries_total{{outcome="{outcome}"}} '
    return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


async def test_events_are_retried_until_accepted_signed_and_recorded(
    settings: Settings, receiver: Receiver
) -> None:
    receiver.failing = 3
    queue = Queue(settings)
    events = [completed_event() for _ in range(2)]
    async with deliverer(settings) as running:
        for event in events:
            queue.send(to_message(event))
        await until(lambda: set(receiver.accepted()) == {e.id for e in events}, "both accepted")
        await until(lambda: queue.counts() == (0, 0), "the queue to empty")
        assert await asyncio.to_thread(counted, running, "delivered") == 2
        assert await asyncio.to_thread(counted, running, "retried") == 3
    seen = receiver.requests()
    assert all(s.verified for s in seen), "every attempt carries a valid signature"
    assert receiver.accepted() == {e.id: 1 for e in events}
    for event in events:
        attempts = [s for s in seen if s.webhook_id == event.id]
        assert {s.body for s in attempts} == {payload(event)}, "the same event, id and body, each attempt"
        (record,) = records(settings, event.job_id)
        assert (record["id"], record["state"], record["attempts"]) == (event.id, DELIVERED, len(attempts))
        assert record["last_result"]["status"] == 204 and record["delivered_at"]


async def test_settled_bad_and_newer_messages(settings: Settings, receiver: Receiver) -> None:
    queue = Queue(settings)
    settled = completed_event()
    async with AsyncExitStack() as exits:
        s3, _ = await open_clients(settings, exits)
        accepted = Attempt(now_iso(), {"status": 200}, DELIVERED)
        await JobStore(s3, BUCKET).record_delivery(settled.job_id, settled.id, settled.type, accepted)
    newer = to_message(completed_event()).replace(
        f'"v":{EVENT_MESSAGE_VERSION}', f'"v":{KNOWN_MESSAGE_VERSION + 1}'
    )
    async with deliverer(settings) as running:
        for body in (to_message(settled), "not an event", newer):
            queue.send(body)
        await until(lambda: counted(running, "newer_version") == 1, "the newer message")
        await until(
            lambda: counted(running, "duplicate") + counted(running, "unparseable") == 2, "the others"
        )
        assert queue.counts() == (0, 1), "only the newer message stays, hidden for a newer deliverer"
    assert receiver.requests() == [], "nothing is sent for a settled event"


async def test_sigterm_lets_the_attempt_in_flight_finish(settings: Settings, receiver: Receiver) -> None:
    receiver.delay = 2.0
    queue = Queue(settings)
    event = completed_event()
    async with deliverer(settings) as running:
        queue.send(to_message(event))
        await until(lambda: receiver.arrived == 1, "the attempt to reach the receiver")
        running.stop()
    assert receiver.accepted() == {event.id: 1}
    assert [r["state"] for r in records(settings, event.job_id)] == [DELIVERED]
    assert queue.counts() == (0, 0)


async def test_deployed_by_an_imagepipeline_every_series_carries_its_label(
    settings: Settings, receiver: Receiver
) -> None:
    """IMAGEPIPE_IMAGEPIPELINE (the operator sets it on NAME-deliverer) labels every sample
    on /metrics, as the other roles' are, so the chart's rules and dashboard join on it."""
    queue = Queue(settings)
    labelled = replace(settings, imagepipeline="media/photos")
    async with deliverer(labelled) as running:
        queue.send(to_message(completed_event()))
        await until(lambda: len(receiver.accepted()) == 1, "the event accepted")
        await until(lambda: queue.counts() == (0, 0), "the queue to empty")
        url = f"http://127.0.0.1:{running.metrics_port}/metrics"
        text = (await asyncio.to_thread(requests.get, url, timeout=5)).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    names = {s.name for s in samples}
    assert {"imagepipe_webhook_deliveries_total", "imagepipe_webhook_event_age_seconds_bucket"} <= names
    assert {
        "imagepipe_webhook_deliveries_in_flight",
        "imagepipe_webhook_poll_errors_total",
        "imagepipe_webhook_polls_total",
    } <= names
    assert all(s.labels.get("imagepipeline") == "media/photos" for s in samples), [
        s for s in samples if s.labels.get("imagepipeline") != "media/photos"
    ][:3]
    delivered = [s for s in samples if s.name == "imagepipe_webhook_deliveries_total"]
    assert {s.labels["outcome"]: s.value for s in delivered}["delivered"] == 1


async def test_deletion_intents_are_resolved_against_the_status_document(
    settings: Settings, receiver: Receiver
) -> None:
    """A tombstoned job's intent resolves to the tombstone's own event, so after the
    DELETE's emission was delivered it is a duplicate, sent no more; a job not deleted
    is looked at again until check_at, then dropped unsent, its document untouched.
    (The intent alone sending the event is the system test's: tests/system/test_webhook_deletion.py.)"""
    queue = Queue(settings)
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
    gone, kept = new_job_id(), new_job_id()
    tomb = {"job_id": gone, "status": "deleted", "owner": None, "deleted_at": now_iso()}
    done = {"job_id": kept, "status": "completed", "completed_at": now_iso(), "variants": {}}
    for doc in (tomb, done):
        s3.put_object(Bucket=BUCKET, Key=status_key(str(doc["job_id"])), Body=json.dumps(doc).encode())
    etag = s3.head_object(Bucket=BUCKET, Key=status_key(kept))["ETag"]
    soon = datetime.now(UTC) - timedelta(seconds=118)  # check_at two seconds from now
    deleted = event_for(tomb, settings.variant_base_url())
    assert deleted is not None
    async with deliverer(settings) as running:
        # The DELETE's own emission, then (as SQS hands it out later) its intent: settled already.
        queue.send(to_message(deleted))
        await until(lambda: counted(running, "delivered") == 1, "the DELETE's emission")
        queue.send(intent_message(deletion_intent(gone, soon, 120)))
        queue.send(intent_message(deletion_intent(kept, soon, 120)))
        await until(lambda: counted(running, "duplicate") == 1, "the intent of the delivered event")
        await until(lambda: counted(running, "not_deleted") == 1, "the intent of the job not deleted")
        pending = await asyncio.to_thread(counted, running, "deletion_pending")
        assert pending >= 1, "looked at before its check_at"
        assert queue.counts() == (0, 0)
    assert receiver.accepted() == {deleted.id: 1}
    assert all(seen.verified for seen in receiver.requests())
    [seen] = receiver.requests()
    assert seen.payload == {"type": "image.deleted", "timestamp": tomb["deleted_at"], "data": tomb}
    assert s3.head_object(Bucket=BUCKET, Key=status_key(kept))["ETag"] == etag, "never written"
    assert records(settings, kept) == []
