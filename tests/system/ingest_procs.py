"""Real `imagepipe serve` processes on loopback for the flood, fairness,
readiness and rollout tests, and the raw-socket uploads they send."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import requests
from PIL import Image

from imagepipe.config import Settings, load_settings
from tests.service.conftest import backend_env
from tests.support.backend import MotoServer, free_port, provision

IMAGEPIPE = str(Path(sys.executable).with_name("imagepipe"))
MB = 1024 * 1024
# A slow upload's body goes out in this many writes.
PIECES = 20


def fresh_backend(moto: MotoServer) -> Settings:
    moto.reset()
    base = load_settings(backend_env(moto.endpoint))
    return dataclasses.replace(base, queue_url=provision(base).queue_url)


def big_photo() -> bytes:
    """A 9.3 MB JPEG of noise (the size the issue's flood sent), under the 10 MiB cap."""
    pixels = np.random.default_rng(7).integers(0, 256, (2800, 3700, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclasses.dataclass
class Ingest:
    process: subprocess.Popen[bytes]
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
    with log.open("wb") as out:
        process = subprocess.Popen(
            [IMAGEPIPE, "serve", "--host", "127.0.0.1", "--port", str(port)], env=full, stderr=out
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


async def slow_upload(
    port: int,
    data: bytes,
    seconds: float,
    *,
    declared: bool = True,
    headers: dict[str, str] | None = None,
) -> tuple[int, str]:
    """POST `data` as a raw image body spread over about `seconds`, declared
    (Content-Length) or chunked; the status and body of the answer (0: the
    connection failed). The answer may come before the body is all sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = ["POST /v1/images HTTP/1.1", "Host: ingest", "Content-Type: image/jpeg", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(data)}" if declared else "Transfer-Encoding: chunked")
    answer = asyncio.create_task(reader.read())
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        step = -(-len(data) // PIECES)
        for i in range(0, len(data), step):
            if answer.done():  # answered early (refused): stop sending
                break
            chunk = data[i : i + step]
            writer.write(chunk if declared else f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            await asyncio.sleep(seconds / PIECES)
        if not declared and not answer.done():
            writer.write(b"0\r\n\r\n")
    except (ConnectionError, OSError):
        pass  # the server closed after answering; the answer is still read
    try:
        raw = await answer
    except (ConnectionError, OSError):
        raw = b""
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode(errors="replace")
