"""Uploads of each accepted format, what a 202 leaves behind, and the read,
delete, compatibility, health, metrics and OpenAPI routes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from imagepipe import lifecycle
from imagepipe.config import Settings
from imagepipe.jobs import is_job_id, parse_message
from imagepipe.jobstore.keys import original_key, status_key
from tests.service.conftest import Served, receive_all

CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def get_json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return doc


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp"])
@pytest.mark.parametrize("framing", ["multipart", "raw"])
def test_upload_stores_original_status_and_message(
    service: Served, settings: Settings, s3: Any, sqs: Any, images: dict[str, bytes], fmt: str, framing: str
) -> None:
    data = images[fmt]
    if framing == "multipart":
        # The client's file name and type are ignored: the bytes decide.
        r = requests.post(
            f"{service.url}/v1/images",
            files={"file": ("x.bin", data, "application/octet-stream")},
            timeout=30,
        )
    else:
        r = requests.post(
            f"{service.url}/v1/images", data=data, headers={"Content-Type": CONTENT_TYPES[fmt]}, timeout=30
        )
    assert r.status_code == 202, r.text
    body = r.json()
    job_id = body["job_id"]
    assert is_job_id(job_id)
    assert body == {"job_id": job_id, "status": "queued", "status_url": f"{service.url}/v1/images/{job_id}"}
    assert r.headers["Location"] == f"{service.url}/v1/images/{job_id}"

    original = s3.get_object(Bucket=settings.bucket, Key=original_key(job_id))
    assert original["Body"].read() == data
    assert original["ContentType"] == CONTENT_TYPES[fmt]

    doc = get_json(s3, settings.bucket, status_key(job_id))
    assert doc["status"] == "queued" and doc["pipeline"] == "default" and doc["owner"] is None
    assert doc["source"]["format"] == fmt and doc["source"]["bytes"] == len(data)

    messages = receive_all(sqs, settings.queue_url)
    assert len(messages) == 1
    message = parse_message(messages[0]["Body"])
    assert message.job_id == job_id and message.spec == doc["spec"]
    attributes = messages[0]["MessageAttributes"]
    assert len(attributes["trace_id"]["StringValue"]) == 32
    assert attributes["enqueued_at"]["StringValue"] == message.enqueued_at


def test_trace_id_comes_from_traceparent(
    service: Served, settings: Settings, sqs: Any, images: dict[str, bytes]
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = requests.post(
        f"{service.url}/v1/images",
        data=images["jpeg"],
        headers={"Content-Type": "image/jpeg", "traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
        timeout=30,
    )
    assert r.status_code == 202
    (message,) = receive_all(sqs, settings.queue_url)
    assert message["MessageAttributes"]["trace_id"]["StringValue"] == trace


def test_pipeline_by_query_and_form_field(
    make_service: Any, settings: Settings, tmp_path: Any, s3: Any, images: dict[str, bytes]
) -> None:
    pipelines = tmp_path / "pipelines.yaml"
    pipelines.write_text(
        "default:\n  - {name: thumbnail, width: 150, height: 150, method: cover}\n"
        "avatars:\n  - {name: small, width: 64, height: 64, method: cover}\n"
    )
    service = make_service(pipelines_file=pipelines)
    r = requests.post(
        f"{service.url}/v1/images?pipeline=avatars",
        data=images["png"],
        headers={"Content-Type": "image/png"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    assert get_json(s3, settings.bucket, status_key(r.json()["job_id"]))["pipeline"] == "avatars"
    r = requests.post(
        f"{service.url}/v1/images",
        files={"file": ("a.png", images["png"]), "pipeline": (None, b"avatars")},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    assert get_json(s3, settings.bucket, status_key(r.json()["job_id"]))["pipeline"] == "avatars"


def test_get_status_rebases_variant_urls(
    service: Served, settings: Settings, s3: Any, images: dict[str, bytes]
) -> None:
    job_id = requests.post(f"{service.url}/v1/images", files={"file": images["jpeg"]}, timeout=30).json()[
        "job_id"
    ]
    r = requests.get(f"{service.url}/v1/images/{job_id}", timeout=10)
    assert r.status_code == 200
    assert r.json()["status"] == "queued" and r.json()["job_id"] == job_id

    # What a consumer writes on completion, with its own idea of the base URL.
    doc = get_json(s3, settings.bucket, status_key(job_id))
    key = f"variants/{job_id}/{doc['spec']}/thumbnail.webp"
    doc.update(
        status="completed",
        variants={"thumbnail": {"url": f"http://elsewhere/{key}", "width": 150, "height": 150}},
    )
    s3.put_object(Bucket=settings.bucket, Key=status_key(job_id), Body=json.dumps(doc).encode())
    body = requests.get(f"{service.url}/v1/images/{job_id}", timeout=10).json()
    assert body["variants"]["thumbnail"]["url"] == f"https://cdn.example.test/{key}"
    assert body["srcset"] == {}  # no fit variant

    large = {"url": f"http://elsewhere/{key.replace('thumbnail', 'large')}", "width": 1920, "height": 1080}
    doc["variants"]["large"] = {**large, "method": "fit", "format": "webp"}
    s3.put_object(Bucket=settings.bucket, Key=status_key(job_id), Body=json.dumps(doc).encode())
    body = requests.get(f"{service.url}/v1/images/{job_id}", timeout=10).json()
    assert body["srcset"] == {"webp": f"https://cdn.example.test/{key.replace('thumbnail', 'large')} 1920w"}

    compat = requests.get(f"{service.url}/images/status/{job_id}", timeout=10).json()
    assert compat == {
        "job_id": job_id,
        "status": "completed",
        "results": {
            "thumbnail": {"url": f"https://cdn.example.test/{key}", "width": 150, "height": 150},
            "large": {
                "url": f"https://cdn.example.test/{key.replace('thumbnail', 'large')}",
                "width": 1920,
                "height": 1080,
            },
        },
        "error": None,
    }


def test_unknown_and_malformed_job_ids(service: Served) -> None:
    for path in ("/v1/images/", "/images/status/"):
        r = requests.get(f"{service.url}{path}3b241101-e2bb-4255-8caf-4136c566a962", timeout=10)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
        r = requests.get(f"{service.url}{path}..%2F..%2Fetc", timeout=10)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")
    r = requests.delete(f"{service.url}/v1/images/not-a-uuid", timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")


def test_delete_leaves_only_a_tombstone(
    service: Served, settings: Settings, s3: Any, images: dict[str, bytes]
) -> None:
    job_id = requests.post(f"{service.url}/v1/images", files={"file": images["webp"]}, timeout=30).json()[
        "job_id"
    ]
    for name in ("thumbnail", "medium"):
        s3.put_object(Bucket=settings.bucket, Key=f"variants/{job_id}/abc/{name}.webp", Body=b"x")
    s3.put_object(Bucket=settings.bucket, Key="variants/other-job/abc/thumbnail.webp", Body=b"x")

    r = requests.delete(f"{service.url}/v1/images/{job_id}", timeout=10)
    assert r.status_code == 204 and r.content == b""
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=settings.bucket).get("Contents", [])]
    assert keys == [status_key(job_id), "variants/other-job/abc/thumbnail.webp"]
    # The status document itself is the tombstone: owner and time, nothing else; it expires by lifecycle.
    tombstone = json.loads(s3.get_object(Bucket=settings.bucket, Key=status_key(job_id))["Body"].read())
    assert set(tombstone) == {"job_id", "status", "owner", "deleted_at"} and tombstone["status"] == "deleted"
    tagging = s3.get_object_tagging(Bucket=settings.bucket, Key=status_key(job_id))["TagSet"]
    assert tagging == [{"Key": lifecycle.TAG_KEY, "Value": lifecycle.TOMBSTONE}]
    assert requests.get(f"{service.url}/v1/images/{job_id}", timeout=10).status_code == 404
    assert requests.delete(f"{service.url}/v1/images/{job_id}", timeout=10).status_code == 404


def test_compat_upload_shape(service: Served, images: dict[str, bytes]) -> None:
    r = requests.post(f"{service.url}/images/upload", files={"file": ("a.jpg", images["jpeg"])}, timeout=30)
    assert r.status_code == 200, r.text
    job_id = r.json()["job_id"]
    assert r.json() == {"job_id": job_id, "status": "processing", "status_url": f"/images/status/{job_id}"}
    status = requests.get(f"{service.url}/images/status/{job_id}", timeout=10).json()
    assert status == {"job_id": job_id, "status": "processing", "results": {}, "error": None}


def test_health_ready_metrics_openapi(service: Served, images: dict[str, bytes]) -> None:
    assert requests.get(f"{service.url}/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{service.url}/readyz", timeout=10).json() == {"status": "ready"}
    requests.post(f"{service.url}/v1/images", files={"file": images["jpeg"]}, timeout=30)
    requests.post(f"{service.url}/v1/images", files={"file": b"GIF89a..."}, timeout=30)
    text = requests.get(f"{service.url}/metrics", timeout=10).text
    assert 'imagepipe_http_requests_total{method="POST",route="/v1/images",status="202"} 1.0' in text
    assert 'imagepipe_http_requests_total{method="POST",route="/v1/images",status="415"} 1.0' in text
    assert 'imagepipe_uploads_rejected_total{code="unsupported_format"} 1.0' in text
    # Series that saw nothing yet exist at zero, so rate() sees their first event.
    assert 'imagepipe_uploads_rejected_total{code="too_many_pixels"} 0.0' in text
    assert 'imagepipe_http_requests_total{method="POST",route="/v1/images",status="503"} 0.0' in text
    assert "imagepipe_upload_bytes_count 1.0" in text
    assert 'imagepipe_http_request_duration_seconds_count{route="/v1/images"} 2.0' in text
    document = requests.get(f"{service.url}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    assert {"/v1/images", "/v1/images/{job_id}", "/images/upload", "/healthz"} <= set(document["paths"])


def test_unknown_route_and_method_are_json(service: Served) -> None:
    r = requests.get(f"{service.url}/nope", timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = requests.put(f"{service.url}/v1/images", timeout=10)
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]
    text = requests.get(f"{service.url}/metrics", timeout=10).text
    assert 'route="unmatched"' in text
