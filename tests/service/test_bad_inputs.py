"""Every bad input gets its 4xx JSON error, and nothing is stored or queued."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from imagepipe.config import Settings
from tests.service.conftest import Served, ServiceFactory, receive_all
from tests.support.hostile import jpeg_with_comments, png_with_chunks, progressive_jpeg

MB = 1024 * 1024
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>'
TEXT = b"just some words, not an image\n" * 20
# 64 MiB of zeros in 64 KB of gzip: the decoded stream counts against the cap.
GZIP_BOMB = gzip.compress(bytes(64 * MB), compresslevel=9)


def corpus(corpus_dir: Path, name: str) -> bytes:
    return (corpus_dir / name).read_bytes()


# (case, files or raw body builder, expected status, expected code)
CASES: list[tuple[str, Any, int, str]] = [
    ("empty multipart file", lambda c: {"files": {"file": ("a.jpg", b"")}}, 400, "empty_upload"),
    (
        "empty raw body",
        lambda c: {"data": b"", "headers": {"Content-Type": "image/jpeg"}},
        400,
        "empty_upload",
    ),
    ("missing file field", lambda c: {"files": {"image": ("a.jpg", b"\xff\xd8\xff")}}, 400, "bad_request"),
    ("no body at all", lambda c: {}, 400, "empty_upload"),
    ("json body", lambda c: {"json": {"file": "x"}}, 415, "unsupported_format"),
    (
        "text renamed .jpg",
        lambda c: {"files": {"file": ("photo.jpg", TEXT, "image/jpeg")}},
        415,
        "unsupported_format",
    ),
    ("html payload", lambda c: {"files": {"file": ("a.png", HTML, "image/png")}}, 415, "unsupported_format"),
    (
        "svg payload",
        lambda c: {"data": SVG, "headers": {"Content-Type": "image/svg+xml"}},
        415,
        "unsupported_format",
    ),
    ("gif", lambda c: {"files": {"file": ("a.gif", GIF)}}, 415, "unsupported_format"),
    (
        "truncated jpeg header",
        lambda c: {"files": {"file": ("a.jpg", corpus(c, "sharp/320x240.jpg")[:200])}},
        422,
        "corrupt_image",
    ),
    (
        "corrupt header",
        lambda c: {"files": {"file": ("a.jpg", corpus(c, "sharp/corrupt-header.jpg"))}},
        422,
        "corrupt_image",
    ),
    (
        "png bomb",
        lambda c: {"files": {"file": ("a.png", corpus(c, "sharp/65536-uint32-limit.png"))}},
        413,
        "too_many_pixels",
    ),
    (
        "gzip-encoded bomb",
        lambda c: {"data": GZIP_BOMB, "headers": {"Content-Type": "image/jpeg", "Content-Encoding": "gzip"}},
        413,
        "too_large",
    ),
    (
        "jpeg scan flood",
        lambda c: {"files": {"file": ("a.jpg", progressive_jpeg(extra_scans=5000))}},
        422,
        "too_complex",
    ),
    (
        "jpeg comment flood",
        lambda c: {"files": {"file": ("a.jpg", jpeg_with_comments(1_000_000))}},
        422,
        "too_complex",
    ),
    (
        "png chunk flood",
        lambda c: {"files": {"file": ("a.png", png_with_chunks(100_000))}},
        422,
        "too_complex",
    ),
    (
        "unknown pipeline (query)",
        lambda c: {"params": {"pipeline": "nope"}, "files": {"file": corpus(c, "sharp/320x240.jpg")}},
        400,
        "unknown_pipeline",
    ),
    (
        "unknown pipeline (form)",
        lambda c: {"files": {"file": corpus(c, "sharp/320x240.jpg"), "pipeline": (None, "nope")}},
        400,
        "unknown_pipeline",
    ),
    (
        "bad idempotency key",
        lambda c: {"files": {"file": corpus(c, "sharp/320x240.jpg")}, "headers": {"Idempotency-Key": "a b"}},
        400,
        "bad_request",
    ),
    (
        "malformed multipart",
        lambda c: {
            "data": b"--x\r\nnonsense",
            "headers": {"Content-Type": "multipart/form-data; boundary=y"},
        },
        400,
        "bad_request",
    ),
    (
        # A control byte in a part header: the multipart parser itself refuses it.
        "invalid part header",
        lambda c: {
            "data": b'--y\r\nContent-Disposition: form-data; name="a\x04"\r\n\r\nv\r\n--y--\r\n',
            "headers": {"Content-Type": "multipart/form-data; boundary=y"},
        },
        400,
        "bad_request",
    ),
]


@pytest.mark.parametrize(("case", "build", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_bad_upload(
    service: Served,
    settings: Settings,
    s3: Any,
    sqs: Any,
    corpus_dir: Path,
    case: str,
    build: Any,
    status: int,
    code: str,
) -> None:
    r = requests.post(f"{service.url}/v1/images", timeout=30, **build(corpus_dir))
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in r.text
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.bucket)
    assert receive_all(sqs, settings.queue_url) == []


def test_client_strings_are_escaped_in_errors(service: Served, corpus_dir: Path) -> None:
    evil = '"}\n{"injected": true, <script>'
    r = requests.post(
        f"{service.url}/v1/images",
        params={"pipeline": evil},
        files={"file": corpus(corpus_dir, "sharp/320x240.jpg")},
        timeout=30,
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "unknown_pipeline"
    assert "\n" not in r.text


# --- the byte cap: 11 MB with and without Content-Length ---------------------


def test_declared_length_over_cap_answered_before_the_body(service: Served) -> None:
    """Only the headers are sent: the 413 arrives without reading any body."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            + f"Content-Length: {11 * MB}\r\n\r\n".encode()
        )
        response = sock.recv(65536).decode()
    assert response.startswith("HTTP/1.1 413"), response
    assert '"too_large"' in response


