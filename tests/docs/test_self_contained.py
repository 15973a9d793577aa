"""The repository stands on its own: nothing in it names a path outside it,
except the test corpus's one location (tests/conftest.py for the tests,
bench/corpus.py for the benchmarks), and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

from .repo import REPO, anchors, first_cells, repo_files, section, text_of

CORPUS_LOCATIONS = frozenset({"tests/conftest.py", "bench/corpus.py"})
OUTSIDE = re.compile(
    r"\.\./shared|\"shared\" / \"corpus\"|shared/corpus|(?<![\w.])/(?:work|home|root|Users)/"
)
# This file spells the patterns out; it names no path.
THIS = Path(__file__).resolve().relative_to(REPO).as_posix()
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")


def test_nothing_names_a_path_outside_the_repository() -> None:
    offenders = []
    for name in repo_files():
        text = text_of(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line) and name not in {*CORPUS_LOCATIONS, THIS}:
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_corpus_is_located_once_per_tool() -> None:
    for name in CORPUS_LOCATIONS:
        hits = [line for line in (REPO / name).read_text().splitlines() if OUTSIDE.search(line)]
        assert len(hits) == 1, (name, hits)


def test_relative_links_resolve_inside_the_repository() -> None:
    broken = []
    for name in repo_files():
        if not name.endswith(".md"):
            continue
        for target, anchor in LINK.findall(text_of(name) or ""):
            if re.match(r"[a-z]+:", target):
                continue
            path = (REPO / name).parent / target if target else REPO / name
            inside = path.resolve().is_relative_to(REPO)
            if not inside or not path.exists():
                broken.append(f"{name}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path.read_text()):
                broken.append(f"{name}: {target}#{anchor}")
    assert not broken, broken


def test_readme_links_the_one_configuration_table() -> None:
    readme = (REPO / "README.md").read_text()
    assert "(docs/design.md#configuration)" in section(readme, "Configuration")
    copies = [cell for cell in first_cells(readme) if cell.startswith("`IMAGEPIPE_")]
    assert not copies, f"the configuration table lives in docs/design.md only: {copies}"


def test_the_repository_root_is_found() -> None:
    assert (REPO / "pyproject.toml").is_file() and Path(__file__).is_relative_to(REPO)
