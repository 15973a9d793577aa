"""A Secret volume laid out and updated the way the kubelet does it (its
AtomicWriter): each version is a fresh `..<timestamp>` directory, `..data`
is a symlink to the current one, swapped by renaming a new symlink over it,
and each key's path is a symlink `KEY -> ..data/KEY`. A reader holding the
path sees the new version only by opening it again."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path

_versions = itertools.count()


class MountedSecret:
    def __init__(self, directory: Path, files: Mapping[str, str | bytes]) -> None:
        self.directory = directory
        self.files = list(files)
        directory.mkdir(parents=True, exist_ok=True)
        self.update(files)

    def path(self, name: str) -> Path:
        return self.directory / name

    def update(self, files: Mapping[str, str | bytes], mode: int | None = None) -> None:
        """A new version of every file (of `mode`, if given), swapped in at once; the old
        version is removed."""
        version = self.directory / f"..2026_12_02_14_00_00.{os.getpid()}{next(_versions)}"
        version.mkdir()
        for name, content in files.items():
            (version / name).write_bytes(content.encode() if isinstance(content, str) else content)
            if mode is not None:
                (version / name).chmod(mode)
        data = self.directory / "..data"
        old = data.resolve() if data.is_symlink() else None
        swap = self.directory / "..data_tmp"
        swap.symlink_to(version.name)
        os.rename(swap, data)
        for name in files:
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        if old is not None:
            for child in old.iterdir():
                child.unlink()
            old.rmdir()
