"""The dead-letter sweeper in a real consumer: a dead-lettered job that is
not final ends `failed` (`retries_exhausted`) and its message goes; a
message of a newer version is left for a newer consumer; a dead-letter queue
that serves other queues too is reported and never swept."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from imagepipe.jobs import job_message, now_iso
from imagepipe.spec import DEFAULT_SPEC
from tests.consumer.stack import Consumer, Stack

SWEEP_OFTEN = ("--sweep-seconds", "1")


def dead_letter(stack: Stack, body: str) -> None:
    """As if the redrive policy had moved it there."""
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=body)


def test_sweeper_fails_the_job_and_leaves_newer_versions(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    job_id = stack.submit((corpus_dir / "sharp/320x240.jpg").read_bytes())
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)  # its message was dead-lettered instead
    dead_letter(stack, job_message(job_id, "default", DEFAULT_SPEC, now_iso()).to_json())
    dead_letter(stack, json.dumps({"v": 99, "job_id": job_id}))
    consumer = consumers(stack, args=SWEEP_OFTEN)
    consumer.wait_for_line("dead-lettered job failed", timeout=60, job_id=job_id)
    doc = stack.status(job_id)
    assert doc is not None and doc["status"] == "failed" and doc["error"]["code"] == "retries_exhausted"
    assert stack.counts(stack.dlq_url) == (0, 1), "the newer message stays, hidden for a newer consumer"


def test_shared_dead_letter_queue_is_reported_and_left_alone(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    redrive = json.dumps(
        {
            "deadLetterTargetArn": stack.sqs.get_queue_attributes(
                QueueUrl=stack.dlq_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"],
            "maxReceiveCount": "3",
        }
    )
    stack.sqs.create_queue(QueueName=f"{stack.name}-other", Attributes={"RedrivePolicy": redrive})
    job_id = stack.submit((corpus_dir / "sharp/320x240.jpg").read_bytes())
    stack.sqs.purge_queue(QueueUrl=stack.queue_url)
    dead_letter(stack, job_message(job_id, "default", DEFAULT_SPEC, now_iso()).to_json())
    consumer = consumers(stack, args=SWEEP_OFTEN)
    line = consumer.wait_for_line("dead-letter queue serves other queues too", timeout=60)
    assert len(line["sources"]) == 2
    assert stack.counts(stack.dlq_url) == (1, 0), "never swept"
    assert stack.status(job_id)["status"] == "queued"  # type: ignore[index]
