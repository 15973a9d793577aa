"""Our signatures verify with the `standardwebhooks` package (an
implementation independent of ours), for secrets at both key-size bounds,
and a changed byte, id or timestamp fails its verification. Several secrets
(a rotation) sign each attempt once each: a receiver holding the old secret
and one holding the new both accept the same request."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from imagepipe.webhooks.signing import (
    MAX_KEY_BYTES,
    MIN_KEY_BYTES,
    parse_secret,
    parse_secrets,
    signed_headers,
)

Headers = dict[str, str]
BODY = b'{"data":{"job_id":"j"},"timestamp":"2026-12-02T07:00:00.000Z","type":"image.completed"}'


def secret_of(size: int) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


@pytest.mark.parametrize("size", [MIN_KEY_BYTES, 32, MAX_KEY_BYTES])
def test_signed_headers_verify_with_standardwebhooks(size: int) -> None:
    secret = secret_of(size)
    headers = signed_headers([parse_secret(secret)], "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers)["type"] == "image.completed"
    assert headers["content-type"] == "application/json"


def test_the_package_reads_our_secret_as_we_do_and_signs_alike() -> None:
    secret = secret_of(32)
    webhook, key = Webhook(secret), parse_secret(secret)
    moment = int(time.time())
    theirs = webhook.sign("msg_1", datetime.fromtimestamp(moment, UTC), BODY.decode())
    assert signed_headers([key], "msg_1", moment, BODY)["webhook-signature"] == theirs


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
    headers, body = tamper(signed_headers([parse_secret(secret)], "msg_1", int(time.time()), BODY), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_another_secret_fails_verification() -> None:
    headers = signed_headers([parse_secret(secret_of(32))], "msg_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_of(32)).verify(BODY, headers)


OLD, NEW = secret_of(32), secret_of(24)


def test_a_receiver_on_the_old_and_one_on_the_new_secret_accept_the_same_request() -> None:
    headers = signed_headers(parse_secrets(f"{OLD} {NEW}"), "msg_1", int(time.time()), BODY)
    old, new = headers["webhook-signature"].split(" ")
    assert old.startswith("v1,") and new.startswith("v1,") and old != new
    for secret in (OLD, NEW):
        assert Webhook(secret).verify(BODY, headers)["type"] == "image.completed"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_of(32)).verify(BODY, headers)


SECRETS = {
    # name: (the variable's value, the keys or the error's text)
    "one": (OLD, [OLD]),
    "two, space-separated": (f"{OLD} {NEW}", [OLD, NEW]),
    "any whitespace, a file's newline": (f"  {NEW}\n\t{OLD}\n", [NEW, OLD]),
    "empty": ("", "must hold at least one whsec_... secret"),
    "blank": (" \n ", "must hold at least one whsec_... secret"),
    "second without prefix": (
        f"{OLD} {NEW[6:]}",
        "secret 2 of 2: must start with 'whsec_' (a Standard Webhooks secret)",
    ),
    "first not base64": (f"whsec_!!!! {NEW}", "secret 1 of 2: must be whsec_ followed by base64"),
    "second too short": (
        f"{OLD} whsec_" + base64.b64encode(b"k" * 23).decode(),
        "secret 2 of 2: must encode 24 to 64 bytes, not 23",
    ),
    "comma-separated (not the separator)": (
        f"{OLD},{NEW}",
        "secret 1 of 1: must be whsec_ followed by base64",
    ),
    "the same twice": (f"{OLD} {NEW} {OLD}", "secret 3 of 3 repeats secret 1"),
}


@pytest.mark.parametrize("case", sorted(SECRETS))
def test_parse_secrets(case: str) -> None:
    text, expected = SECRETS[case]
    if isinstance(expected, str):
        with pytest.raises(ValueError) as caught:
            parse_secrets(text)
        assert str(caught.value) == expected
        assert OLD[6:] not in str(caught.value) and NEW[6:] not in str(caught.value)
    else:
        assert parse_secrets(text) == tuple(parse_secret(s) for s in expected)


def test_nothing_is_sent_unsigned() -> None:
    with pytest.raises(ValueError):
        signed_headers([], "msg_1", int(time.time()), BODY)
