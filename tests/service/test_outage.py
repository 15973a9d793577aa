"""Backend outages: a fault proxy between the ingest and the S3+SQS server.
Uploads get 503 with Retry-After, no client ever holds a job id that does
not lead to a result, and uploads succeed again once the path is restored."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from imagepipe.config import Settings
from imagepipe.jobstore.keys import original_key, status_key
from tests.service.conftest import Served, receive_all
from tests.support.faultproxy import FaultProxy


def upload(service: Served, data: bytes) -> requests.Response:
    return requests.post(f"{service.url}/v1/images", files={"file": data}, timeout=30)


def assert_no_job_handed_out(r: requests.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["error"]["code"] == "backend_unavailable"
    assert "job_id" not in r.text and "Location" not in r.headers


def readyz_once(service: Served, status: int, timeout: float = 30) -> requests.Response:
    """Poll /readyz until it answers `status` (the background check runs on its own interval)."""
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(f"{service.url}/readyz", timeout=10)
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            return r
        time.sleep(0.05)


@pytest.mark.parametrize("mode", ["refuse", "reset", "stall"])
def test_outage_then_recovery(
    make_service: Any, proxy: FaultProxy, settings: Settings, sqs: Any, images: dict[str, bytes], mode: str
) -> None:
    via = f"http://127.0.0.1:{proxy.port}"
    service = make_service(
        s3_endpoint_url=via, sqs_endpoint_url=via, backend_timeout=1.5, backend_check_interval_seconds=0.2
    )
    assert upload(service, images["jpeg"]).status_code == 202

    proxy.mode = mode
    started = time.monotonic()
    assert_no_job_handed_out(upload(service, images["png"]))
    assert time.monotonic() - started < 10
    ready = readyz_once(service, 503)
    assert "Retry-After" in ready.headers and ready.json()["error"]["code"] == "backend_unavailable"
    # Health is about the process only.
    assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200

    proxy.mode = "pass"
    r = upload(service, images["webp"])
    assert r.status_code == 202, r.text
    readyz_once(service, 200)
    # Exactly the two accepted uploads are queued; the refused one left no message.
    messages = receive_all(sqs, settings.queue_url)
    assert len(messages) == 2
    assert r.json()["job_id"] in {m["Body"].split('"job_id":"')[1].split('"')[0] for m in messages}


def test_queue_outage_after_storage_writes(
    make_service: Any, proxy: FaultProxy, settings: Settings, s3: Any, sqs: Any, images: dict[str, bytes]
) -> None:
    """S3 works, SQS does not: the original and status were written, the send
    fails, the client gets 503 and the leftovers are cleaned up (best effort)."""
    service = make_service(sqs_endpoint_url=f"http://127.0.0.1:{proxy.port}", backend_timeout=1.5)
    proxy.mode = "refuse"
    assert_no_job_handed_out(upload(service, images["jpeg"]))
    assert "Contents" not in s3.list_objects_v2(Bucket=settings.bucket)
    proxy.mode = "pass"
    r = upload(service, images["jpeg"])
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    s3.head_object(Bucket=settings.bucket, Key=original_key(job_id))
    s3.head_object(Bucket=settings.bucket, Key=status_key(job_id))
    assert len(receive_all(sqs, settings.queue_url)) == 1


def test_status_and_delete_during_outage(
    make_service: Any, proxy: FaultProxy, images: dict[str, bytes]
) -> None:
    via = f"http://127.0.0.1:{proxy.port}"
    # Reset connections fail at once: no short backend timeout is needed to see the 503s,
    # and a short one would fail the calls before and after the outage on a loaded machine.
    service = make_service(s3_endpoint_url=via, sqs_endpoint_url=via)
    job_id = upload(service, images["jpeg"]).json()["job_id"]
    proxy.mode = "reset"
    for method in ("get", "delete"):
        r = requests.request(method, f"{service.url}/v1/images/{job_id}", timeout=30)
        assert r.status_code == 503 and "Retry-After" in r.headers
    proxy.mode = "pass"
    # Recovered: the job is still there (the DELETE during the outage did nothing).
    deadline = time.monotonic() + 60
    while (answer := requests.get(f"{service.url}/v1/images/{job_id}", timeout=30)).status_code != 200:
        assert answer.status_code == 503 and time.monotonic() < deadline, answer.text
        time.sleep(0.2)
