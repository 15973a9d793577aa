"""The deletion event survives an ingest that dies mid-DELETE (docs/design.md,
"The deletion intent"), with real processes on the loopback stack (moto
server, `imagepipe serve`, `imagepipe consume`, `imagepipe deliver`) and a
real receiver verifying every signature with `standardwebhooks`.

The ingest's S3 traffic goes through the fault proxy, which freezes it at an
exact point of its DELETE; then it is SIGKILLed there:

- the tombstone write applied by moto, its answer held: the ingest never
  reaches its own emission, and the client gets no answer. The receiver
  still gets exactly one `image.deleted`, with the tombstone's event id.
- the tombstone write held before moto sees it: nothing is deleted and
  nothing is sent; the intent is dropped and the completed document keeps
  its ETag.

No duration is asserted; every wait polls with a generous timeout."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from imagepipe.jobstore.keys import status_key
from imagepipe.loopback import LoopbackStack
from imagepipe.webhooks.events import IMAGE_COMPLETED, IMAGE_DELETED, event_id
from tests.support.faultproxy import FaultProxy
from tests.support.holds import Hold
from tests.support.webhook_receiver import Receiver, new_secret
from tests.system.test_webhook_delivery import client, queue_empty, upload, wait_for, webhook_env

pytestmark = pytest.mark.system
TIMEOUT = 180
# Short, so the intent is due soon: the DELETE has half of it for its tombstone.
WINDOW_SECONDS = 8


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(new_secret()) as running:
        yield running


@pytest.fixture
def stack(receiver: Receiver, tmp_path: Path) -> Iterator[tuple[LoopbackStack, FaultProxy]]:
    env = {**webhook_env(receiver), "IMAGEPIPE_WEBHOOK_DELETION_CHECK_SECONDS": str(WINDOW_SECONDS)}
    with LoopbackStack(extra_env=env, log_dir=tmp_path) as running:
        target = urlsplit(running.endpoint)
        with FaultProxy(target.hostname or "127.0.0.1", target.port or 80) as proxy:
            shared = running.env
            # Only the ingest's S3 calls pass the proxy; SQS and the other roles go straight.
            running.env = {**shared, "IMAGEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
            running.start_ingest()
            running.env = shared
            running.start_consumer()
            running.start_deliverer()
            running.wait_ready()
            yield running, proxy


def stored(stack: LoopbackStack, job_id: str) -> tuple[dict[str, Any], str]:
    """The job's status document at moto, and its ETag."""
    found = client(stack, "s3").get_object(Bucket=stack.bucket, Key=status_key(job_id))
    return json.loads(found["Body"].read()), str(found["ETag"])


def deliverer_count(stack: LoopbackStack, outcome: str) -> float:
    text = requests.get(f"http://127.0.0.1:{stack.deliverer_metrics_port}/metrics", timeout=10).text
    line = f'imagepipe_webhook_deliveries_total{{outcome="{outcome}"}} '
    return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


def completed_job(stack: LoopbackStack, receiver: Receiver, corpus_dir: Path) -> str:
    """An uploaded job, completed and its image.completed accepted (so only the deletion is left)."""
    job_id = upload(stack.api, corpus_dir / "sharp/320x240.jpg")
    wait_for(
        lambda: any(
            s.payload["type"] == IMAGE_COMPLETED and s.payload["data"]["job_id"] == job_id and s.status < 300
            for s in receiver.requests()
        ),
        "image.completed accepted",
        stack,
    )
    return job_id


def kill_ingest_in_delete(stack: LoopbackStack, job_id: str, hold: Hold) -> None:
    """DELETE the job, wait until the ingest is frozen at the hold, SIGKILL it there."""
    answers: list[object] = []

    def ask() -> None:
        try:
            answers.append(requests.delete(f"{stack.api}/v1/images/{job_id}", timeout=TIMEOUT).status_code)
        except requests.RequestException as exc:
            answers.append(exc)

    asking = threading.Thread(target=ask, daemon=True)
    asking.start()
    hold.wait_held(1, timeout=TIMEOUT)
    ingest = stack.roles.pop("ingest")
    ingest.send_signal(signal.SIGKILL)
    assert ingest.wait(30) == -signal.SIGKILL
    # Never released: a request held before moto saw it must not reach moto later.
    asking.join(TIMEOUT)
    assert len(answers) == 1 and isinstance(answers[0], requests.RequestException), "no answer: it died"


def test_an_ingest_killed_between_tombstone_and_emission_still_gets_the_deletion_delivered(
    stack: tuple[LoopbackStack, FaultProxy], receiver: Receiver, corpus_dir: Path
) -> None:
    running, proxy = stack
    job_id = completed_job(running, receiver, corpus_dir)
    tombstone_write = f"PUT /{running.bucket}/{status_key(job_id)} ".encode()
    kill_ingest_in_delete(running, job_id, proxy.hold(tombstone_write, response=True))
    tomb, _ = stored(running, job_id)
    assert tomb["status"] == "deleted", "the tombstone is durable: the kill came after it"

    def deletions() -> list[Any]:
        return [s for s in receiver.requests() if s.payload["type"] == IMAGE_DELETED]

    wait_for(lambda: any(s.status < 300 for s in deletions()), "image.deleted accepted", running)
    wait_for(lambda: queue_empty(running), "the delivery queue to drain", running)
    [seen] = deletions()
    assert seen.verified, "signed for the receiver's secret (standardwebhooks)"
    assert seen.webhook_id == event_id(job_id, IMAGE_DELETED, tomb["deleted_at"]), "the normal path's id"
    assert seen.payload == {"type": IMAGE_DELETED, "timestamp": tomb["deleted_at"], "data": tomb}
    assert receiver.accepted()[seen.webhook_id] == 1


def test_an_ingest_killed_before_its_tombstone_sends_nothing(
    stack: tuple[LoopbackStack, FaultProxy], receiver: Receiver, corpus_dir: Path
) -> None:
    running, proxy = stack
    job_id = completed_job(running, receiver, corpus_dir)
    before = stored(running, job_id)
    assert before[0]["status"] == "completed"
    tombstone_write = f"PUT /{running.bucket}/{status_key(job_id)} ".encode()
    kill_ingest_in_delete(running, job_id, proxy.hold(tombstone_write))
    wait_for(lambda: deliverer_count(running, "not_deleted") == 1, "the intent dropped", running)
    wait_for(lambda: queue_empty(running), "the delivery queue to drain", running)
    assert [s for s in receiver.requests() if s.payload["type"] == IMAGE_DELETED] == []
    assert stored(running, job_id) == before, "the completed document never changed"
