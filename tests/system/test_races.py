"""The races of issue #11, each with real `imagepipe serve` and `imagepipe
consume` processes on the loopback moto server. While each runs, a watcher
polls the status documents: no `completed` job may ever be seen to change
(only a deletion may follow it), and no `deleted` one at all."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagepipe.jobs import job_message, now_iso
from imagepipe.jobstore.keys import original_key, status_key, variants_prefix
from imagepipe.spec import DEFAULT_PIPELINE, DEFAULT_SPEC
from tests.consumer.races import Ingest, Watcher
from tests.consumer.stack import Consumer, Stack
from tests.support.backend import MotoServer
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.system
PHOTO = "sharp/320x240.jpg"


@pytest.fixture
def ingests(tmp_path: Path) -> Iterator[Callable[[Stack], Ingest]]:
    started: list[Ingest] = []

    def start(stack: Stack) -> Ingest:
        ingest = Ingest(stack, tmp_path)
        started.append(ingest)
        return ingest

    yield start
    for ingest in started:
        ingest.close()


def test_delete_while_rendering_sticks(
    stack: Stack,
    consumers: Callable[..., Consumer],
    ingests: Callable[[Stack], Ingest],
    corpus_dir: Path,
) -> None:
    ingest = ingests(stack)
    consumer = consumers(stack, slow_render=3.0)
    job_id = ingest.upload((corpus_dir / PHOTO).read_bytes()).json()["job_id"]
    with Watcher(stack, [job_id]) as watcher:
        consumer.wait_for_line("job started", timeout=60, job_id=job_id)
        assert ingest.delete(job_id).status_code == 204
        consumer.wait_for_line("job deleted; removing what this attempt wrote", timeout=60, job_id=job_id)
    watcher.check()
    assert "completed" not in watcher.states(job_id)
    assert ingest.status(job_id).status_code == 404
    assert stack.keys(variants_prefix(job_id)) == {} and stack.keys(original_key(job_id)) == {}
    stack.settled(120)


VARIANTS = len(DEFAULT_SPEC.to_data())
# Where the consumer is frozen (its S3 traffic goes through a fault proxy) when
# the DELETE arrives: (what is held, held answers rather than requests, how many
# are held, the job's state and variant count at S3 meanwhile).
HOLD_POINTS = {
    "variant uploads sent, not yet stored": ("variants", False, VARIANTS, "processing", 0),
    "after the last variant upload": ("variants", True, VARIANTS, "processing", VARIANTS),
    "complete write sent, not yet stored": ("complete", False, 1, "processing", VARIANTS),
    "complete write stored, its answer in flight": ("complete", True, 1, "completed", VARIANTS),
}


@pytest.mark.parametrize("point", list(HOLD_POINTS))
def test_delete_between_the_uploads_and_complete_sticks(
    point: str,
    stack: Stack,
    proxy: FaultProxy,
    consumers: Callable[..., Consumer],
    ingests: Callable[[Stack], Ingest],
    corpus_dir: Path,
) -> None:
    held, answers, count, state_at_s3, stored = HOLD_POINTS[point]
    ingest = ingests(stack)
    job_id = ingest.upload((corpus_dir / PHOTO).read_bytes()).json()["job_id"]
    uploads = f"PUT /{stack.bucket}/{variants_prefix(job_id)}".encode()
    complete = f"PUT /{stack.bucket}/{status_key(job_id)} ".encode()  # the first status write after them
    hold = (
        proxy.hold(uploads, response=answers)
        if held == "variants"
        else proxy.hold(complete, after=uploads, response=answers)
    )
    consumer = consumers(stack, env={"IMAGEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"})
    with Watcher(stack, [job_id]) as watcher:
        hold.wait_held(count, timeout=120)
        doc = stack.status(job_id)
        assert doc is not None and doc["status"] == state_at_s3
        assert len(stack.keys(variants_prefix(job_id))) == stored, "frozen at the intended point"
        assert ingest.delete(job_id).status_code == 204
        hold.release()
        stack.settled(120)
        after = stack.status(job_id)
        assert after is not None and after["status"] == "deleted", after
        assert stack.keys(variants_prefix(job_id)) == {}
        # A redelivery of the message after it all: the job stays deleted, nothing is written.
        cleanups = len(cleanup_lines(consumer, job_id))
        stack.send(job_message(job_id, DEFAULT_PIPELINE, DEFAULT_SPEC, now_iso()).to_json())
        deadline = time.monotonic() + 60
        while len(cleanup_lines(consumer, job_id)) == cleanups:
            assert time.monotonic() < deadline, "the redelivered message was not refused as deleted"
            time.sleep(0.1)
        stack.settled(120)
        time.sleep(2)  # the watcher keeps looking once everything is quiet
    watcher.check()
    assert watcher.states(job_id)[-1] == "deleted"
    assert ingest.status(job_id).status_code == 404
    assert stack.keys(variants_prefix(job_id)) == {} and stack.keys(original_key(job_id)) == {}
    assert consumer.process.poll() is None, "the consumer still runs"
    errors = [line for line in consumer.lines() if line.get("level") in ("error", "critical")]
    assert errors == [] and "Traceback" not in ingest.log_path.read_text()


def cleanup_lines(consumer: Consumer, job_id: str) -> list[dict[str, object]]:
    return [
        line
        for line in consumer.lines()
        if line.get("message") == "job deleted; removing what this attempt wrote"
        and line.get("job_id") == job_id
    ]


def test_duplicate_delivery_cannot_fail_a_completed_job(
    stack: Stack, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    job_id = stack.submit((corpus_dir / PHOTO).read_bytes())
    body = json.loads(
        stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0)["Messages"][0]["Body"]
    )
    stack.send(json.dumps(body))  # SQS delivers the same message twice
    # The first worker to take a copy has limits that refuse the image. It is
    # frozen (SIGSTOP) once it has started, so the other copy completes first
    # whatever the machine's load; thawed, it fails the image.
    strict = consumers(
        stack,
        name="strict",
        slow_render=1.0,
        env={"IMAGEPIPE_MAX_DECODED_PIXELS": "100", "IMAGEPIPE_WORKER_SLOTS": "1"},
    )
    with Watcher(stack, [job_id]) as watcher:
        strict.wait_for_line("job started", timeout=60, job_id=job_id)
        strict.signal(signal.SIGSTOP)
        consumers(stack, name="normal")
        stack.wait_for([job_id], timeout=60, statuses=frozenset({"completed"}))
        strict.signal(signal.SIGCONT)
        strict.wait_for_line("job already finished elsewhere", timeout=60, job_id=job_id)
    watcher.check()
    doc = stack.status(job_id)
    assert doc is not None and doc["status"] == "completed" and doc["error"] is None
    assert len(stack.keys(variants_prefix(job_id))) == 3, (
        "the refused worker touched nothing the winner wrote"
    )
    assert [s for s in watcher.states(job_id) if s == "failed"] == []
    stack.settled(120)


def test_death_on_the_last_receive_ends_the_job_failed(
    moto: MotoServer, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    stack = Stack(moto.endpoint, visibility=2, max_receives=1)
    doomed = consumers(stack, name="doomed", slow_render=30.0)
    job_id = stack.submit((corpus_dir / PHOTO).read_bytes())
    with Watcher(stack, [job_id]) as watcher:
        doomed.wait_for_line("job started", timeout=60, job_id=job_id)
        doomed.close()  # SIGKILL on the only receive the redrive policy allows
        # Sweeping every second, not 15: the dead-lettered message is found soon after it moves.
        survivor = consumers(stack, name="survivor", args=("--sweep-seconds", "1"))
        done = stack.wait_for([job_id], timeout=120)[job_id]
    watcher.check()
    assert done["status"] == "failed" and done["error"]["code"] == "retries_exhausted"
    survivor.wait_for_line("dead-lettered job failed", timeout=60, job_id=job_id)
    stack.settled(120, dead_letters=True)


def test_concurrent_uploads_with_one_idempotency_key_make_one_job(
    stack: Stack,
    consumers: Callable[..., Consumer],
    ingests: Callable[[Stack], Ingest],
    corpus_dir: Path,
) -> None:
    ingest = ingests(stack)
    data = (corpus_dir / PHOTO).read_bytes()
    headers = {"Idempotency-Key": "one-key-four-clients"}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: ingest.upload(data, headers), range(4)))
    named = {a.json()["job_id"] for a in answers if a.status_code in (200, 202)}
    in_progress = [a for a in answers if a.status_code == 409]
    assert len(named) == 1, [a.text for a in answers]
    assert all(
        a.json()["error"]["code"] == "idempotency_in_progress" and a.headers["Retry-After"]
        for a in in_progress
    )
    assert len(in_progress) + sum(a.status_code in (200, 202) for a in answers) == 4
    (job_id,) = named
    assert list(stack.keys("jobs/")) == [f"jobs/{job_id}.json"], "one job, no invisible twins"
    assert list(stack.keys("originals/")) == [original_key(job_id)]
    consumers(stack)
    with Watcher(stack, [job_id]) as watcher:
        stack.wait_for([job_id], timeout=60)
    watcher.check()
    assert stack.status(job_id)["status"] == "completed"  # type: ignore[index]
    assert ingest.delete(job_id).status_code == 204
    assert stack.keys("variants/") == {} and stack.keys("originals/") == {}
    stack.settled(120)
