"""What the race tests share: a real `imagepipe serve` process beside the
consumers of tests/consumer/stack.py, and a watcher that polls status
documents while a race runs and records every change it sees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.consumer.stack import REPO, Stack
from tests.support.backend import free_port


class Ingest:
    """`imagepipe serve` as a child process on a free loopback port."""

    def __init__(self, stack: Stack, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / "ingest.log"
        full_env = {**os.environ, **stack.env, **(env or {}), "PYTHONPATH": str(REPO)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "imagepipe.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                env=full_env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "imagepipe serve did not become ready"
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)

    def upload(self, data: bytes, headers: dict[str, str] | None = None) -> requests.Response:
        return requests.post(f"{self.url}/v1/images", files={"file": data}, headers=headers or {}, timeout=60)

    def status(self, job_id: str) -> requests.Response:
        return requests.get(f"{self.url}/v1/images/{job_id}", timeout=30)

    def delete(self, job_id: str) -> requests.Response:
        return requests.delete(f"{self.url}/v1/images/{job_id}", timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class Watcher:
    """Polls the status documents of some jobs in a thread; `check()` asserts
    that no completed job was ever seen to change (only a deletion may follow)
    and no deleted one at all."""

    def __init__(self, stack: Stack, job_ids: list[str], interval: float = 0.05) -> None:
        self.stack, self.job_ids, self.interval = stack, list(job_ids), interval
        self.seen: dict[str, list[dict[str, Any] | None]] = {job_id: [] for job_id in job_ids}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)

    def watch(self, job_id: str) -> None:
        self.seen.setdefault(job_id, [])
        self.job_ids.append(job_id)

    def _run(self) -> None:
        while not self.stopping.is_set():
            for job_id in list(self.job_ids):
                doc = self.stack.status(job_id)
                history = self.seen[job_id]
                if not history or history[-1] != doc:
                    history.append(doc)
            time.sleep(self.interval)

    def states(self, job_id: str) -> list[str | None]:
        return [None if doc is None else doc["status"] for doc in self.seen[job_id]]

    def check(self) -> None:
        for job_id, history in self.seen.items():
            states = self.states(job_id)
            if "deleted" in states:
                after = states[states.index("deleted") :]
                assert set(after) == {"deleted"}, f"deleted job {job_id} changed: {states}"
            completed = [doc for doc in history if doc is not None and doc["status"] == "completed"]
            if not completed:
                continue
            after_completed = history[history.index(completed[0]) :]
            for doc in after_completed[1:]:
                assert doc is not None and doc["status"] == "deleted", (
                    f"completed job {job_id} changed: {states}"
                )
