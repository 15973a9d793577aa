"""Our signatures verify with the `standardwebhooks` package (an
implementation independent of ours), for secrets at both key-size bounds,
and a changed byte, id or timestamp fails its verification."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from imagepipe.webhooks.signing import MAX_KEY_BYTES, MIN_KEY_BYTES, parse_secret, signed_headers

Headers = dict[str, str]
BODY = b'{"data":{"job_id":"j"},"timestamp":"2026-12-02T07:00:00.000Z","type":"image.completed"}'


def secret_of(size: int) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


@pytest.mark.parametrize("size", [MIN_KEY_BYTES, 32, MAX_KEY_BYTES])
def test_signed_headers_verify_with_standardwebhooks(size: int) -> None:
    secret = secret_of(size)
    headers = signed_headers(parse_secret(secret), "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["type"] == "image.completed"
    assert headers["content-type"] == "application/json"


def test_the_package_reads_our_secret_as_we_do_and_signs_alike() -> None:
    secret = secret_of(32)
    webhook, key = Webhook(secret), parse_secret(secret)
    moment = int(time.time())
    theirs = webhook.sign("msg_1", datetime.fromtimestamp(moment, UTC), BODY.decode())
    assert signed_headers(key, "msg_1", moment, BODY)["webhook-signature"] == theirs


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace(b"completed", b"failed")),
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(int(h["webhook-timestamp"]) + 1)}, b),
    ],
    ids=["body", "id", "timestamp"],
)
def test_a_changed_body_id_or_timestamp_fails_verification(
    tamper: Callable[[Headers, bytes], tuple[Headers, bytes]],
) -> None:
    secret = secret_of(32)
    headers, body = tamper(signed_headers(parse_secret(secret), "msg_1", int(time.time()), BODY), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_another_secret_fails_verification() -> None:
    headers = signed_headers(parse_secret(secret_of(32)), "msg_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_of(32)).verify(BODY, headers)
