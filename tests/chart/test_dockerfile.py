"""The Dockerfile's rules, read from its text (tests/system/test_image.py
builds and runs it). Every file it mounts exists and reaches the build
context, the commands the image runs exist in the CLI, the Debian packages it
names are the ones scripts/bootstrap (.ci/run) installs, so that CI builds
against what the image ships, and its layers are ordered and kept clean."""

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


def bootstrap_packages(variable: str = "BUILD_PACKAGES") -> set[str]:
    match = re.search(rf'^{variable}="([^"]*)"', (REPO / "scripts" / "bootstrap").read_text(), re.M)
    assert match, f"scripts/bootstrap has no {variable}"
    return set(match.group(1).split())


def mounts(rest: str) -> list[dict[str, str]]:
    """The --mount options of one RUN, as key/value dicts."""
    return [
        dict(part.split("=", 1) for part in word.removeprefix("--mount=").split(",") if "=" in part)
        for word in shlex.split(rest)
        if word.startswith("--mount=")
    ]


def runs(stage: str) -> list[str]:
    return [rest for word, rest in stages()[stage] if word == "RUN"]


def copies(stage: str) -> list[list[str]]:
    """The sources of each COPY from the build context (not --from a stage)."""
    return [
        [a for a in shlex.split(rest) if not a.startswith("--")][:-1]
        for word, rest in stages()[stage]
        if word == "COPY" and "--from=" not in rest
    ]


def context_files() -> set[str]:
    """What .dockerignore lets into the build context (its `*` + `!path` form)."""
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "*", "only what the image needs reaches the context"
    return {line[1:] for line in lines if line.startswith("!")}


def test_the_context_holds_what_the_build_copies_and_no_local_state() -> None:
    allowed = context_files()
    for path in allowed:
        assert (REPO / path).exists(), f".dockerignore lets in {path}: missing"
    assert not allowed & {".git", ".venv", "build", "tests"}
    for sources in copies("build"):
        for source in sources:
            if source != ".":
                assert source in allowed, f"COPY {source}: kept out by .dockerignore"
    # The wheel is built from these: the package folders and its metadata.
    assert {"pyproject.toml", "README.md", "src", "service", "consumer", "operator"} <= allowed
    assert not copies("runtime"), "the runtime stage takes only what the build stage made"


def test_layers_go_from_least_to_most_often_changed() -> None:
    """pillow-simd, then the pinned dependency wheels, then our source: an
    edit to the code rebuilds the last layers and downloads nothing."""
    order = copies("build")
    assert order == [["scripts/build-pillow-simd"], ["pyproject.toml", "constraints.txt"], ["."]]
    build = stages()["build"]
    steps = [word for word, _ in build if word in {"COPY", "RUN"}]
    # Each COPY is followed by the RUN that uses it.
    assert steps[-6:] == ["COPY", "RUN", "COPY", "RUN", "COPY", "RUN"], steps


def test_networked_steps_take_the_optional_ca_secret_and_apt_layers_are_clean() -> None:
    for stage in ("build", "runtime"):
        for rest in runs(stage):
            secrets = [m for m in mounts(rest) if m.get("type") == "secret"]
            networked = (
                "apt-get update" in rest or "pip wheel -q --wheel-dir" in rest or " python /wheels" in rest
            )
            if networked:
                assert secrets == [
                    {"type": "secret", "id": "cacert", "target": "/etc/ssl/certs/ca-certificates.crt"}
                ], rest
            if "apt-get install" in rest:
                assert "apt-get clean" in rest and "rm -rf /var/lib/apt/lists/*" in rest, rest


def test_portable_by_default_base_image_an_argument_and_the_build_checked() -> None:
    args = dict(rest.split("=", 1) for word, rest in instructions() if word == "ARG" and "=" in rest)
    assert args["AVX2"] == "0", "a -mavx2 default dies with SIGILL on CPUs without AVX2"
    assert args["BASE_IMAGE"] == "python:3.11-slim-bookworm"
    assert {rest for word, rest in instructions() if word == "FROM"} == {
        "${BASE_IMAGE} AS build",
        "${BASE_IMAGE} AS runtime",
    }
    labels = " ".join(rest for word, rest in stages()["runtime"] if word == "LABEL")
    assert 'io.imagepipe.avx2="$AVX2"' in labels
    assert any("build-pillow-simd --check" in rest for rest in runs("runtime"))
    assert any("pip uninstall" in rest and "pip setuptools wheel" in rest for rest in runs("runtime"))


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
    """The same headers and tools (pkg-config: Pillow finds libtiff through
    it; dpkg-dev: libwebp's source); the image has its own Python."""
    dev = {p for p in bootstrap_packages() if p.endswith("-dev")}
    assert apt_packages(stages()["build"]) == dev | bootstrap_packages("TOOLCHAIN") - {"python3-venv"}


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
