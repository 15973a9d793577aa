"""Shared pieces of the load benchmarks (ingest_load.py, pipeline_load.py).

The loopback stack of `imagepipe dev` (imagepipe.loopback), except that the
moto server runs as a process of its own (`moto_server`), so that its CPU
time (the stand-in for AWS) is measured apart from ours and it does not share
a GIL with the load generator. Plus /proc readers (CPU time of a process and
its children, VmRSS/VmHWM), percentiles and the load average.

Run with the product venv from the repository root (.venv/bin/python bench/...).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus import CORPUS

from imagepipe.loopback import LoopbackStack

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
TICK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024

# The 2-8 MP photos of the issues (JPEG, 0.25-1.7 MB).
PHOTOS = [
    "sharp/gain-map.jpg",
    "thumbor/IMG_6494.JPG",
    "sharp/2569067123_aca715a2ee_o.jpg",
    "recurser/Landscape_1.jpg",
    "recurser/Portrait_1.jpg",
]
# A mix of formats and sizes (PNG, WebP, small JPEG) for the ingest run's --mix.
MIX = [
    *PHOTOS,
    "sharp/alpha-premultiply-2048x1536-paper.png",
    "sharp/test-pattern.png",
    "sharp/4.webp",
    "libvips/1.webp",
    "sharp/5_webp_a.webp",
]


def load_images(names: list[str]) -> list[tuple[str, bytes]]:
    return [(name, (CORPUS / name).read_bytes()) for name in names]


# --------------------------------------------------------------------------- /proc


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may contain spaces: split after it.
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, reaped_children: bool = True) -> float:
    """utime + stime of one process (+ cutime + cstime: its children already waited for)."""
    f = _stat_fields(pid)
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if reaped_children else 0)
    return ticks / TICK


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its live descendants (e.g. the consumer's render workers)."""
    total = cpu_seconds(pid)
    for child in descendants(pid):
        try:
            total += cpu_seconds(child)
        except OSError:  # exited meanwhile; its time is in the parent's cutime once reaped
            continue
    return total


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --------------------------------------------------------------------------- statistics


def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """The core's local stack (imagepipe.loopback) with moto in a process of its
    own, ingest (+ consumer), all on 127.0.0.1, role logs in a scratch folder."""

    ingest_command: list[str] | None = None  # default: `imagepipe serve`
    consumer: bool = False
    slots: int | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    keep_logs: bool = False
    logdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="imagepipe-load-")))
    local: LoopbackStack | None = None

    def _stack(self) -> LoopbackStack:
        assert self.local is not None, "the stack is not started"
        return self.local

    @property
    def env(self) -> dict[str, str]:
        return self._stack().env

    @property
    def endpoint(self) -> str:
        return self._stack().endpoint

    @property
    def api(self) -> str:
        return self._stack().api

    @property
    def metrics_port(self) -> int:
        return self._stack().metrics_port

    def pid(self, role: str) -> int:
        stack = self._stack()
        if role == "moto":
            assert stack.backend is not None
            return stack.backend.pid
        return int(stack.roles[role].pid)

    def start(self) -> Stack:
        self.local = LoopbackStack(
            bucket="imagepipe-load",
            queue="imagepipe-load-jobs",
            slots=self.slots,
            backend_process=True,
            extra_env={"IMAGEPIPE_LOG_FORMAT": "json", **self.extra_env},
            log_dir=self.logdir,
        ).start()
        self.local.start_ingest(self.ingest_command)
        if self.consumer:
            self.local.start_consumer()
        self.local.wait_ready(timeout=60)
        return self

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()
        if self.keep_logs:
            print(f"logs: {self.logdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def aws_client_kwargs(stack: Stack) -> dict[str, Any]:
    env = stack.env
    return {
        "region_name": env.get("AWS_REGION", "us-east-1"),
        "endpoint_url": stack.endpoint,
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def multipart_body(name: str, data: bytes, boundary: str = "imagepipe-load-boundary") -> tuple[bytes, str]:
    """A prebuilt multipart/form-data body (field `file`): the clients send bytes, not rebuild forms."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{Path(name).name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def now() -> float:
    return time.perf_counter()
