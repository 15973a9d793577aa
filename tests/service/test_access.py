"""Authentication, ownership, CORS and idempotency."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from imagepipe.config import Settings
from imagepipe.jobstore.keys import status_key
from tests.service.conftest import KEYS, Served, ServiceFactory, receive_all


def bearer(key_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[key_id]}"}


@pytest.fixture
def authed(make_service: ServiceFactory) -> Served:
    return make_service(api_keys=tuple(KEYS.items()))


def test_auth_required_when_keys_are_set(authed: Served, images: dict[str, bytes]) -> None:
    url = f"{authed.url}/v1/images"
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": "Basic abc"}):
        r = requests.post(url, files={"file": images["jpeg"]}, headers=headers, timeout=30)
        assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    for path in ("/v1/images/3b241101-e2bb-4255-8caf-4136c566a962", "/images/status/x"):
        assert requests.get(f"{authed.url}{path}", timeout=10).status_code == 401
    # Health, readiness, metrics and the API document stay open.
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert requests.get(f"{authed.url}{path}", timeout=10).status_code == 200


def test_jobs_are_visible_only_to_their_key(
    authed: Served, settings: Settings, s3: Any, images: dict[str, bytes]
) -> None:
    r = requests.post(
        f"{authed.url}/v1/images", files={"file": images["png"]}, headers=bearer("alice"), timeout=30
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    doc = json.loads(s3.get_object(Bucket=settings.bucket, Key=status_key(job_id))["Body"].read())
    assert doc["owner"] == "alice"
    assert KEYS["alice"] not in json.dumps(doc)

    assert (
        requests.get(f"{authed.url}/v1/images/{job_id}", headers=bearer("alice"), timeout=10).status_code
        == 200
    )
    for path in (f"/v1/images/{job_id}", f"/images/status/{job_id}"):
        r = requests.get(f"{authed.url}{path}", headers=bearer("bob"), timeout=10)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = requests.delete(f"{authed.url}/v1/images/{job_id}", headers=bearer("bob"), timeout=10)
    assert r.status_code == 404
    assert (
        requests.get(f"{authed.url}/v1/images/{job_id}", headers=bearer("alice"), timeout=10).status_code
        == 200
    )
    r = requests.delete(f"{authed.url}/v1/images/{job_id}", headers=bearer("alice"), timeout=10)
    assert r.status_code == 204


def test_auth_off_everyone_sees_everything(service: Served, images: dict[str, bytes]) -> None:
    job_id = requests.post(f"{service.url}/v1/images", files={"file": images["png"]}, timeout=30).json()[
        "job_id"
    ]
    r = requests.get(
        f"{service.url}/v1/images/{job_id}", headers={"Authorization": "Bearer anything"}, timeout=10
    )
    assert r.status_code == 200 and r.json()["owner"] is None


# --- CORS ---------------------------------------------------------------------


def preflight(url: str, origin: str, method: str = "POST") -> requests.Response:
    return requests.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, idempotency-key",
        },
        timeout=10,
    )


def test_cors_allowed_origin(make_service: Any, images: dict[str, bytes]) -> None:
    service = make_service(cors_origins=("https://app.example.com",))
    r = preflight(f"{service.url}/v1/images", "https://app.example.com")
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "Idempotency-Key" in r.headers["Access-Control-Allow-Headers"]
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    r = preflight(f"{service.url}/v1/images/3b241101-e2bb-4255-8caf-4136c566a962", "https://app.example.com")
    assert set(r.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "DELETE"}

    r = requests.post(
        f"{service.url}/v1/images",
        files={"file": images["jpeg"]},
        headers={"Origin": "https://app.example.com"},
        timeout=30,
    )
    assert r.status_code == 202
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Location" in r.headers["Access-Control-Expose-Headers"]
    # Errors carry the CORS headers too, so browsers can read them.
    r = requests.post(
        f"{service.url}/v1/images",
        files={"file": b"nope"},
        headers={"Origin": "https://app.example.com"},
        timeout=30,
    )
    assert r.status_code == 415 and r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_a_page_on_another_origin_can_read_what_it_needs(make_service: Any, images: dict[str, bytes]) -> None:
    # A 401's scheme, and absolute status URLs: a plain fetch(status_url) from
    # another origin must reach the API, not the page's own origin.
    authed = make_service(cors_origins=("https://app.example.com",), api_keys=(("web", "k" * 32),))
    page = {"Origin": "https://app.example.com"}
    r = requests.get(f"{authed.url}/v1/images/3b241101-e2bb-4255-8caf-4136c566a962", headers=page, timeout=10)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert "WWW-Authenticate" in r.headers["Access-Control-Expose-Headers"].split(", ")

    behind_proxy = make_service(api_url="https://api.example.com")
    r = requests.post(
        f"{behind_proxy.url}/v1/images",
        files={"file": images["jpeg"]},
        headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
        timeout=30,
    )
    job_id = r.json()["job_id"]
    assert r.json()["status_url"] == r.headers["Location"] == f"https://api.example.com/v1/images/{job_id}"
    plain = make_service()
    r = requests.post(
        f"{plain.url}/v1/images",
        files={"file": images["jpeg"]},
        headers={"X-Forwarded-Host": "evil.example"},
        timeout=30,
    )
    assert r.json()["status_url"] == f"{plain.url}/v1/images/{r.json()['job_id']}", (
        "X-Forwarded-* not trusted"
    )


def test_cors_other_origin_and_default_none(make_service: Any, service: Served) -> None:
    configured = make_service(cors_origins=("https://app.example.com",))
    for target in (configured, service):
        r = preflight(f"{target.url}/v1/images", "https://evil.example.net")
        assert r.status_code == 204
        assert "Access-Control-Allow-Origin" not in r.headers
        r = requests.get(f"{target.url}/healthz", headers={"Origin": "https://evil.example.net"}, timeout=10)
        assert "Access-Control-Allow-Origin" not in r.headers
    r = preflight(f"{configured.url}/nowhere", "https://app.example.com")
    assert r.status_code == 404


# --- idempotency ----------------------------------------------------------------


def test_idempotent_repeat_returns_the_first_job(
    service: Served, settings: Settings, s3: Any, sqs: Any, images: dict[str, bytes]
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = requests.post(
        f"{service.url}/v1/images", files={"file": images["jpeg"]}, headers=headers, timeout=30
    )
    again = requests.post(
        f"{service.url}/v1/images", files={"file": images["jpeg"]}, headers=headers, timeout=30
    )
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(receive_all(sqs, settings.queue_url)) == 1

    # Stored under a hash only: neither the key nor the owner appears in the name.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=settings.bucket, Prefix="idempotency/")["Contents"]]
    assert len(keys) == 1 and "order-42" not in keys[0]

    conflict = requests.post(
        f"{service.url}/v1/images", files={"file": images["png"]}, headers=headers, timeout=30
    )
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "idempotency_conflict")
    other_pipeline = requests.post(
        f"{service.url}/v1/images?pipeline=default",
        files={"file": images["jpeg"]},
        headers=headers,
        timeout=30,
    )
    assert other_pipeline.status_code == 200

    fresh = requests.post(
        f"{service.url}/v1/images",
        files={"file": images["jpeg"]},
        headers={"Idempotency-Key": "2"},
        timeout=30,
    )
    assert fresh.status_code == 202 and fresh.json()["job_id"] != first.json()["job_id"]


def test_idempotency_keys_are_per_api_key(authed: Served, images: dict[str, bytes]) -> None:
    url = f"{authed.url}/v1/images"
    a = requests.post(
        url, files={"file": images["jpeg"]}, headers={**bearer("alice"), "Idempotency-Key": "k"}, timeout=30
    )
    b = requests.post(
        url, files={"file": images["png"]}, headers={**bearer("bob"), "Idempotency-Key": "k"}, timeout=30
    )
    assert a.status_code == 202 and b.status_code == 202
    assert a.json()["job_id"] != b.json()["job_id"]


def test_idempotency_after_delete_creates_a_new_job(service: Served, images: dict[str, bytes]) -> None:
    headers = {"Idempotency-Key": "again"}
    first = requests.post(
        f"{service.url}/v1/images", files={"file": images["webp"]}, headers=headers, timeout=30
    )
    assert requests.delete(f"{service.url}/v1/images/{first.json()['job_id']}", timeout=10).status_code == 204
    second = requests.post(
        f"{service.url}/v1/images", files={"file": images["webp"]}, headers=headers, timeout=30
    )
    assert second.status_code == 202 and second.json()["job_id"] != first.json()["job_id"]
    third = requests.post(
        f"{service.url}/v1/images", files={"file": images["webp"]}, headers=headers, timeout=30
    )
    assert third.status_code == 200 and third.json()["job_id"] == second.json()["job_id"]
