"""The Dockerfile cannot be built here (no engine): test what can be tested.
Every file it copies exists, the commands the image runs exist in the CLI,
and the Debian packages it names are the ones scripts/bootstrap (.ci/run)
installs, so that CI builds against what the image ships."""

from __future__ import annotations

import re
import shlex

from imagepipe.cli import COMMANDS

from .helpers import CHART, REPO, VALUES_ALL, by_kind, documents, load_values, render

DOCKERFILE = REPO / "Dockerfile"
# Tools CI needs that the image must not ship.
CI_ONLY_PACKAGES = {"prometheus"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages() -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for word, rest in instructions():
        if word == "FROM":
            current = rest.split()[-1] if " AS " in rest.upper() else rest
            found[current] = []
        elif current:
            found[current].append((word, rest))
    return found


def apt_packages(stage: list[tuple[str, str]]) -> set[str]:
    packages: set[str] = set()
    for word, rest in stage:
        if word != "RUN":
            continue
        lexer = shlex.shlex(rest, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in {"&&", "||", ";", "|"}:
                if command[:2] == ["apt-get", "install"]:
                    packages.update(a for a in command[2:] if not a.startswith("-"))
                command = []
            else:
                command.append(token)
    return packages


def bootstrap_packages() -> set[str]:
    match = re.search(r'^BUILD_PACKAGES="([^"]*)"', (REPO / "scripts" / "bootstrap").read_text(), re.M)
    assert match, "scripts/bootstrap has no BUILD_PACKAGES"
    return set(match.group(1).split())


def test_every_copied_source_exists() -> None:
    copies = [rest for word, rest in instructions() if word == "COPY"]
    assert copies
    for rest in copies:
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        for source in args[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: missing"


def test_dockerignore_keeps_sources_and_drops_local_state() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for local in (".git", ".venv"):
        assert local in ignored
    copied = {shlex.split(r)[0] for w, r in instructions() if w == "COPY"}
    assert copied.isdisjoint(ignored)


def test_entrypoint_and_role_commands_exist() -> None:
    entrypoints = [rest for word, rest in instructions() if word == "ENTRYPOINT"]
    assert entrypoints[-1] == '["imagepipe"]'
    for command in ("serve", "consume", "operator"):
        assert command in COMMANDS, command
    # What the chart and the operator run through that entrypoint.
    docs = documents(render(load_values(VALUES_ALL)))
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"][0] in COMMANDS
    assert (CHART / "templates" / "deployment.yaml").exists()


def test_build_stage_dev_packages_are_bootstraps() -> None:
    build = apt_packages(stages()["build"])
    dev = {p for p in build if p.endswith("-dev")}
    assert dev == {p for p in bootstrap_packages() if p.endswith("-dev")}


def test_runtime_stage_ships_the_runtime_packages_ci_uses_and_no_compiler() -> None:
    runtime = apt_packages(stages()["runtime"])
    needed = {p for p in bootstrap_packages() if not p.endswith("-dev")} - CI_ONLY_PACKAGES
    assert needed <= runtime, needed - runtime
    assert not {p for p in runtime if p.endswith("-dev") or p in {"build-essential", "gcc", "cc"}}
    assert CI_ONLY_PACKAGES.isdisjoint(runtime)


def test_runtime_is_non_root_and_tuned_for_long_running_workers() -> None:
    runtime = stages()["runtime"]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert [rest for word, rest in runtime if word == "WORKDIR"][-1] not in {"/", "/build", "/src", "/app"}
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    assert "MALLOC_ARENA_MAX" in env or "jemalloc" in env
    build_args = {rest.split("=")[0] for word, rest in instructions() if word == "ARG"}
    assert "AVX2" in build_args
