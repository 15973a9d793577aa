"""Build the container image from the repository with Debian's buildah, and
run it with Debian's podman, all under one scratch directory.

No registry is needed: the base image (Debian 12 with Python 3.11 in a venv
at /usr/local, standing in for python:3.11-slim-bookworm) is made with
mmdebstrap from the machine's own Debian apt sources and imported into the
scratch storage. Storage is the kernel's overlay where it works on the
scratch directory's file system (root on ext4 here), else vfs; containers run
with runc: what works in a VM here (docs/testing.md)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("buildah", "podman", "runc", "mmdebstrap", "newuidmap")
BASE = "localhost/imagepipe-base:test"
IMAGE = "localhost/imagepipe:test"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# The pod's securityContext, as flags (charts/imagepipe: runAsUser 10001,
# readOnlyRootFilesystem, drop ALL, allowPrivilegeEscalation false).
HARDENING = ("--read-only", "--user", "10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges")


def release() -> str:
    fields = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )
    return fields["VERSION_CODENAME"].strip('"')


def debian_sources() -> str:
    """One-line `deb` entries for this machine's Debian release, from its apt
    configuration (both formats); third-party repositories are left out."""
    codename = release()

    def ours(suite: str) -> bool:
        return suite == codename or suite.startswith(codename + "-")

    lines = []
    one_line = [
        Path("/etc/apt/sources.list"),
        *map(Path, sorted(glob.glob("/etc/apt/sources.list.d/*.list"))),
    ]
    for path in (p for p in one_line if p.exists()):
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            rest = [w for w in words[1:] if not w.startswith("[")]
            if words[:1] == ["deb"] and len(rest) >= 2 and ours(rest[1]):
                lines.append(" ".join(words))
    for deb822 in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in Path(deb822).read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line and not line.startswith(("#", " ")) and ":" in line:
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
            if "deb" not in fields.get("types", []) or fields.get("enabled") == ["no"]:
                continue
            signed = [f"[signed-by={s}]" for s in fields.get("signed-by", [])[:1]]
            for uri in fields.get("uris", []):
                for suite in filter(ours, fields.get("suites", [])):
                    lines.append(" ".join(["deb", *signed, uri, suite, *fields.get("components", [])]))
    assert lines, f"no apt source for Debian {codename} is configured: mmdebstrap needs one"
    return "\n".join(lines) + "\n"


@dataclass
class Engine:
    """buildah and podman on one scratch storage."""

    scratch: Path

    def __post_init__(self) -> None:
        missing = [tool for tool in TOOLS if not shutil.which(tool)]
        assert not missing, f"missing {missing}: run .ci/run (scripts/bootstrap installs them)"
        conf = self.scratch / "containers.conf"
        # Without it podman's default nofile ulimit is refused here (setrlimit).
        conf.write_text("[containers]\ndefault_ulimits = []\n")
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf), "TMPDIR": str(self.scratch / "tmp")}
        (self.scratch / "tmp").mkdir(exist_ok=True)
        self.driver = self.storage_driver()
        self.storage = self.storage_flags("storage", self.driver)

    def storage_flags(self, name: str, driver: str) -> list[str]:
        return [
            "--root", str(self.scratch / name),
            "--runroot", str(self.scratch / f"{name}-run"),
            "--storage-driver", driver,
        ]  # fmt: skip

    def storage_driver(self) -> str:
        """overlay if podman can use it here, else vfs. vfs copies the whole file
        system for every container and layer (5-17 s per `podman run` of the
        image, measured; overlay: 0.2 s); overlay needs a kernel that has it
        and a scratch directory not itself on overlayfs."""
        probe = [
            "podman", *self.storage_flags("probe", "overlay"),
            "info", "--format", "{{.Store.GraphDriverName}}",
        ]  # fmt: skip
        found = subprocess.run(probe, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        shutil.rmtree(self.scratch / "probe", ignore_errors=True)
        shutil.rmtree(self.scratch / "probe-run", ignore_errors=True)
        return "overlay" if found.returncode == 0 and found.stdout.strip() == "overlay" else "vfs"

    def run(
        self, tool: str, *args: str, timeout: float = 120, check: bool = True, with_stderr: bool = False
    ) -> str:
        """stdout (and stderr after it, for `podman logs`: a container's stderr is its stderr)."""
        extra = ["--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        command = [tool, *self.storage, *(extra if tool == "podman" else []), *args]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check:
            assert result.returncode == 0, (
                f"{' '.join(command)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result.stdout + result.stderr if with_stderr else result.stdout

    def make_base(self) -> float:
        """The stand-in for python:3.11-slim-bookworm (which has Python's
        headers too); returns seconds taken."""
        started = time.monotonic()
        sources, tarball = self.scratch / "debian.list", self.scratch / "base.tar"
        sources.write_text(debian_sources())
        command = [
            "mmdebstrap", "--quiet", "--variant=minbase",
            "--include=python3.11,python3.11-venv,libpython3.11-dev,ca-certificates,passwd",
            "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/locale/*",
            "--customize-hook=chroot \"$1\" python3.11 -m venv /usr/local",
            release(), str(tarball), str(sources),
        ]  # fmt: skip
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-4000:]
        self.run("podman", "import", str(tarball), BASE)
        tarball.unlink()
        return time.monotonic() - started

    def build(self) -> float:
        """The repository's Dockerfile, as a user builds it, on the local base.
        buildah's default, one layer per stage: vfs (where overlay does not
        work) stores every layer as a whole copy of the file system, and
        per-instruction layers of the build stage would take about 5 GB."""
        started = time.monotonic()
        secret = ["--secret", f"id=cacert,src={HOST_CA}"] if HOST_CA.exists() else []
        self.run(
            "buildah", "bud", "--isolation", "chroot", "--pull-never",
            "--build-arg", f"BASE_IMAGE={BASE}", *secret, "-t", IMAGE, str(REPO),
            timeout=1800,
        )  # fmt: skip
        return time.monotonic() - started

    def layers(self) -> list[tuple[int, str]]:
        """(bytes, instruction) per layer of the image, base first."""
        history = json.loads(self.run("podman", "history", "--format", "json", IMAGE))
        return [(int(h["size"]), " ".join(h.get("CreatedBy", "").split())[:100]) for h in reversed(history)]

    def image_size(self, name: str) -> int:
        return int(self.run("podman", "image", "inspect", "--format", "{{.Size}}", name).strip())

    def podman_run(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        return self.run(
            "podman", "run", "--rm", "--network", "host", *HARDENING, *args, timeout=timeout, check=check
        )
