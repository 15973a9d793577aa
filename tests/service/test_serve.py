"""The real `imagepipe serve` process: configuration errors, memory bounded
under oversized uploads, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from imagepipe.config import Settings
from imagepipe.service.metrics import MALFORMED_ROUTE
from tests.service.conftest import backend_env
from tests.support.backend import free_port

MB = 1024 * 1024
IMAGEPIPE = str(Path(sys.executable).with_name("imagepipe"))


def rss_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {
        **os.environ,
        **backend_env(settings.s3_endpoint_url or ""),
        "IMAGEPIPE_QUEUE_URL": settings.queue_url,
        "IMAGEPIPE_SHUTDOWN_GRACE_SECONDS": "10",
        "IMAGEPIPE_SHUTDOWN_DELAY_SECONDS": "1",
    }
    process = subprocess.Popen(
        [IMAGEPIPE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "imagepipe serve did not start"
        time.sleep(0.1)
    yield process, url
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_bad_configuration_names_the_variable() -> None:
    env = {**os.environ, "IMAGEPIPE_PORT": "99999"}
    env.pop("IMAGEPIPE_BUCKET", None)
    result = subprocess.run([IMAGEPIPE, "serve"], env=env, capture_output=True, timeout=60)
    assert result.returncode == 2
    assert b"IMAGEPIPE_PORT" in result.stderr and b"IMAGEPIPE_BUCKET" in result.stderr


def _send_chunked(url: str, total: int) -> requests.Response:
    def body() -> Iterator[bytes]:
        chunk = b"\xff\xd8\xff\xe0" + b"\0" * (MB - 4)
        for _ in range(total // MB):
            yield chunk

    return requests.post(f"{url}/v1/images", data=body(), headers={"Content-Type": "image/jpeg"}, timeout=60)


def test_memory_stays_bounded_under_oversized_uploads(
    served: tuple[subprocess.Popen[bytes], str], images: dict[str, bytes]
) -> None:
    process, url = served
    # Warm up: one accepted upload and one rejection.
    assert requests.post(f"{url}/v1/images", files={"file": images["jpeg"]}, timeout=30).status_code == 202
    assert _send_chunked(url, 11 * MB).status_code == 413
    before = rss_peak_kb(process.pid)
    for _ in range(3):
        r = _send_chunked(url, 64 * MB)
        assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
        big = b"\xff\xd8\xff\xe0" + b"\0" * (11 * MB)
        r = requests.post(f"{url}/v1/images", data=big, headers={"Content-Type": "image/jpeg"}, timeout=60)
        assert r.status_code == 413
    grown_mb = (rss_peak_kb(process.pid) - before) / 1024
    # 3 x (64 MB + 11 MB) were sent; the cap is 10 MB.
    assert grown_mb < 24, f"peak RSS grew by {grown_mb:.0f} MB"


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_sigterm_finishes_in_flight_upload_then_exits(
    served: tuple[subprocess.Popen[bytes], str], images: dict[str, bytes]
) -> None:
    process, url = served
    port = int(url.rsplit(":", 1)[1])
    data = images["jpeg"]
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nConnection: close\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[: len(data) // 2]
        )
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        # Not ready at once, but still accepting during the delay ...
        ready = requests.get(f"{url}/readyz", timeout=10)
        while ready.status_code == 200:  # the signal is handled between two requests
            ready = requests.get(f"{url}/readyz", timeout=10)
        assert (ready.status_code, ready.json()["error"]["code"]) == (503, "shutting_down")
        assert ready.headers["Connection"] == "close"
        # ... then no new connections, while the upload still runs.
        deadline = time.monotonic() + 30
        while _connects(port):
            assert time.monotonic() < deadline, "still accepting connections 30 s after SIGTERM"
            time.sleep(0.1)
        assert process.poll() is None
        sock.sendall(data[len(data) // 2 :])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    if not response.startswith(b"HTTP/1.1 202"):
        process.wait(timeout=15)
        raise AssertionError(process.stderr.read().decode()[-3000:] if process.stderr else "")
    assert process.wait(timeout=15) == 0
    assert process.stderr is not None
    log = process.stderr.read().decode()
    assert '"message": "upload accepted"' in log and '"message": "ingest stopped"' in log


def malformed_count(url: str) -> float:
    """The ingest's count of requests its HTTP parser refused, from /metrics."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    [sample] = (
        s
        for s in samples
        if s.name == "imagepipe_http_requests_total" and s.labels["route"] == MALFORMED_ROUTE
    )
    assert sample.labels == {"route": MALFORMED_ROUTE, "method": "other", "status": "400"}
    return sample.value


@pytest.mark.parametrize(
    "raw",
    [
        b"this is no request line\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
        b"POST /v1/images HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
    ],
    ids=["request-line", "header", "two-lengths", "chunk-size", "tls"],
)
def test_malformed_http_gets_our_json_error_is_counted_and_no_traceback(
    served: tuple[subprocess.Popen[bytes], str], raw: bytes
) -> None:
    process, url = served
    port = int(url.rsplit(":", 1)[1])
    before = malformed_count(url)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(raw)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400", response
    assert b"application/json" in head
    assert json.loads(body)["error"]["code"] == "bad_request"
    assert b"malformed HTTP request" in body
    assert malformed_count(url) == before + 1, "the 4xx rate must see the refused request"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None
    log = process.stderr.read().decode()
    assert "Traceback" not in log and '"level": "error"' not in log.lower(), log[-2000:]
    assert "malformed request refused" in log
