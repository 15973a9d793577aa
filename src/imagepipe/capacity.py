"""What one ingest pod can hold and how long it takes to stop: one rule shared
by the ingest (its default budget) and the operator (the pod's memory limit).

An ingest's memory is a fixed base (interpreter, libraries, connection pools,
buffers of requests not yet admitted) plus the uploads it holds; the upload
budget bounds the second part, so the pod's limit is base + budget.
"""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024
# Measured: an idle `imagepipe serve` is 70-75 MB RSS; the rest is headroom for
# the per-request buffers the budget does not count (headers, small fields,
# response bodies, aiobotocore's signing of each body).
INGEST_BASE_BYTES = 160 * MIB
# Resident bytes per byte of upload held, measured (bench/ingest_load.py --flood):
# peak RSS grew 2.1 bytes per budget byte uncharged: the body as read and its
# copy as bytes, alive together while the upload is probed and written to S3.
# The budget charges each byte this many times, so RSS stays within base + budget.
HELD_COPIES = 2
# Where the container has no memory limit (a laptop): the budget itself.
DEFAULT_UPLOAD_BUDGET_BYTES = 256 * MIB
# How long after SIGTERM the ingest still accepts while endpoints are withdrawn.
DEFAULT_SHUTDOWN_DELAY_SECONDS = 5
# After its body has arrived an upload still writes to S3 and SQS.
BACKEND_WRITE_SECONDS = 15
# Between the drain's end and the kubelet's SIGKILL.
TERMINATION_MARGIN_SECONDS = 5

# cgroup v2, then v1; v1 reports "no limit" as a huge number.
CGROUP_LIMIT_FILES = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
CGROUP_V1_UNLIMITED = 1 << 60


def parse_memory_limit(text: str) -> int | None:
    """A cgroup memory limit file's content as bytes; None for no limit."""
    text = text.strip()
    if text == "max":
        return None
    limit = int(text)
    return None if limit >= CGROUP_V1_UNLIMITED else limit


def container_memory_limit(files: tuple[Path, ...] = CGROUP_LIMIT_FILES) -> int | None:
    for path in files:
        try:
            return parse_memory_limit(path.read_text())
        except (OSError, ValueError):
            continue
    return None


def budget_from_limit(limit: int | None, max_upload_bytes: int) -> int:
    """The upload budget a memory limit leaves; ValueError when it cannot hold one maximum upload."""
    if limit is None:
        return DEFAULT_UPLOAD_BUDGET_BYTES
    budget = limit - INGEST_BASE_BYTES
    if budget < smallest_budget(max_upload_bytes):
        raise ValueError(
            f"a memory limit of {limit} bytes leaves {max(budget, 0)} bytes for uploads after the "
            f"{INGEST_BASE_BYTES}-byte base, less than one maximum upload ({max_upload_bytes} bytes, "
            f"held {HELD_COPIES} times)"
        )
    return budget


def smallest_budget(max_upload_bytes: int) -> int:
    """A budget must hold one maximum upload."""
    return HELD_COPIES * max_upload_bytes


def memory_limit_for(budget: int) -> int:
    return INGEST_BASE_BYTES + budget


def drain_seconds(upload_timeout_seconds: int, shutdown_grace_seconds: int) -> int:
    """How long a stopping ingest waits for uploads in flight: at least one whole upload."""
    return max(shutdown_grace_seconds, upload_timeout_seconds + BACKEND_WRITE_SECONDS)


def termination_grace_seconds(
    delay_seconds: int, upload_timeout_seconds: int, shutdown_grace_seconds: int
) -> int:
    """The pod's terminationGracePeriodSeconds: the accepting delay, the drain and a margin."""
    return (
        delay_seconds
        + drain_seconds(upload_timeout_seconds, shutdown_grace_seconds)
        + TERMINATION_MARGIN_SECONDS
    )
