"""One API key floods the ingest while another uploads now and then: the
flooder is held to its share (429 rate_limited), the other key's uploads are
accepted. And readiness with a stalled backend answers from state: it does
not flap, and probing it costs the backend nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from bench.trickle import slow_upload
from tests.service.conftest import KEYS
from tests.support.backend import MotoServer
from tests.support.faultproxy import FaultProxy
from tests.system.ingest_procs import MB, fresh_backend, ingest

pytestmark = pytest.mark.system

API_KEYS = ",".join(f"{key_id}:{key}" for key_id, key in KEYS.items())
ALICE = {"Authorization": f"Bearer {KEYS['alice']}"}
BOB = {"Authorization": f"Bearer {KEYS['bob']}"}


async def flood_until(port: int, data: bytes, stop: threading.Event, clients: int) -> Counter[int]:
    seen: Counter[int] = Counter()

    async def client() -> None:
        while not stop.is_set():
            status, _ = await slow_upload(port, data, seconds=0.2, headers=ALICE)
            seen[status] += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return seen


def test_another_key_is_accepted_while_one_key_floods(
    moto: MotoServer, tmp_path: Path, corpus_dir: Path
) -> None:
    settings = fresh_backend(moto)
    data = (corpus_dir / "recurser" / "Landscape_1.jpg").read_bytes()
    env = {
        "IMAGEPIPE_API_KEYS": API_KEYS,
        "IMAGEPIPE_RATE_LIMIT_PER_SECOND": "2",
        "IMAGEPIPE_RATE_LIMIT_BURST": "4",
        "IMAGEPIPE_UPLOAD_BUDGET_BYTES": str(64 * MB),
    }
    with ingest(settings, tmp_path, **env) as served:
        stop = threading.Event()
        result: dict[str, Counter[int]] = {}
        flooder = threading.Thread(
            target=lambda: result.update(alice=asyncio.run(flood_until(served.port, data, stop, 16)))
        )
        flooder.start()
        try:
            bob = []
            for _ in range(6):
                r = requests.post(
                    f"{served.url}/v1/images",
                    data=data,
                    headers={**BOB, "Content-Type": "image/jpeg"},
                    timeout=60,
                )
                bob.append(r.status_code)
                time.sleep(0.3)
        finally:
            stop.set()
            flooder.join(timeout=120)
    alice = result["alice"]
    assert bob == [202] * 6, (bob, alice)
    assert alice[429] > alice[202], alice  # held to its share
    assert set(alice) <= {202, 429, 503}, alice  # every one answered


def probe_statuses(url: str, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        statuses.append(requests.get(f"{url}/readyz", timeout=10).status_code)
        time.sleep(0.05)
    return statuses


def test_readiness_with_a_stalled_backend_does_not_flap(
    moto: MotoServer, proxy: FaultProxy, tmp_path: Path
) -> None:
    settings = fresh_backend(moto)
    via = f"http://127.0.0.1:{proxy.port}"
    env = {
        "IMAGEPIPE_S3_ENDPOINT_URL": via,
        "IMAGEPIPE_SQS_ENDPOINT_URL": via,
        "IMAGEPIPE_BACKEND_CHECK_INTERVAL_SECONDS": "0.5",
        "IMAGEPIPE_BACKEND_CHECK_TIMEOUT_SECONDS": "0.5",
    }
    with ingest(settings, tmp_path, **env) as served:
        proxy.mode = "stall"
        deadline = time.monotonic() + 30
        while requests.get(f"{served.url}/readyz", timeout=10).status_code == 200:
            assert time.monotonic() < deadline, "readiness never noticed the stalled backend"
            time.sleep(0.05)
        # Stalled: every probe answers at once from state, and always the same.
        assert set(probe_statuses(served.url, 40)) == {503}
        proxy.mode = "pass"
        deadline = time.monotonic() + 30
        while requests.get(f"{served.url}/readyz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "readiness never recovered"
            time.sleep(0.05)
        assert set(probe_statuses(served.url, 40)) == {200}


def test_probes_cost_the_backend_nothing(moto: MotoServer, proxy: FaultProxy, tmp_path: Path) -> None:
    settings = fresh_backend(moto)
    via = f"http://127.0.0.1:{proxy.port}"
    env = {
        "IMAGEPIPE_S3_ENDPOINT_URL": via,
        "IMAGEPIPE_SQS_ENDPOINT_URL": via,
        "IMAGEPIPE_BACKEND_CHECK_INTERVAL_SECONDS": "3600",
    }
    with ingest(settings, tmp_path, **env) as served:
        before = proxy.sent_bytes
        assert set(probe_statuses(served.url, 100)) == {200}
        assert proxy.sent_bytes == before  # 100 probes, not one byte to the backend
