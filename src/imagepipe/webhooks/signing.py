"""Signatures the Standard Webhooks way, so that receivers verify with that
convention's published libraries: `webhook-id`, `webhook-timestamp` (Unix
seconds of the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, with a secret written `whsec_<base64 key>`.

Written here rather than taken from the `standardwebhooks` package: signing
is one HMAC, and the tests verify with that package, an implementation
independent of ours."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"
# The convention's bounds on the key (its libraries generate 24 to 64 bytes).
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64


def parse_secret(text: str) -> bytes:
    """The HMAC key of `whsec_<base64>`; ValueError naming what is wrong (never the secret)."""
    if not text.startswith(PREFIX):
        raise ValueError(f"must start with {PREFIX!r} (a Standard Webhooks secret)")
    try:
        key = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"must be {PREFIX} followed by base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"must encode {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, message_id, timestamp, body),
        "content-type": "application/json",
    }
