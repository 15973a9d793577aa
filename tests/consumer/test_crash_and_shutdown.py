"""Consumers really killed and really stopped: SIGKILL of a whole process group
in the middle of a job, and SIGTERM drains (within and beyond the grace period)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from imagepipe.jobstore.keys import variants_prefix
from tests.consumer.stack import Consumer, Stack
from tests.support.backend import MotoServer

PHOTO = "thumbor/gisele.jpg"


def group_is_gone(consumer: Consumer, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(consumer.process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_sigkill_mid_job_second_consumer_completes_it_once(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    data = (corpus_dir / PHOTO).read_bytes()
    # One slot: no long poll is left open at the kill. (An orphaned poll would take the
    # reappearing message once more, into a dead socket: one more receive, nothing worse.)
    first = consumers(stack, name="first", slow_render=60, env={"IMAGEPIPE_WORKER_SLOTS": "1"})
    job_id = stack.submit(data)
    first.wait_for_line("job started", job_id=job_id)
    time.sleep(0.5)  # the render is running in a pool worker
    first.signal(signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    assert group_is_gone(first), "pool workers die with the group"
    doc = stack.status(job_id)
    assert doc is not None and doc["status"] == "processing"
    assert stack.counts() == (0, 1), "the dead consumer's message is still hidden"

    second = consumers(stack, name="second")
    started = time.monotonic()
    done = stack.wait_for([job_id], timeout=30)[job_id]
    # It reappears within one (short) visibility timeout of the last heartbeat.
    assert time.monotonic() - started < stack.visibility + 10
    assert done["status"] == "completed" and done["attempts"] == 2
    objects = stack.keys(variants_prefix(job_id))
    assert len(objects) == 3
    assert {k.rsplit("/", 1)[1]: o["Size"] for k, o in objects.items()} == {
        f"{name}.webp": entry["bytes"] for name, entry in done["variants"].items()
    }
    second.wait_for_line("job completed", job_id=job_id)
    assert [line for line in first.lines() if line["message"] == "job completed"] == []
    stack.settled()
    assert stack.dead_letters() == []
    # Deleted by the attempt that completed it, not received again and dropped as done.
    assert [line for line in second.lines() if "already finished elsewhere" in line["message"]] == []


def test_sigterm_drains_in_flight_jobs_and_exits_zero(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    data = (corpus_dir / PHOTO).read_bytes()
    consumer = consumers(stack, slow_render=2, env={"IMAGEPIPE_WORKER_SLOTS": "1"})
    first = stack.submit(data)
    consumer.wait_for_line("job started", job_id=first)
    waiting = [stack.submit(data) for _ in range(2)]
    # To the whole group, as a terminal or `kill -- -PGID` does: workers ignore it.
    consumer.signal(signal.SIGTERM)
    assert consumer.wait(20) == 0
    assert stack.wait_for([first], timeout=1)[first]["status"] == "completed"
    # Nothing else was taken: the waiting jobs are immediately receivable elsewhere.
    assert [stack.status(j)["status"] for j in waiting] == ["queued", "queued"]  # type: ignore[index]
    assert stack.counts() == (2, 0)
    messages = [line["message"] for line in consumer.lines()]
    assert "drained" in messages and messages[-1] == "consumer stopped"


@pytest.mark.parametrize("slots", [1])
def test_sigterm_beyond_grace_hands_jobs_back_at_once(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path, slots: int
) -> None:
    data = (corpus_dir / PHOTO).read_bytes()
    consumer = consumers(
        stack,
        slow_render=60,
        env={"IMAGEPIPE_WORKER_SLOTS": str(slots), "IMAGEPIPE_SHUTDOWN_GRACE_SECONDS": "1"},
    )
    job_id = stack.submit(data)
    consumer.wait_for_line("job started", job_id=job_id)
    started = time.monotonic()
    consumer.signal(signal.SIGTERM, group=False)
    assert consumer.wait(20) == 0
    assert time.monotonic() - started < 10, "the grace period bounds the drain"
    assert group_is_gone(consumer)
    # Handed back with visibility 0: receivable now, not after a visibility timeout.
    received = stack.sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0, VisibilityTimeout=30)
    assert [job_id in m["Body"] for m in received.get("Messages", [])] == [True]
    assert any(
        line["message"] == "grace period over; handing back unfinished jobs" for line in consumer.lines()
    )


def test_shutdown_on_the_last_receive_records_the_failure_first(
    moto: MotoServer, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    stack = Stack(moto.endpoint, visibility=3, max_receives=1)
    consumer = consumers(stack, slow_render=60, env={"IMAGEPIPE_SHUTDOWN_GRACE_SECONDS": "1"})
    job_id = stack.submit((corpus_dir / PHOTO).read_bytes())
    consumer.wait_for_line("job started", job_id=job_id)
    consumer.signal(signal.SIGTERM, group=False)
    assert consumer.wait(30) == 0
    # Recorded by the consumer itself before it handed the message back, not by a sweeper later.
    doc = stack.status(job_id)
    assert doc is not None and doc["status"] == "failed" and doc["error"]["code"] == "retries_exhausted"
