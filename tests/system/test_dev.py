"""`imagepipe dev` as the README uses it: one command, then upload with an
HTTP client, poll the status, fetch the variants anonymously."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.backend import free_port

pytestmark = pytest.mark.system
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    command = [
        sys.executable, "-m", "imagepipe.cli", "dev",
        "--port", str(port), "--backend-port", "0", "--metrics-port", str(free_port()), "--slots", "1",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEPIPE_", "AWS_"))}
    with (tmp_path / "dev.log").open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    api = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while "imagepipe dev is running" not in (tmp_path / "dev.log").read_text():
        assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
        time.sleep(0.2)
    yield api, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_dev_runs_the_readme_quick_start(dev: tuple[str, subprocess.Popen[bytes]]) -> None:
    api, process = dev
    with (REPO / "examples" / "sample.jpg").open("rb") as photo:
        answer = requests.post(
            f"{api}/v1/images", files={"file": ("photo.jpg", photo, "image/jpeg")}, timeout=30
        )
    assert answer.status_code in (200, 202), answer.text
    status_url = answer.json()["status_url"]
    assert status_url.startswith(f"{api}/v1/images/"), "absolute, on the request's own origin"
    deadline = time.monotonic() + 60
    while (doc := requests.get(status_url, timeout=10).json())["status"] not in (
        "completed",
        "failed",
    ):
        assert time.monotonic() < deadline, doc
        time.sleep(0.2)
    assert doc["status"] == "completed", doc
    for variant in doc["variants"].values():
        fetched = requests.get(variant["url"], timeout=10)  # no credentials
        assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "image/webp"
        assert len(fetched.content) == variant["bytes"]
    bucket_url = doc["variants"]["medium"]["url"].split("/variants/")[0]
    assert requests.get(f"{bucket_url}/originals/{doc['job_id']}", timeout=10).status_code == 403
    assert requests.get(f"{bucket_url}/jobs/{doc['job_id']}.json", timeout=10).status_code == 403
    # Ctrl+C / SIGTERM stops every role cleanly.
    process.send_signal(signal.SIGTERM)
    assert process.wait(40) == 0
