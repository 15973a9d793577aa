"""A seeded randomized soak of the job state (issue #11), bounded to a few
minutes: real `imagepipe serve` and `imagepipe consume` processes on the
loopback moto server take uploads (some with a repeated Idempotency-Key),
duplicate sends of their messages, deletes at random moments and SIGKILLs
of consumers mid-job. At the end, once the job queue and the dead-letter
queue are drained:

- every accepted, undeleted job is `completed`;
- every deleted job reads 404 and no object of it is left but its tombstone;
- no completed job was ever seen to change (a watcher polled throughout);
- no twin jobs: one status document per job id an upload answered;
- no job is `processing` or `queued`;
- with webhooks on (and no deliverer), the delivery queue holds the event of
  every final state: each completed job's `image.completed` and each deleted
  job's `image.deleted`, with the ids their durable documents give, whatever
  consumer was killed when (re-emission); one id never means two events.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from imagepipe.jobs import job_message, now_iso
from imagepipe.jobstore.keys import original_key, variants_prefix
from imagepipe.spec import DEFAULT_SPEC
from imagepipe.webhooks.events import WebhookEvent, event_for
from imagepipe.webhooks.intents import DeletionIntent, parse_outbox_message
from tests.consumer.races import Ingest, Watcher
from tests.consumer.stack import Consumer, Stack
from tests.support.backend import MotoServer

SEED = 20261202
STEPS = 120
MAX_KILLS = 3
PHOTOS = ("sharp/320x240.jpg", "sharp/Landscape_3.jpg", "sharp/Portrait_2.jpg")


@pytest.mark.system
def test_randomized_soak_keeps_every_invariant(moto: MotoServer, tmp_path: Path, corpus_dir: Path) -> None:
    rng = random.Random(SEED)
    photos = [(corpus_dir / name).read_bytes() for name in PHOTOS]
    # Five receives: at most three kills can cost any one job three of them.
    stack = Stack(moto.endpoint, visibility=3, max_receives=MAX_KILLS + 2)
    stack.env["IMAGEPIPE_WEBHOOK_URL"] = "https://hooks.example.test/imagepipe"
    delivery = stack.sqs.create_queue(QueueName=f"{stack.name}-jobs-webhooks")["QueueUrl"]
    ingest = Ingest(stack, tmp_path)
    consumers = [Consumer(stack, tmp_path, name=f"c{i}", slow_render=0.3) for i in range(2)]
    accepted: set[str] = set()
    deleted: set[str] = set()
    kills = 0
    try:
        with Watcher(stack, []) as watcher:
            for step in range(STEPS):
                action = rng.choices(["upload", "keyed", "duplicate", "delete", "kill"], [5, 2, 2, 2, 1])[0]
                if action in ("upload", "keyed"):
                    headers = {"Idempotency-Key": f"k{rng.randrange(4)}"} if action == "keyed" else {}
                    answer = ingest.upload(rng.choice(photos) if action == "upload" else photos[0], headers)
                    if answer.status_code in (200, 202):
                        job_id = answer.json()["job_id"]
                        if job_id not in accepted:
                            accepted.add(job_id)
                            watcher.watch(job_id)
                    else:
                        assert answer.json()["error"]["code"] == "idempotency_in_progress", answer.text
                elif action == "duplicate" and accepted:
                    job_id = rng.choice(sorted(accepted))
                    stack.send(job_message(job_id, "default", DEFAULT_SPEC, now_iso()).to_json())
                elif action == "delete" and accepted - deleted:
                    job_id = rng.choice(sorted(accepted - deleted))
                    assert ingest.delete(job_id).status_code == 204
                    deleted.add(job_id)
                elif action == "kill" and kills < MAX_KILLS:
                    victim = rng.randrange(len(consumers))
                    consumers[victim].close()
                    consumers[victim] = Consumer(stack, tmp_path, name=f"c{victim}-{step}", slow_render=0.3)
                    kills += 1
                time.sleep(rng.uniform(0.05, 0.6))
            stack.settled(240, dead_letters=True)
        watcher.check()
        check_end_state(stack, ingest, accepted, deleted)
        check_events(stack, delivery, accepted, deleted)
    finally:
        for consumer in consumers:
            consumer.close()
        ingest.close()


def check_end_state(stack: Stack, ingest: Ingest, accepted: set[str], deleted: set[str]) -> None:
    assert accepted, "the soak accepted nothing"
    for job_id in sorted(accepted - deleted):
        doc = stack.status(job_id)
        assert doc is not None and doc["status"] == "completed", (job_id, doc)
    for job_id in sorted(deleted):
        assert ingest.status(job_id).status_code == 404
        assert stack.keys(variants_prefix(job_id)) == {} and stack.keys(original_key(job_id)) == {}
        assert (stack.status(job_id) or {}).get("status") == "deleted"
    assert {key.removeprefix("jobs/").removesuffix(".json") for key in stack.keys("jobs/")} == accepted
    statuses = {(stack.status(job_id) or {}).get("status") for job_id in accepted}
    assert not statuses & {"processing", "queued"}


def check_events(stack: Stack, delivery: str, accepted: set[str], deleted: set[str]) -> None:
    """Every final state's event is on the delivery queue (emitted before the message went)."""
    by_id: dict[str, WebhookEvent] = {}
    while True:
        response = stack.sqs.receive_message(QueueUrl=delivery, MaxNumberOfMessages=10, VisibilityTimeout=600)
        if not response.get("Messages"):
            break
        for message in response["Messages"]:
            event = parse_outbox_message(message["Body"])
            if isinstance(event, DeletionIntent):
                continue  # a DELETE's intent, due after its window (the deliverer's to resolve)
            assert by_id.setdefault(event.id, event) == event, "one id, one event"
    assert {event.job_id for event in by_id.values()} <= accepted
    base = f"{stack.endpoint}/{stack.bucket}"
    for job_id in sorted(accepted):
        final = event_for(stack.status(job_id) or {}, base)
        expected = "image.deleted" if job_id in deleted else "image.completed"
        assert final is not None and final.type == expected
        assert by_id.get(final.id) == final, f"{final.type} of {job_id} was never emitted"
