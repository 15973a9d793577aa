"""The repository's own files and the design document's sections, for the
tests that keep the documentation true."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DESIGN = REPO / "docs" / "design.md"


def repo_files() -> list[str]:
    """Tracked files plus new ones not ignored (so a check sees a file before its commit)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return sorted({name for name in listed if (REPO / name).is_file()})


def text_of(name: str) -> str | None:
    try:
        return (REPO / name).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def section(markdown: str, heading: str) -> str:
    """The text under `heading` (any level) up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", markdown, re.MULTILINE)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = markdown[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def first_cells(markdown: str) -> list[str]:
    """The first cell of every table row (header and rule rows included)."""
    return [line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("|")]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown text."""
    found = set()
    for heading in re.findall(r"^#+ (.+?)\s*$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found
