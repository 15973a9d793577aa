"""DELETE's `image.deleted` event, read off the delivery queue of the loopback
moto server: emitted before the 204, its deletion intent queued before the
tombstone (none when the event is not chosen); emitted again (same id) by the
owner's repeated DELETE, which still answers 404; never for another key's job;
a 503 deleting nothing while the intent cannot be queued; nothing needed
with webhooks off; `imagepipe serve` refusing to start without its
delivery queue, and starting when it only cannot reach it (the first event
looks it up); GET's `deliveries`."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import pytest
import requests

from imagepipe.config import Settings
from imagepipe.jobstore.deliveries import DELIVERED, PENDING, Attempt, record_attempt
from imagepipe.jobstore.keys import delivery_key, status_key
from imagepipe.processes import start_process
from imagepipe.service.openapi import document
from imagepipe.webhooks.events import WebhookEvent, event_id, parse_message, payload
from imagepipe.webhooks.intents import DeletionIntent, parse_outbox_message
from tests.service.conftest import KEYS, QUEUE, Served, ServiceFactory, backend_env
from tests.support.backend import MotoServer, free_port
from tests.support.faultproxy import FaultProxy

HOOK = "https://hooks.example.test/imagepipe"


def bearer(key_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[key_id]}"}


@pytest.fixture
def delivery_url(settings: Settings, sqs: Any) -> str:
    return str(sqs.create_queue(QueueName=f"{QUEUE}-webhooks")["QueueUrl"])


@pytest.fixture
def hooked(make_service: ServiceFactory, delivery_url: str) -> Served:
    return make_service(webhook_url=HOOK, api_keys=tuple(KEYS.items()))


def upload(service: Served, image: bytes, key_id: str = "alice") -> str:
    r = requests.post(f"{service.url}/v1/images", files={"file": image}, headers=bearer(key_id), timeout=30)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def delete(service: Served, job_id: str, key_id: str = "alice") -> requests.Response:
    return requests.delete(f"{service.url}/v1/images/{job_id}", headers=bearer(key_id), timeout=30)


def events(sqs: Any, url: str) -> list[WebhookEvent]:
    """Every event on the delivery queue now (each receive hides it for later calls)."""
    got: list[WebhookEvent] = []
    while True:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)
        if not response.get("Messages"):
            return got
        got += [parse_message(m["Body"]) for m in response["Messages"]]


def tombstone(s3: Any, settings: Settings, job_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        s3.get_object(Bucket=settings.bucket, Key=status_key(job_id))["Body"].read()
    )
    return doc


def test_delete_emits_image_deleted_and_a_repeat_emits_it_again(
    hooked: Served, settings: Settings, s3: Any, sqs: Any, delivery_url: str, images: dict[str, bytes]
) -> None:
    job_id = upload(hooked, images["jpeg"])
    assert events(sqs, delivery_url) == [], "an upload emits nothing"
    assert delete(hooked, job_id).status_code == 204
    [event] = events(sqs, delivery_url)
    doc = tombstone(s3, settings, job_id)
    assert event == WebhookEvent(
        event_id(job_id, "image.deleted", doc["deleted_at"]), "image.deleted", job_id, doc["deleted_at"], doc
    )
    assert doc["owner"] == "alice" and doc["status"] == "deleted"
    # Another key's repeat learns nothing and emits nothing; the owner's re-emits the same event.
    r = delete(hooked, job_id, "bob")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    assert events(sqs, delivery_url) == []
    r = delete(hooked, job_id)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    assert events(sqs, delivery_url) == [event]
    metrics = requests.get(f"{hooked.url}/metrics", timeout=10).text
    assert 'imagepipe_webhook_events_total{event="image.deleted"} 2.0' in metrics


def test_a_delete_whose_intent_cannot_be_queued_answers_503_and_deletes_nothing(
    hooked: Served, settings: Settings, s3: Any, sqs: Any, delivery_url: str, images: dict[str, bytes]
) -> None:
    job_id = upload(hooked, images["png"])
    variant = f"variants/{job_id}/abc/thumbnail.webp"
    s3.put_object(Bucket=settings.bucket, Key=variant, Body=b"x")
    before = s3.head_object(Bucket=settings.bucket, Key=status_key(job_id))["ETag"]
    sqs.delete_queue(QueueUrl=delivery_url)
    r = delete(hooked, job_id)
    assert (r.status_code, r.json()["error"]["code"]) == (503, "backend_unavailable")
    assert "Retry-After" in r.headers
    # No intent, no tombstone: the job and its outputs are as they were.
    assert s3.head_object(Bucket=settings.bucket, Key=status_key(job_id))["ETag"] == before
    assert s3.list_objects_v2(Bucket=settings.bucket, Prefix=variant).get("KeyCount") == 1
    assert sqs.create_queue(QueueName=f"{QUEUE}-webhooks")["QueueUrl"] == delivery_url
    assert delete(hooked, job_id).status_code == 204
    [event] = events(sqs, delivery_url)
    assert event.type == "image.deleted" and event.timestamp == tombstone(s3, settings, job_id)["deleted_at"]


def outbox_messages(sqs: Any, url: str, count: int) -> list[WebhookEvent | DeletionIntent]:
    """`count` messages of the delivery queue, delayed ones included (polled for)."""
    got: list[WebhookEvent | DeletionIntent] = []
    deadline = time.monotonic() + 60
    while len(got) < count:
        assert time.monotonic() < deadline, got
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        got += [parse_outbox_message(m["Body"]) for m in response.get("Messages", [])]
    return got


def test_delete_queues_its_intent_before_the_tombstone(
    make_service: ServiceFactory,
    settings: Settings,
    s3: Any,
    sqs: Any,
    delivery_url: str,
    images: dict[str, bytes],
) -> None:
    service = make_service(webhook_url=HOOK, webhook_deletion_check_seconds=1)
    job_id = requests.post(f"{service.url}/v1/images", files={"file": images["jpeg"]}, timeout=30).json()[
        "job_id"
    ]
    assert requests.delete(f"{service.url}/v1/images/{job_id}", timeout=30).status_code == 204
    got = outbox_messages(sqs, delivery_url, 2)
    [intent] = [m for m in got if isinstance(m, DeletionIntent)]
    [event] = [m for m in got if isinstance(m, WebhookEvent)]
    deleted_at = tombstone(s3, settings, job_id)["deleted_at"]
    assert intent.job_id == event.job_id == job_id and event.timestamp == deleted_at
    assert intent.requested_at <= deleted_at < intent.check_at, "queued first, tombstoned within its window"


def test_a_deletion_left_out_of_the_events_queues_no_intent(
    make_service: ServiceFactory, sqs: Any, delivery_url: str, images: dict[str, bytes]
) -> None:
    service = make_service(
        webhook_url=HOOK, webhook_events=("image.completed",), webhook_deletion_check_seconds=1
    )
    job_id = requests.post(f"{service.url}/v1/images", files={"file": images["jpeg"]}, timeout=30).json()[
        "job_id"
    ]
    assert requests.delete(f"{service.url}/v1/images/{job_id}", timeout=30).status_code == 204
    # Longer than the window: an intent would be visible by now.
    assert sqs.receive_message(QueueUrl=delivery_url, WaitTimeSeconds=3).get("Messages") is None


def test_with_webhooks_off_delete_needs_no_delivery_queue(
    service: Served, sqs: Any, images: dict[str, bytes]
) -> None:
    job_id = requests.post(f"{service.url}/v1/images", files={"file": images["webp"]}, timeout=30).json()[
        "job_id"
    ]
    assert requests.delete(f"{service.url}/v1/images/{job_id}", timeout=10).status_code == 204
    assert requests.delete(f"{service.url}/v1/images/{job_id}", timeout=10).status_code == 404
    assert not [q for q in sqs.list_queues().get("QueueUrls", []) if q.endswith("-webhooks")]


def test_serve_refuses_to_start_without_its_delivery_queue(
    moto: MotoServer, settings: Settings, tmp_path: Any
) -> None:
    log = tmp_path / "serve.log"
    env = {**os.environ, **backend_env(moto.endpoint), "IMAGEPIPE_WEBHOOK_URL": HOOK}
    command = [
        sys.executable,
        "-m",
        "imagepipe.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
    ]
    process = start_process(command, env, log=log)
    assert process.wait(60) == 2
    lines = [line for line in log.read_text().splitlines() if line.startswith("imagepipe serve:")]
    assert len(lines) == 1 and f"{QUEUE}-webhooks" in lines[0] and "does not exist" in lines[0], (
        log.read_text()
    )
    assert "Traceback" not in log.read_text()


def test_get_shows_the_deliveries_with_webhooks_on_and_events_never_carry_them(
    hooked: Served, settings: Settings, s3: Any, sqs: Any, delivery_url: str, images: dict[str, bytes]
) -> None:
    job_id = upload(hooked, images["jpeg"])
    url = f"{hooked.url}/v1/images/{job_id}"
    assert requests.get(url, headers=bearer("alice"), timeout=10).json()["deliveries"] == []
    # Two attempts of one event, as the deliverer records them.
    record = None
    for at, result, state in (
        ("2026-12-02T07:00:00+00:00", {"status": 503}, PENDING),
        ("2026-12-02T07:00:05+00:00", {"status": 204}, DELIVERED),
    ):
        record = record_attempt(record, job_id, "msg_1", "image.completed", Attempt(at, result, state))
    s3.put_object(Bucket=settings.bucket, Key=delivery_key(job_id), Body=json.dumps(record).encode())
    [delivery] = requests.get(url, headers=bearer("alice"), timeout=10).json()["deliveries"]
    assert delivery == {"id": "msg_1", **record["deliveries"]["msg_1"]}  # type: ignore[index]
    assert delivery["attempts"] == 2 and delivery["state"] == DELIVERED
    schema = document([])["components"]["schemas"]["Delivery"]
    assert set(schema["required"]) <= set(delivery) <= set(schema["properties"])
    # The deletion event's data is the tombstone alone, whatever the record holds.
    assert delete(hooked, job_id).status_code == 204
    [event] = events(sqs, delivery_url)
    assert "deliveries" not in event.data and "deliveries" not in json.loads(payload(event))["data"]


def test_with_webhooks_off_get_has_no_deliveries(service: Served, images: dict[str, bytes]) -> None:
    job_id = requests.post(f"{service.url}/v1/images", files={"file": images["png"]}, timeout=30).json()[
        "job_id"
    ]
    assert "deliveries" not in requests.get(f"{service.url}/v1/images/{job_id}", timeout=10).json()


def test_a_delivery_queue_unreachable_at_start_up_is_found_by_the_first_event(
    moto: MotoServer,
    make_service: ServiceFactory,
    sqs: Any,
    delivery_url: str,
    caplog: pytest.LogCaptureFixture,
    images: dict[str, bytes],
    proxy: FaultProxy,
) -> None:
    proxy.mode = "refuse"
    service = make_service(webhook_url=HOOK, sqs_endpoint_url=f"http://127.0.0.1:{proxy.port}")
    assert "could not reach the webhook delivery queue" in caplog.text, "started all the same"
    refused = requests.post(f"{service.url}/v1/images", files={"file": images["jpeg"]}, timeout=30)
    assert refused.status_code == 503, "no job queue either"
    proxy.mode = "pass"
    answer = requests.post(f"{service.url}/v1/images", files={"file": images["jpeg"]}, timeout=30)
    assert answer.status_code == 202, answer.text
    assert (
        requests.delete(f"{service.url}/v1/images/{answer.json()['job_id']}", timeout=30).status_code == 204
    )
    [event] = events(sqs, delivery_url)
    assert (event.type, event.job_id) == ("image.deleted", answer.json()["job_id"])
