"""Roles as child processes: start one, wait until it listens, stop a group
of them gracefully (SIGTERM, their drain time, then SIGKILL)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

# `imagepipe ROLE ...` with this interpreter, whatever is on PATH.
ROLE_COMMAND = (sys.executable, "-m", "imagepipe.cli")
Process = subprocess.Popen[bytes]


def start_process(
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    log: Path | None = None,
    cwd: Path | None = None,
    own_session: bool = False,
) -> Process:
    """Start `command`; its output goes to `log` (appended) or to ours."""
    if log is None:
        return subprocess.Popen(list(command), env=dict(env), cwd=cwd, start_new_session=own_session)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=own_session,
        )


def wait_listening(host: str, port: int, processes: Iterable[Process], timeout: float) -> bool:
    """True once something accepts connections on host:port; False if time runs
    out or one of `processes` exits first."""
    watched = list(processes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(p.poll() is None for p in watched):
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def stop_processes(processes: Iterable[Process], grace: float) -> None:
    """SIGTERM to all at once, then wait up to `grace` seconds in total; kill what is left."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
