"""The keys the deliverer signs with, followed through a rotation without a
restart: from IMAGEPIPE_WEBHOOK_SECRET they are fixed; from
IMAGEPIPE_WEBHOOK_SECRET_FILE (a mounted Secret) the file is stat'ed before
every attempt and every receive, and read again when reloadpolicy says so.

The kubelet updates a mounted Secret by writing a new directory and swapping
a symlink, so the path is stat'ed through its links and read by path each
time: a descriptor kept open would go on reading the old version. A read
that fails (unreadable, or no valid secret) is logged and counted, the last
good keys go on signing, and the same version is read again after a backoff
until it loads or is replaced: an event is never sent unsigned, and a broken
file never stops the deliverer."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from imagepipe.config import Settings
from imagepipe.webhooks.reloadpolicy import Identity, ReloadState, after_read, read_due
from imagepipe.webhooks.signing import parse_secrets, read_secrets

log = logging.getLogger(__name__)
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
    every read (LOADED or FAILED), for the metrics; `clock` times the retries."""

    def __init__(
        self,
        keys: tuple[bytes, ...],
        path: Path | None = None,
        on_reload: Callable[[str], None] = lambda result: None,
        seen: Identity = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self.path = path
        self.on_reload = on_reload
        self.state = ReloadState(seen)
        self.clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, on_reload: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ) -> SigningKeys:
        """Raises ValueError when the file is no longer valid (it was checked at start-up)."""
        path = settings.webhook_secret_file
        if path is None:
            return cls(parse_secrets(settings.webhook_secret))
        # Stat'ed before the read: a change in between is read again at the first attempt.
        seen = identity_of(path)
        return cls(read_secrets(path), path, on_reload, seen, clock)

    def current(self) -> tuple[bytes, ...]:
        if self.path is None:
            return self.keys
        seen, now = identity_of(self.path), self.clock()
        if read_due(self.state, seen, now):
            self.state = after_read(self.state, seen, self.reload(self.path), now)
        return self.keys

    def reload(self, path: Path) -> bool:
        """Whether the file loaded; if not, the keys stay the last good ones."""
        try:
            keys = read_secrets(path)
        except ValueError as exc:
            log.error(
                "webhook secret file unusable; signing with the last good secrets",
                extra={"variable": "IMAGEPIPE_WEBHOOK_SECRET_FILE", "path": str(path), "reason": str(exc)},
            )
            self.on_reload(FAILED)
            return False
        if keys != self.keys:
            log.info("webhook secrets reloaded", extra={"path": str(path), "secrets": len(keys)})
        self.keys = keys
        self.on_reload(LOADED)
        return True
