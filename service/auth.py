"""Bearer API keys: `IMAGEPIPE_API_KEYS` lists (id, key) pairs. The id, never
the key, becomes a job's `owner`; an id may hold several keys at once, so a
key is rotated without a moment with no valid key and without hiding the
id's jobs. Without keys, authentication is off."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from aiohttp import web

from imagepipe.service.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="imagepipe"'}


class Authenticator:
    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        # Compare digests of equal length, so neither a key's length nor its
        # content leaks through timing; every key is compared every time.
        self._keys = [(key_id, hashlib.sha256(key.encode()).digest()) for key_id, key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def owner(self, request: web.Request) -> str | None:
        """The caller's key id (None when authentication is off); 401 otherwise."""
        if not self._keys:
            return None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <api key>", CHALLENGE)
        digest = hashlib.sha256(token.strip().encode()).digest()
        found = None
        for key_id, expected in self._keys:
            if hmac.compare_digest(digest, expected):
                found = key_id
        if found is None:
            raise ApiError(401, "unauthorized", "the API key is not valid", CHALLENGE)
        return found

    @staticmethod
    def may_see(owner: str | None, doc_owner: object) -> bool:
        """A job is visible only to the key that created it (anyone when auth is off)."""
        return owner is None or doc_owner == owner
