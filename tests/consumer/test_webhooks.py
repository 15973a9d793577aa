"""Webhook events from real consumer processes, read straight off the
delivery queue on the loopback moto server: one event per state change
(completed, failed, swept from the dead-letter queue) whose data is the
public document; the same id again for a duplicate message, for a consumer
SIGKILLed between its Complete write and its message delete, and for a
dead-lettered job already final; a message handed back while its event
cannot be emitted; the event filter; nothing at all (and no delivery queue)
with webhooks off; and a consumer refusing to start without its queue."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from imagepipe.context import SourceInfo
from imagepipe.jobs import job_message, new_job_id, now_iso
from imagepipe.jobstore.documents import queued_doc
from imagepipe.jobstore.keys import status_key
from imagepipe.processes import start_process
from imagepipe.spec import DEFAULT_SPEC
from imagepipe.webhooks.events import WebhookEvent, event_for, event_id, parse_message
from tests.consumer.stack import REPO, Consumer, Stack
from tests.consumer.test_end_to_end import metrics_text, sample
from tests.consumer.test_sweeper import dead_letter
from tests.support.backend import MotoServer
from tests.support.faultproxy import FaultProxy

# Never contacted: consumers only put events on the delivery queue.
HOOK = {"IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.test/imagepipe"}
PHOTO = "sharp/320x240.jpg"
BROKEN = "sharp/truncated.jpg"


def delivery_queue(stack: Stack) -> str:
    """The queue the consumers' settings name by default (job queue + -webhooks)."""
    return str(stack.sqs.create_queue(QueueName=f"{stack.name}-jobs-webhooks")["QueueUrl"])


def events(stack: Stack, url: str, count: int, timeout: float = 60) -> list[WebhookEvent]:
    """At least `count` events off the delivery queue (received, so hidden from later calls)."""
    got: list[WebhookEvent] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"{len(got)} of {count} events: {got}"
        response = stack.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=600
        )
        got += [parse_message(m["Body"]) for m in response.get("Messages", [])]
    return got


def the_event_of(stack: Stack, job_id: str, event_type: str) -> WebhookEvent:
    """The event the job's stored document makes, as the consumer should have emitted it."""
    event = event_for(stack.status(job_id) or {}, f"{stack.endpoint}/{stack.bucket}")
    assert event is not None and event.type == event_type, event
    return event


