"""Real `imagepipe serve` processes on loopback for the flood, fairness,
readiness and rollout tests (the raw-socket uploads they send are
bench/trickle.py's, the client the flood benchmark measures with)."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from imagepipe.config import Settings, load_settings
from imagepipe.processes import ROLE_COMMAND, Process, start_process
from tests.service.conftest import backend_env
from tests.support.backend import MotoServer, free_port, provision

MB = 1024 * 1024


def fresh_backend(moto: MotoServer) -> Settings:
    moto.reset()
    base = load_settings(backend_env(moto.endpoint))
    return dataclasses.replace(base, queue_url=provision(base).queue_url)


@dataclasses.dataclass
class Ingest:
    process: Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


@contextmanager
def ingest(settings: Settings, tmp_path: Path, **env: str) -> Iterator[Ingest]:
    """`imagepipe serve` with the settings' backend plus `env`; ready when it yields."""
    port = free_port()
    full = {
        **os.environ,
        **backend_env(settings.s3_endpoint_url or ""),
        "IMAGEPIPE_QUEUE_URL": settings.queue_url,
        **env,
    }
    log = tmp_path / f"ingest-{port}.log"
    process = start_process(
        [*ROLE_COMMAND, "serve", "--host", "127.0.0.1", "--port", str(port)], full, log=log
    )
    served = Ingest(process, port, log)
    try:
        wait_until(lambda: _ready(served), 60, f"ingest on port {port} ready")
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _ready(served: Ingest) -> bool:
    assert served.process.poll() is None, served.log.read_text()[-3000:]
    try:
        return requests.get(f"{served.url}/readyz", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
