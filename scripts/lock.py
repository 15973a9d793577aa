#!/usr/bin/env python3
"""Write constraints.txt: every distribution imagepipe needs, pinned to what this venv has.

    # after editing pyproject.toml's dependencies:
    .venv/bin/pip install -e ".[dev,test]" --config-settings editable_mode=strict
    .venv/bin/python scripts/lock.py            # rewrite constraints.txt from .venv
    .venv/bin/python scripts/lock.py --check    # exit 1 if constraints.txt is not what .venv has

The pins are the requirement closure of imagepipe with all its extras, plus
the build requirements (setuptools, wheel) and pip, at the versions installed
in the interpreter running this script: the venv the tests passed in. Markers
are evaluated for this interpreter (CPython 3.11 on Linux, what CI and the
image run). scripts/bootstrap, .ci/run (through it) and the Dockerfile install
with `-c constraints.txt`. pillow-simd is left out: scripts/build-pillow-simd
pins it and builds it from source.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "constraints.txt"
# Pinned elsewhere (scripts/build-pillow-simd) or ours.
UNPINNED = {"imagepipe", "pillow-simd"}
HEADER = """\
# Every distribution imagepipe needs (all extras, the build requirements, pip),
# pinned: the versions the test suite passed with. Generated; do not edit.
# After changing pyproject.toml's dependencies, regenerate from the venv:
#   .venv/bin/pip install -e ".[dev,test]" --config-settings editable_mode=strict
#   .venv/bin/python scripts/lock.py
# pillow-simd is pinned in scripts/build-pillow-simd, which builds it from source.
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def roots() -> list[Requirement]:
    """What pyproject.toml asks for: dependencies, every extra, the build requirements, and pip."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = [
        *project["project"]["dependencies"],
        *(r for extra in project["project"].get("optional-dependencies", {}).values() for r in extra),
        *project["build-system"]["requires"],
        "pip",
    ]
    return [Requirement(text) for text in texts]


def closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of every installed distribution these requirements pull in."""
    seen: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [(req, set(req.extras)) for req in requirements]
    while todo:
        req, extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            continue
        key = (canonical(req.name), frozenset(req.extras))
        if key in visited:
            continue
        visited.add(key)
        seen.add(key[0])
        todo.extend((Requirement(text), set(req.extras)) for text in metadata.requires(req.name) or [])
    return seen


def render() -> str:
    names = sorted(closure(roots()) - UNPINNED)
    return HEADER + "".join(f"{name}=={metadata.version(name)}\n" for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if constraints.txt is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is not what this venv has: run scripts/lock.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