def test_expect_continue_over_cap_gets_413_instead_of_100(service: Served) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nExpect: 100-continue\r\n"
            + f"Content-Length: {11 * MB}\r\n\r\n".encode()
        )
        response = sock.recv(65536).decode()
    assert response.startswith("HTTP/1.1 413"), response


async def _post_11mb(url: str, chunked: bool, multipart: bool) -> tuple[int, dict[str, Any]]:
    payload = b"\xff\xd8\xff\xe0" + b"\0" * (11 * MB)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 256 * 1024):
            yield payload[i : i + 256 * 1024]

    async with aiohttp.ClientSession() as session:
        body: Any
        if multipart:
            body = aiohttp.FormData()
            body.add_field("file", chunks() if chunked else payload, filename="big.jpg")
            kwargs: dict[str, Any] = {"data": body}
        else:
            kwargs = {"data": chunks() if chunked else payload, "headers": {"Content-Type": "image/jpeg"}}
        async with session.post(f"{url}/v1/images", **kwargs) as response:
            return response.status, await response.json()


@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_11mb_upload_gets_413(
    service: Served, settings: Settings, s3: Any, chunked: bool, multipart: bool
) -> None:
    status, body = asyncio.run(_post_11mb(service.url, chunked, multipart))
    assert (status, body["error"]["code"]) == (413, "too_large")
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.bucket)
    # The connection pool and the server are still fine afterwards.
    assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200


# --- a client that trickles its upload ---------------------------------------


@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
def test_an_upload_that_does_not_arrive_in_time_gets_408(
    make_service: ServiceFactory, settings: Settings, s3: Any, sqs: Any, corpus_dir: Path, multipart: bool
) -> None:
    """Half the body, then silence: refused when the timeout passes, nothing stored."""
    service = make_service(upload_timeout_seconds=1)
    image = corpus(corpus_dir, "sharp/320x240.jpg")
    if multipart:
        content_type = "multipart/form-data; boundary=b"
        body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n' + image
        body += b"\r\n--b--\r\n"
    else:
        content_type, body = "image/jpeg", image
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(
            f"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        response = sock.recv(65536).decode()
        # The late rest is read and dropped (aiohttp lingers up to 10 s for it).
        sock.sendall(body[len(body) // 2 :])
    assert response.startswith("HTTP/1.1 408"), response
    assert '"request_timeout"' in response and "within 1 seconds" in response
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.bucket)
    assert receive_all(sqs, settings.queue_url) == []
    assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200
