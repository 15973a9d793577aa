"""The keys the deliverer signs with, followed through a rotation without a
restart: from IMAGEPIPE_WEBHOOK_SECRET they are fixed; from
IMAGEPIPE_WEBHOOK_SECRET_FILE (a mounted Secret) the file is stat'ed before
every attempt and read again when it changed.

The kubelet updates a mounted Secret by writing a new directory and swapping
a symlink, so the path is stat'ed through its links and read by path each
time its identity (device, inode, mtime, size) changes: a descriptor kept
open would go on reading the old version. A version that cannot be read or
holds no valid secret is logged and counted once, and the last good keys go
on signing: an event is never sent unsigned, and a broken file never stops
the deliverer."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from imagepipe.config import Settings
from imagepipe.webhooks.signing import parse_secrets, read_secrets

log = logging.getLogger(__name__)
# Device, inode, mtime (ns) and size of the file's current version; () when it was missing.
Identity = tuple[int, ...]
LOADED, FAILED = "loaded", "failed"
RELOAD_RESULTS = (LOADED, FAILED)


def identity_of(path: Path) -> Identity:
    try:
        seen = os.stat(path)
    except OSError:
        return ()
    return (seen.st_dev, seen.st_ino, seen.st_mtime_ns, seen.st_size)


class SigningKeys:
    """`current()`: the keys of the next attempt. `on_reload(result)` is told of
    every reload (LOADED or FAILED), for the metrics."""

    def __init__(
        self,
        keys: tuple[bytes, ...],
        path: Path | None = None,
        on_reload: Callable[[str], None] = lambda result: None,
        seen: Identity = (),
    ) -> None:
        self.keys = keys
        self.path = path
        self.on_reload = on_reload
        self.seen = seen

    @classmethod
    def from_settings(cls, settings: Settings, on_reload: Callable[[str], None]) -> SigningKeys:
        """Raises ValueError when the file is no longer valid (it was checked at start-up)."""
        path = settings.webhook_secret_file
        if path is None:
            return cls(parse_secrets(settings.webhook_secret))
        # Stat'ed before the read: a change in between is read again at the first attempt.
        seen = identity_of(path)
        return cls(read_secrets(path), path, on_reload, seen)

    def current(self) -> tuple[bytes, ...]:
        if self.path is None:
            return self.keys
        seen = identity_of(self.path)
        if seen != self.seen:
            self.seen = seen
            self.reload(self.path)
        return self.keys

    def reload(self, path: Path) -> None:
        try:
            keys = read_secrets(path)
        except ValueError as exc:
            log.error(
                "webhook secret file unusable; signing with the last good secrets",
                extra={"variable": "IMAGEPIPE_WEBHOOK_SECRET_FILE", "path": str(path), "reason": str(exc)},
            )
            self.on_reload(FAILED)
            return
        if keys != self.keys:
            log.info("webhook secrets reloaded", extra={"path": str(path), "secrets": len(keys)})
        self.keys = keys
        self.on_reload(LOADED)