def test_completed_and_failed_jobs_emit_one_event_each(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    url = delivery_queue(stack)
    consumer = consumers(stack, env=HOOK)
    good = stack.submit((corpus_dir / PHOTO).read_bytes())
    bad = stack.submit((corpus_dir / BROKEN).read_bytes())
    stack.wait_for([good, bad])
    stack.settled()
    got = events(stack, url, 2)
    assert events(stack, url, 0, timeout=5) == [], "exactly one event per job"
    assert sorted(got, key=lambda e: e.type) == [
        the_event_of(stack, good, "image.completed"),
        the_event_of(stack, bad, "image.failed"),
    ]
    doc = stack.status(good) or {}
    completed = next(e for e in got if e.job_id == good)
    assert completed.id == event_id(good, "image.completed", doc["completed_at"])
    assert completed.timestamp == doc["completed_at"]
    failed = next(e for e in got if e.job_id == bad)
    assert failed.data["error"]["code"] == "corrupt_image" and "deliveries" not in failed.data
    text = metrics_text(consumer)
    assert sample(text, "imagepipe_webhook_events_total", event="image.completed") == 1
    assert sample(text, "imagepipe_webhook_events_total", event="image.failed") == 1


def test_a_duplicate_message_re_emits_the_same_event(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    url = delivery_queue(stack)
    consumers(stack, env=HOOK)
    job_id = stack.submit((corpus_dir / PHOTO).read_bytes())
    doc = stack.wait_for([job_id])[job_id]
    [first] = events(stack, url, 1)
    stack.send(job_message(job_id, "default", DEFAULT_SPEC, doc["created_at"]).to_json())
    stack.settled()
    [again] = events(stack, url, 1)
    assert again == first == the_event_of(stack, job_id, "image.completed")
    assert stack.status(job_id) == doc, "the completed job is left as it is"


def test_a_consumer_killed_between_complete_and_delete_leaves_the_event_to_the_redelivery(
    stack: Stack, proxy: FaultProxy, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    url = delivery_queue(stack)
    # SQS through the proxy, S3 direct: the Complete write lands, the event and the delete cannot.
    sqs_through_proxy = {**HOOK, "IMAGEPIPE_SQS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    first = consumers(
        stack, name="first", slow_render=2, env={**sqs_through_proxy, "IMAGEPIPE_WORKER_SLOTS": "1"}
    )
    job_id = stack.submit((corpus_dir / PHOTO).read_bytes())
    first.wait_for_line("job started", job_id=job_id)
    proxy.mode = "stall"
    stack.wait_for([job_id], timeout=60)
    assert stack.status(job_id)["status"] == "completed"  # type: ignore[index]
    first.wait_for_line("job completed", job_id=job_id)
    assert events(stack, url, 0, timeout=2) == [], "the event is stuck in the stalled SendMessage"
    first.signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    assert sum(stack.counts()) == 1, "the job message outlives the dead consumer"

    proxy.mode = "pass"
    second = consumers(stack, name="second", env=HOOK)
    [event] = events(stack, url, 1)
    assert event == the_event_of(stack, job_id, "image.completed")
    second.wait_for_line("job already finished elsewhere", job_id=job_id)
    stack.settled()
    assert events(stack, url, 0, timeout=2) == []


def test_a_message_whose_event_cannot_be_emitted_is_handed_back_not_deleted(
    moto: MotoServer, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    stack = Stack(moto.endpoint, max_receives=20)
    url = delivery_queue(stack)
    consumer = consumers(stack, env=HOOK, args=("--release-base-seconds", "1"))
    stack.sqs.delete_queue(QueueUrl=url)
    job_id = stack.submit((corpus_dir / PHOTO).read_bytes())
    consumer.wait_for_line("could not emit the webhook event", timeout=60, job_id=job_id)
    assert stack.status(job_id)["status"] == "completed"  # type: ignore[index]
    assert sum(stack.counts()) == 1, "handed back, not deleted"
    assert delivery_queue(stack) == url
    [event] = events(stack, url, 1)
    assert event == the_event_of(stack, job_id, "image.completed")
    stack.settled()
    text = metrics_text(consumer)
    assert sample(text, "imagepipe_messages_retried_total", reason="event_unsent") >= 1


def test_only_the_chosen_events_are_emitted(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    url = delivery_queue(stack)
    consumer = consumers(stack, env={**HOOK, "IMAGEPIPE_WEBHOOK_EVENTS": "image.failed"})
    good = stack.submit((corpus_dir / PHOTO).read_bytes())
    bad = stack.submit((corpus_dir / BROKEN).read_bytes())
    stack.wait_for([good, bad])
    stack.settled()
    assert events(stack, url, 1) == [the_event_of(stack, bad, "image.failed")]
    assert events(stack, url, 0, timeout=3) == []
    assert sample(metrics_text(consumer), "imagepipe_webhook_events_total", event="image.completed") == 0


def test_with_webhooks_off_nothing_is_emitted_and_no_delivery_queue_is_needed(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    consumer = consumers(stack)
    job_id = stack.submit((corpus_dir / PHOTO).read_bytes())
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=stack_message(stack, job_id))
    assert stack.wait_for([job_id])[job_id]["status"] == "completed"
    stack.settled()
    queues = stack.sqs.list_queues(QueueNamePrefix=stack.name).get("QueueUrls", [])
    assert not [q for q in queues if q.endswith("-webhooks")]
    assert sample(metrics_text(consumer), "imagepipe_webhook_events_total") == 0
    assert not [line for line in consumer.lines() if "event" in line.get("message", "")]


def stack_message(stack: Stack, job_id: str) -> str:
    """A duplicate of the job's message, so the re-emission path runs too."""
    doc = stack.status(job_id)
    assert doc is not None
    return job_message(job_id, "default", DEFAULT_SPEC, doc["created_at"]).to_json()


def test_the_sweeper_emits_for_dead_lettered_jobs(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    url = delivery_queue(stack)
    consumers(stack, env=HOOK, args=("--sweep-seconds", "1"))
    completed = stack.submit((corpus_dir / PHOTO).read_bytes())
    stack.wait_for([completed])
    [emitted] = events(stack, url, 1)
    # A job dead-lettered before it ended, and a message of the completed one dead-lettered too.
    swept = queued_without_message(stack)
    dead_letter(stack, job_message(swept, "default", DEFAULT_SPEC, now_iso()).to_json())
    dead_letter(stack, stack_message(stack, completed))
    got = events(stack, url, 2)
    assert the_event_of(stack, swept, "image.failed") in got
    assert stack.status(swept)["error"]["code"] == "retries_exhausted"  # type: ignore[index]
    assert emitted in got, "the completed job's event again, same id"
    # The dead-letter messages go once their events are out.
    stack.settled(timeout=30, dead_letters=True)


def queued_without_message(stack: Stack) -> str:
    """A job as the ingest leaves it, whose message the redrive policy moved away."""
    job_id = new_job_id()
    source = SourceInfo(format="jpeg", width=0, height=0, frames=1, bytes=0)
    doc = queued_doc(job_id, "default", DEFAULT_SPEC, source, "tester", now_iso())
    stack.s3.put_object(Bucket=stack.bucket, Key=status_key(job_id), Body=json.dumps(doc).encode())
    return job_id


def test_a_consumer_refuses_to_start_without_its_delivery_queue(stack: Stack, tmp_path: Path) -> None:
    log = tmp_path / "consumer.log"
    env = {**os.environ, **stack.env, **HOOK, "PYTHONPATH": str(REPO)}
    process = start_process([sys.executable, "-m", "imagepipe.cli", "consume"], env, log=log, cwd=REPO)
    assert process.wait(60) == 2
    text = log.read_text()
    assert f"{stack.name}-jobs-webhooks" in text and "does not exist" in text
    assert "Traceback" not in text
