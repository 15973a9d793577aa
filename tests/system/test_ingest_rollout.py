"""A rollout of the ingest drops nothing: two `imagepipe serve` processes
behind a balancer that follows /readyz; one is SIGTERMed while a client keeps
uploading through the balancer (no failed request), and an upload still
arriving at that process when SIGTERM comes completes.

The balancer looks at readiness once a second, as endpoints lag behind a
pod's readiness; with IMAGEPIPE_SHUTDOWN_DELAY_SECONDS=0 this test saw 6 of
74 requests fail (connections routed to a closed listener)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from bench.trickle import slow_upload
from tests.support.backend import MotoServer
from tests.system.balancer import Balancer
from tests.system.ingest_procs import fresh_backend, ingest, wait_until

pytestmark = pytest.mark.system


def keep_uploading(url: str, data: bytes, stop: threading.Event, seen: Counter[str]) -> None:
    while not stop.is_set():
        try:
            r = requests.post(
                f"{url}/v1/images",
                data=data,
                headers={"Content-Type": "image/jpeg", "Connection": "close"},
                timeout=60,
            )
            seen[str(r.status_code)] += 1
        except requests.RequestException as exc:
            seen[type(exc).__name__] += 1


def test_sigterm_during_a_rollout_fails_no_request(
    moto: MotoServer, tmp_path: Path, corpus_dir: Path
) -> None:
    settings = fresh_backend(moto)
    data = (corpus_dir / "recurser" / "Landscape_1.jpg").read_bytes()
    env = {"IMAGEPIPE_SHUTDOWN_DELAY_SECONDS": "3"}
    with (
        ingest(settings, tmp_path, **env) as old,
        ingest(settings, tmp_path, **env) as new,
        Balancer([old.port, new.port], interval=1.0) as balancer,
    ):
        wait_until(lambda: balancer.ready == {old.port, new.port}, 30, "both ingests routed")
        seen: Counter[str] = Counter()
        stop = threading.Event()
        client = threading.Thread(
            target=keep_uploading, args=(f"http://127.0.0.1:{balancer.port}", data, stop, seen)
        )
        client.start()
        try:
            wait_until(lambda: balancer.routed[old.port] >= 3, 60, "uploads routed to the old ingest")
            in_flight: dict[str, tuple[int, str]] = {}
            arriving = threading.Thread(
                target=lambda: in_flight.update(r=asyncio.run(slow_upload(old.port, data, seconds=4.0)))
            )
            arriving.start()
            time.sleep(1.0)  # its body takes 4 s: SIGTERM comes while it arrives
            old.terminate()
            assert old.process.wait(timeout=120) == 0
            routed_after = sum(seen.values())
            wait_until(lambda: sum(seen.values()) >= routed_after + 5, 60, "uploads after the rollout")
            arriving.join(timeout=60)
        finally:
            stop.set()
            client.join(timeout=120)
    assert set(seen) == {"202"}, seen
    assert in_flight["r"][0] == 202, in_flight
    assert balancer.routed[new.port] >= 5
