"""Admission before the body: `100 Continue` only for authenticated uploads
within their key's rate and the upload budget; every refusal is counted; the
form names what is wrong with it."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import requests

from imagepipe.service.state import INGEST
from tests.service.conftest import KEYS, Served, ServiceFactory

MB = 1024 * 1024
ALICE = {"Authorization": f"Bearer {KEYS['alice']}"}
BOB = {"Authorization": f"Bearer {KEYS['bob']}"}


def raw_request(port: int, head: str, body: bytes = b"") -> str:
    """Send a request head (and optionally a body) on its own; the first answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        return sock.recv(65536).decode(errors="replace")


def upload_head(length: int, *headers: str) -> str:
    lines = ["POST /v1/images HTTP/1.1", "Host: x", "Content-Type: image/jpeg", f"Content-Length: {length}"]
    return "\r\n".join([*lines, *headers]) + "\r\n"


def counted(service: Served, status: str) -> float:
    for line in requests.get(f"{service.url}/metrics", timeout=10).text.splitlines():
        labels = ('route="/v1/images"', 'method="POST"', f'status="{status}"')
        if line.startswith("imagepipe_http_requests_total{") and all(label in line for label in labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def authed(make_service: ServiceFactory) -> Served:
    return make_service(api_keys=tuple(KEYS.items()), rate_limit_per_second=0.5, rate_limit_burst=2)


def test_no_continue_before_authentication(authed: Served) -> None:
    response = raw_request(authed.port, upload_head(1000, "Expect: 100-continue"))
    assert response.startswith("HTTP/1.1 401"), response
    assert "100 Continue" not in response and '"unauthorized"' in response


def test_continue_after_authentication(authed: Served, images: dict[str, bytes]) -> None:
    data = images["jpeg"]
    with socket.create_connection(("127.0.0.1", authed.port), timeout=30) as sock:
        sock.sendall(
            upload_head(
                len(data), "Expect: 100-continue", f"Authorization: {ALICE['Authorization']}"
            ).encode()
            + b"\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(data)
        assert sock.recv(65536).startswith(b"HTTP/1.1 202")


def test_refusals_before_the_body_are_counted(authed: Served) -> None:
    before = {status: counted(authed, status) for status in ("401", "413", "400")}
    raw_request(authed.port, upload_head(1000, "Expect: 100-continue"))
    too_big = upload_head(11 * MB, "Expect: 100-continue", f"Authorization: {ALICE['Authorization']}")
    assert raw_request(authed.port, too_big).startswith("HTTP/1.1 413")
    assert raw_request(
        authed.port, upload_head(11 * MB, f"Authorization: {ALICE['Authorization']}")
    ).startswith("HTTP/1.1 413")
    assert counted(authed, "401") == before["401"] + 1
    assert counted(authed, "413") == before["413"] + 2


def test_one_key_over_its_rate_gets_429_and_another_key_is_unaffected(
    authed: Served, images: dict[str, bytes]
) -> None:
    url = f"{authed.url}/v1/images"
    answers = [
        requests.post(url, files={"file": images["jpeg"]}, headers=ALICE, timeout=30) for _ in range(4)
    ]
    statuses = [r.status_code for r in answers]
    assert statuses[:2] == [202, 202] and 429 in statuses[2:], statuses
    limited = next(r for r in answers if r.status_code == 429)
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    assert requests.post(url, files={"file": images["jpeg"]}, headers=BOB, timeout=30).status_code == 202


def test_an_upload_over_the_budget_waits_then_gets_503_overloaded(
    make_service: ServiceFactory, images: dict[str, bytes]
) -> None:
    """One upload holds the whole budget (its body half sent); the next is refused
    after the brief wait, before its body, and is accepted once the first is done."""
    service = make_service(max_upload_bytes=MB, upload_budget_bytes=2 * MB)
    data = images["jpeg"]
    holder = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    holder.sendall(upload_head(MB).encode() + b"\r\n" + data[:1000])
    refused = raw_request(service.port, upload_head(len(data), "Expect: 100-continue"))
    assert refused.startswith("HTTP/1.1 503"), refused
    assert '"overloaded"' in refused and "Retry-After: 2" in refused and "100 Continue" not in refused
    holder.close()  # the held upload ends; its charge is given back
    r = requests.post(f"{service.url}/v1/images", files={"file": data}, timeout=30)
    assert r.status_code == 202, r.text


def test_a_waiting_upload_is_admitted_when_room_is_freed(
    make_service: ServiceFactory, images: dict[str, bytes]
) -> None:
    service = make_service(max_upload_bytes=len(images["jpeg"]), upload_budget_bytes=2 * len(images["jpeg"]))
    state = service.app[INGEST]
    state.budget.max_wait = 60.0  # room is freed long before: this test is not about the wait
    data = images["jpeg"]
    holder = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    holder.sendall(upload_head(len(data)).encode() + b"\r\n" + data[:1000])
    result: dict[str, Any] = {}

    def waiting() -> None:
        result["r"] = requests.post(
            f"{service.url}/v1/images", data=data, headers={"Content-Type": "image/jpeg"}, timeout=30
        )

    thread = threading.Thread(target=waiting)
    thread.start()
    deadline = time.monotonic() + 30
    while state.lifecycle.in_flight < 2:  # both in their handlers: the second one waits
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert state.budget.in_use == 2 * len(data)  # each byte held is charged twice
    holder.sendall(data[1000:])  # the holder finishes: room for the waiter
    assert holder.recv(65536).startswith(b"HTTP/1.1 202")
    holder.close()
    thread.join(timeout=30)
    assert result["r"].status_code == 202, result["r"].text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": ("a.jpg", b"\xff\xd8" * 2000)}, "the image goes in the form field 'file'"),
        ({"image": (None, "x" * 2000)}, "the image goes in the form field 'file'"),
    ],
)
def test_a_misnamed_file_field_says_where_the_image_goes(
    service: Served, fields: dict[str, Any], message: str
) -> None:
    r = requests.post(f"{service.url}/v1/images", files=fields, timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")
    assert message in r.json()["error"]["message"]


def test_two_files_in_one_upload_are_refused(service: Served, images: dict[str, bytes]) -> None:
    files = [("file", ("a.jpg", images["jpeg"])), ("file", ("b.jpg", images["jpeg"]))]
    r = requests.post(f"{service.url}/v1/images", files=files, timeout=30)
    assert r.status_code == 400 and "one file per upload" in r.json()["error"]["message"]
