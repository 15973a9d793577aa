"""SigningKeys against a secret file laid out and swapped the way the kubelet
does (tests/support/mounted_secret.py): a new version is read at the next
attempt, an unusable one keeps the last good keys, is reported once per
read and read again only after the backoff (the clock is the test's), and
a fixed secret is never re-read."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from imagepipe.config import Settings, load_settings
from imagepipe.webhooks.signing import parse_secrets
from imagepipe.webhooks.signingkeys import FAILED, LOADED, SigningKeys
from tests.support.mounted_secret import MountedSecret


def secret_of(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


OLD, NEW = secret_of(), secret_of()
Change = Callable[[MountedSecret], None]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def file_settings(mounted: MountedSecret) -> Settings:
    return load_settings({"IMAGEPIPE_WEBHOOK_SECRET_FILE": str(mounted.path("secret"))}, need_backends=False)


def to(content: str | bytes) -> Change:
    return lambda mounted: mounted.update({"secret": content})


def removed(mounted: MountedSecret) -> None:
    mounted.path("secret").unlink()


def broken_then_fixed(mounted: MountedSecret) -> None:
    mounted.update({"secret": "whsec_"})
    mounted.update({"secret": NEW + "\n"})


ROWS: dict[str, tuple[Change | None, str, list[str]]] = {
    # name: (what happens to the file, the secrets then signing, the reloads reported)
    "unchanged: not read again": (None, OLD, []),
    "swapped to the new secret": (to(NEW + "\n"), NEW, [LOADED]),
    "both secrets (mid-rotation)": (to(f"{OLD} {NEW}"), f"{OLD} {NEW}", [LOADED]),
    "an invalid secret: the old one goes on": (to("whsec_!!"), OLD, [FAILED]),
    "empty: the old one goes on": (to(""), OLD, [FAILED]),
    "not UTF-8: the old one goes on": (to(b"\xff\xfe"), OLD, [FAILED]),
    "removed: the old one goes on": (removed, OLD, [FAILED]),
    "broken, then fixed before the next attempt": (broken_then_fixed, NEW, [LOADED]),
}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_the_file_is_followed(tmp_path: Path, row: str) -> None:
    change, signing, reported = ROWS[row]
    mounted = MountedSecret(tmp_path / "webhook", {"secret": OLD + "\n"})
    reloads: list[str] = []
    keys = SigningKeys.from_settings(file_settings(mounted), reloads.append, Clock())
    assert keys.current() == parse_secrets(OLD)
    if change is not None:
        change(mounted)
    # Twice, the clock still: a version is read (and reported) once, however many attempts.
    assert keys.current() == keys.current() == parse_secrets(signing)
    assert reloads == reported


def test_broken_then_fixed_later_reports_both(tmp_path: Path) -> None:
    mounted = MountedSecret(tmp_path / "webhook", {"secret": OLD})
    reloads: list[str] = []
    keys = SigningKeys.from_settings(file_settings(mounted), reloads.append, Clock())
    mounted.update({"secret": "not a secret"})
    assert keys.current() == parse_secrets(OLD)
    mounted.update({"secret": NEW})
    assert keys.current() == parse_secrets(NEW)
    assert reloads == [FAILED, LOADED]


def test_a_failed_version_is_read_again_after_the_backoff(tmp_path: Path) -> None:
    """Unchanged, a broken version is read again only once its delay is over (1 s,
    then 2 s), each read counted; a new version is read at once, whatever the delay."""
    mounted = MountedSecret(tmp_path / "webhook", {"secret": OLD})
    reloads: list[str] = []
    clock = Clock()
    keys = SigningKeys.from_settings(file_settings(mounted), reloads.append, clock)
    mounted.update({"secret": "whsec_"})
    seen = []
    for step in (0.0, 0.5, 0.5, 1.0, 1.0, 0.5):
        clock.now += step
        seen.append((keys.current() == parse_secrets(OLD), len(reloads)))
    # Reads at +0 s, +1 s and +3 s; at +2 s and +2.5 s the delay (2 s) is not over.
    assert seen == [(True, 1), (True, 1), (True, 2), (True, 2), (True, 3), (True, 3)]
    mounted.update({"secret": NEW})
    assert keys.current() == parse_secrets(NEW)
    assert reloads == [FAILED, FAILED, FAILED, LOADED]


def test_a_fixed_secret_is_never_read_again() -> None:
    settings = load_settings({"IMAGEPIPE_WEBHOOK_SECRET": f"{OLD} {NEW}"}, need_backends=False)
    keys = SigningKeys.from_settings(settings, lambda result: pytest.fail("reloaded"))
    assert keys.current() == parse_secrets(f"{OLD} {NEW}") and keys.path is None
