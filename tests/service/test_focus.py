"""A focal point at upload: form field or query parameter, checked, stored,
carried in the message and compared by idempotency."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from imagepipe.config import Settings
from imagepipe.geometry import Focus
from imagepipe.jobs import parse_message
from imagepipe.jobstore.keys import status_key
from tests.service.conftest import Served, receive_all


def form(image: bytes, focus: str) -> dict[str, Any]:
    return {"file": image, "focus": (None, focus.encode())}


def status(s3: Any, settings: Settings, job_id: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        s3.get_object(Bucket=settings.bucket, Key=status_key(job_id))["Body"].read()
    )
    return doc


def test_focus_by_form_field_and_by_query(
    service: Served, settings: Settings, s3: Any, sqs: Any, images: dict[str, bytes]
) -> None:
    by_form = requests.post(f"{service.url}/v1/images", files=form(images["jpeg"], "0.25,0.75"), timeout=30)
    by_query = requests.post(
        f"{service.url}/v1/images?focus=1,0",
        data=images["png"],
        headers={"Content-Type": "image/png"},
        timeout=30,
    )
    plain = requests.post(f"{service.url}/v1/images", files={"file": images["webp"]}, timeout=30)
    assert by_form.status_code == by_query.status_code == plain.status_code == 202
    assert status(s3, settings, by_form.json()["job_id"])["focus"] == {"x": 0.25, "y": 0.75}
    assert status(s3, settings, by_query.json()["job_id"])["focus"] == {"x": 1.0, "y": 0.0}
    assert status(s3, settings, plain.json()["job_id"])["focus"] is None
    messages = {m.job_id: m for m in (parse_message(r["Body"]) for r in receive_all(sqs, settings.queue_url))}
    assert messages[by_form.json()["job_id"]].job_focus() == Focus(0.25, 0.75)


@pytest.mark.parametrize("value", ["0.5", "2,0.5", "x,y", "nan,0.5"])
@pytest.mark.parametrize("where", ["form", "query"])
def test_a_bad_focus_is_400_naming_the_field(
    service: Served, sqs: Any, settings: Settings, images: dict[str, bytes], value: str, where: str
) -> None:
    if where == "form":
        r = requests.post(
            f"{service.url}/v1/images",
            files=form(images["jpeg"], value),
            timeout=30,
        )
    else:
        r = requests.post(
            f"{service.url}/v1/images", params={"focus": value}, files={"file": images["jpeg"]}, timeout=30
        )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_request" and error["message"].startswith("focus: ")
    assert receive_all(sqs, settings.queue_url) == []


def test_idempotency_compares_the_focus(service: Served, images: dict[str, bytes]) -> None:
    headers = {"Idempotency-Key": "focus-1"}

    def send(focus: str) -> requests.Response:
        return requests.post(
            f"{service.url}/v1/images", files=form(images["jpeg"], focus), headers=headers, timeout=30
        )

    first, again, other = send("0.1,0.2"), send("0.1,0.2"), send("0.9,0.2")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["job_id"] == first.json()["job_id"]
    assert (other.status_code, other.json()["error"]["code"]) == (409, "idempotency_conflict")
