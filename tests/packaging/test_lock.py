"""constraints.txt pins everything imagepipe installs, within what pyproject.toml asks for,
and CI (bootstrap) and the image install from it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def lock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock", REPO / "scripts" / "lock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pins() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    found = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert all(re.fullmatch(r"[a-z0-9-]+", name) for name in found), "names must be canonical"
    return found


def test_every_requirement_is_pinned_within_its_range() -> None:
    lock = lock_module()
    pinned = pins()
    for req in lock.roots():
        name = lock.canonical(req.name)
        if name in lock.UNPINNED:
            continue
        assert name in pinned, f"{req} is not in constraints.txt: regenerate it (see its header)"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject.toml's {req}: regenerate it"
        )


def test_every_installed_dependency_is_pinned_and_pillow_simd_is_not() -> None:
    lock = lock_module()
    needed = lock.closure(lock.roots()) - lock.UNPINNED
    missing = needed - set(pins())
    assert not missing, f"not pinned: {sorted(missing)}: regenerate constraints.txt"
    assert "pillow-simd" not in pins() and "pillow" not in pins()


def test_bootstrap_and_the_image_install_from_the_constraints() -> None:
    bootstrap = (REPO / "scripts" / "bootstrap").read_text()
    installs = [line for line in bootstrap.splitlines() if re.search(r"PIP\[@\]}\" install", line)]
    assert installs and all("-c constraints.txt" in line for line in installs if "--no-deps" not in line)
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "COPY pyproject.toml constraints.txt" in dockerfile
    commands = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if not line.startswith("#")]
    assert commands.count("scripts/bootstrap") == 1


def test_requirement_parsing_matches_pip() -> None:
    """The closure follows extras: moto[server] pulls in flask, plain moto does not."""
    lock = lock_module()
    assert "flask" in lock.closure([Requirement("moto[server]")])
    assert "flask" not in lock.closure([Requirement("moto")])
