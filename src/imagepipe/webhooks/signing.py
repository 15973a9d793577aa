"""Signatures the Standard Webhooks way, so that receivers verify with that
convention's published libraries: `webhook-id`, `webhook-timestamp` (Unix
seconds of the attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, with a secret written `whsec_<base64 key>`.

Several secrets, separated by whitespace (the convention's own separator in
`webhook-signature`), sign every attempt once each, giving
`v1,<sigA> v1,<sigB>`: during a rotation a receiver holding either secret
verifies (the convention's verifiers accept any one matching signature).

Written here rather than taken from the `standardwebhooks` package: signing
is one HMAC, and the tests verify with that package, an implementation
independent of ours."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path

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


def parse_secrets(text: str) -> tuple[bytes, ...]:
    """The keys of one or more whitespace-separated `whsec_` secrets, in order;
    ValueError naming which one is wrong (never a secret)."""
    secrets = text.split()
    if not secrets:
        raise ValueError(f"must hold at least one {PREFIX}... secret")
    keys: list[bytes] = []
    for position, secret in enumerate(secrets, start=1):
        try:
            key = parse_secret(secret)
        except ValueError as exc:
            raise ValueError(f"secret {position} of {len(secrets)}: {exc}") from None
        if key in keys:
            raise ValueError(f"secret {position} of {len(secrets)} repeats secret {keys.index(key) + 1}")
        keys.append(key)
    return tuple(keys)


def read_secrets(path: Path) -> tuple[bytes, ...]:
    """The keys in a secret file (a mounted Secret's key); ValueError naming what is wrong."""
    try:
        text = path.read_bytes().decode()
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise ValueError("is not UTF-8 text") from None
    return parse_secrets(text)


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt, signed with each key (at least one)."""
    if not keys:
        raise ValueError("no key to sign with")
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(key, message_id, timestamp, body) for key in keys),
        "content-type": "application/json",
    }
