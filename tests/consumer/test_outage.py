"""S3/SQS outages through a fault-injecting TCP proxy on loopback: refused,
stalled and reset connections while jobs are in flight, then restored; and an
outage long enough to exhaust the receives."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from imagepipe.jobstore.keys import variants_prefix
from tests.consumer.stack import Consumer, Stack
from tests.support.backend import MotoServer
from tests.support.faultproxy import FaultProxy


def test_jobs_in_flight_survive_refused_stalled_and_reset_backends(
    moto: MotoServer, proxy: FaultProxy, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    stack = Stack(moto.endpoint, visibility=3, max_receives=6)
    through_proxy = {"IMAGEPIPE_AWS_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    consumer = consumers(stack, slow_render=1.0, env=through_proxy, args=("--release-base-seconds", "1"))
    data = (corpus_dir / "recurser/Landscape_3.jpg").read_bytes()
    jobs = [stack.submit(data) for _ in range(6)]
    consumer.wait_for_line("job started")
    for mode in ("refuse", "stall", "reset"):
        proxy.mode = mode
        time.sleep(2.5)
    proxy.mode = "pass"
    done = stack.wait_for(jobs, timeout=90)
    assert {doc["status"] for doc in done.values()} == {"completed"}
    for job_id in jobs:
        assert len(stack.keys(variants_prefix(job_id))) == 3
    stack.settled()
    assert stack.dead_letters() == []
    # The outage really hit jobs in flight (their heartbeats at least), and they rode it out.
    faults = {"heartbeat failed", "receive failed", "job attempt failed; handing the message back"}
    assert any(line.get("message") in faults for line in consumer.lines())


def test_long_outage_exhausts_receives_into_failed_and_dead_letters(
    moto: MotoServer, proxy: FaultProxy, consumers: Callable[..., Consumer], corpus_dir: Path
) -> None:
    stack = Stack(moto.endpoint, visibility=2, max_receives=3)
    # S3 only is cut off: SQS keeps delivering, so every receive fails until the last.
    s3_through_proxy = {"IMAGEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}"}
    # Sweeping every second, not 15: the dead-lettered message is found soon after it moves.
    consumer = consumers(
        stack, env=s3_through_proxy, args=("--release-base-seconds", "1", "--sweep-seconds", "1")
    )
    proxy.mode = "refuse"
    job_id = stack.submit((corpus_dir / "recurser/Landscape_3.jpg").read_bytes())
    consumer.wait_for_line("job failed: retries exhausted", timeout=60, job_id=job_id)
    attempts = [
        line
        for line in consumer.lines()
        if line.get("message") == "job attempt failed; handing the message back"
    ]
    assert [line["attempt"] for line in attempts] == [1, 2]
    assert [line["visibility"] for line in attempts] == [1, 2], "growing visibility"
    # S3 comes back while the last attempt still tries to record the failure.
    proxy.mode = "pass"
    doc = stack.wait_for([job_id], timeout=60)[job_id]
    assert doc["status"] == "failed" and doc["error"]["code"] == "retries_exhausted"
    # The redrive policy moved the message to the dead-letter queue; the sweeper found the job final.
    consumer.wait_for_line("dead-lettered job already final", timeout=90, job_id=job_id)
    stack.settled(dead_letters=True)
