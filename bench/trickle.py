"""The flood's client: a 9.3 MB photo, and an upload that trickles its body
over a given time on a raw socket (so that the framing, declared or chunked,
and the pace are exactly what is asked, which no HTTP client library lets one
choose). bench/ingest_flood.py measures the ingest with it and the system
tests (tests/system/ingest_procs.py) assert what it must survive; this
module imports nothing of either, so both can import it: the benchmarks as
`trickle`, the tests as `bench.trickle`."""

from __future__ import annotations

import asyncio
import io

import numpy as np
from PIL import Image


def big_photo() -> bytes:
    """A 9.3 MB JPEG (noise, 3700 x 2800, quality 90): the size of issue 14's
    flood, under the 10 MiB upload cap."""
    pixels = np.random.default_rng(7).integers(0, 256, (2800, 3700, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


async def slow_upload(
    port: int,
    data: bytes,
    seconds: float,
    *,
    declared: bool = True,
    headers: dict[str, str] | None = None,
    pieces: int = 20,
) -> tuple[int, str]:
    """POST `data` to 127.0.0.1:`port` as a raw image body in `pieces` writes
    spread over about `seconds`, declared (Content-Length) or chunked; the
    status and body of the answer (0: the connection failed). The answer may
    come before the body is all sent: then sending stops."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = ["POST /v1/images HTTP/1.1", "Host: ingest", "Content-Type: image/jpeg", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {len(data)}" if declared else "Transfer-Encoding: chunked")
    answer = asyncio.create_task(reader.read())
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        step = -(-len(data) // pieces)
        for i in range(0, len(data), step):
            if answer.done():  # answered early (refused): stop sending
                break
            chunk = data[i : i + step]
            writer.write(chunk if declared else f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            await asyncio.sleep(seconds / pieces)
        if not declared and not answer.done():
            writer.write(b"0\r\n\r\n")
    except OSError:
        pass  # the server closed after answering; the answer is still read
    try:
        raw = await answer
    except OSError:
        raw = b""
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode(errors="replace")
