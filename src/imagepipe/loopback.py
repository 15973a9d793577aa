"""One pipeline on this machine, all on loopback: an S3+SQS endpoint (moto's
server, from the `dev` extra), the bucket with its public-read policy on
variants/* and its expiry rules, the job queue with its dead-letter queue,
the environment every role reads, and the roles as child processes with a
graceful stop. State lives in memory and is gone when the stack stops.

`imagepipe dev` is this stack behind a command line; the load benchmarks
and the tests build on it. moto runs in a thread of this process, or as a
process of its own when its CPU time must be measured apart from ours.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagepipe.config import load_settings
from imagepipe.localprovision import provision
from imagepipe.processes import ROLE_COMMAND, start_process, stop_processes, wait_listening
from imagepipe.provision import Queues

HOST = "127.0.0.1"
# The endpoint is local and in memory: dummy credentials, never the user's real ones.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "imagepipe-dev", "AWS_SECRET_ACCESS_KEY": "imagepipe-dev"}
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")
NEEDS_DEV_EXTRA = "the local S3+SQS server needs the dev extra: pip install 'imagepipe[dev]'"
# Roles get this much beyond their own drain time before they are killed.
STOP_MARGIN_SECONDS = 10


class StackError(Exception):
    """The stack cannot start; the message says why, for one line of output."""


class PortsBusy(StackError):
    """Ports something else listens on, all of them (label → port)."""

    def __init__(self, busy: Mapping[str, int]) -> None:
        self.busy = dict(busy)
        listed = ", ".join(f"{port} ({label})" for label, port in self.busy.items())
        super().__init__(f"ports in use: {listed}")


def port_free(port: int, host: str = HOST) -> bool:
    """True unless something listens on the port. SO_REUSEADDR, as servers bind:
    a port that only holds connections in TIME_WAIT (a stack stopped a moment
    ago) is free for them."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def busy_ports(ports: Mapping[str, tuple[str, int]]) -> dict[str, int]:
    """Of label → (host, port), those taken; port 0 means any and is never busy."""
    return {label: port for label, (host, port) in ports.items() if port and not port_free(port, host)}


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class BackendServer:
    """moto's S3+SQS server on 127.0.0.1:port, in a thread or as a process.

    In a thread, its state is this process's: servers running at the same time
    share it, and stopping one resets it."""

    def __init__(self, port: int = 0, *, own_process: bool = False, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.own_process, self.log = own_process, log
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process (this one when it runs in a thread)."""
        return int(self._server.pid) if self.own_process else os.getpid()

    def start(self) -> BackendServer:
        if self.own_process:
            self._start_process()
        else:
            self._start_thread()
        return self

    def _start_thread(self) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise StackError(
                "the local S3+SQS server needs the dev extra: pip install 'imagepipe[dev]'"
            ) from exc
        import logging

        # moto's server logs every request through werkzeug; the roles log what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
        self._server.start()

    def _start_process(self) -> None:
        found = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
            "moto_server"
        )
        if found is None:
            raise StackError("the local S3+SQS server needs the dev extra: pip install 'imagepipe[dev]'")
        self._server = start_process(
            [found, "-H", HOST, "-p", str(self.port)], dict(os.environ), log=self.log
        )
        if not wait_listening(HOST, self.port, [self._server], timeout=30):
            self.stop()
            raise StackError(f"moto_server did not start listening on port {self.port}")

    def stop(self) -> None:
        if self._server is None:
            return
        if self.own_process:
            stop_processes([self._server], grace=5)
        else:
            # moto keeps its state in this process, not in its server: without a reset
            # the next in-thread server would serve this one's bucket and queues, and a
            # long poll of a stopped role, still waiting inside moto for up to 20 s,
            # would take the messages sent to them.
            reset_moto(self.endpoint)
            self._server.stop()
        self._server = None


def reset_moto(endpoint: str) -> None:
    """Drop every bucket, queue and message of the moto server at `endpoint`."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def role_environment(
    endpoint: str, bucket: str, queue: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the roles read to use this endpoint: the caller's environment without
    real AWS identities, dummy credentials, the endpoint, bucket and queue name."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in UNSET}
    env.update(DUMMY_CREDENTIALS)
    env.setdefault("AWS_REGION", "us-east-1")
    env.pop("IMAGEPIPE_QUEUE_URL", None)
    env.pop("IMAGEPIPE_WEBHOOK_QUEUE_URL", None)
    for name in ("IMAGEPIPE_AWS_ENDPOINT_URL", "IMAGEPIPE_S3_ENDPOINT_URL", "IMAGEPIPE_SQS_ENDPOINT_URL"):
        env[name] = endpoint
    env.update({"IMAGEPIPE_BUCKET": bucket, "IMAGEPIPE_QUEUE_NAME": queue})
    return env


@dataclass
class LoopbackStack:
    """The whole pipeline on loopback. Ports 0 are chosen free; `start()` checks
    the others all at once and raises PortsBusy naming every taken one."""

    bucket: str = "imagepipe-dev"
    queue: str = "imagepipe-dev-jobs"
    # Where the ingest listens.
    host: str = HOST
    port: int = 0
    backend_port: int = 0
    metrics_port: int = 0
    # The deliverer's metrics and health port (it runs only when webhooks are on).
    deliverer_metrics_port: int = 0
    slots: int | None = None
    backend_process: bool = False
    # Applied only where the caller's environment does not set them...
    defaults: dict[str, str] = field(default_factory=dict)
    # ...and these always.
    extra_env: dict[str, str] = field(default_factory=dict)
    # Role (and moto process) output goes to LOG_DIR/ROLE.log; None: this process's stdout.
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    queues: Queues | None = None
    backend: BackendServer | None = None
    roles: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.backend_port}"

    @property
    def api(self) -> str:
        return f"http://{_reachable(self.host)}:{self.port}"

    @property
    def variant_base_url(self) -> str:
        return load_settings(self.env).variant_base_url()

    def start(self) -> LoopbackStack:
        """The backend, provisioned, and the roles' environment; no roles yet."""
        busy = busy_ports(
            {
                "--backend-port": (HOST, self.backend_port),
                "--port": (self.host, self.port),
                "--metrics-port": ("0.0.0.0", self.metrics_port),
                "--deliverer-metrics-port": ("0.0.0.0", self.deliverer_metrics_port),
            }
        )
        if busy:
            raise PortsBusy(busy)
        self.port = self.port or free_port(self.host)
        self.metrics_port = self.metrics_port or free_port()
        self.deliverer_metrics_port = self.deliverer_metrics_port or free_port()
        self.backend = BackendServer(
            self.backend_port, own_process=self.backend_process, log=self._log("moto")
        ).start()
        self.backend_port = self.backend.port
        env = role_environment(self.endpoint, self.bucket, self.queue)
        for name, value in self.defaults.items():
            env.setdefault(name, value)
        env.update({"IMAGEPIPE_METRICS_PORT": str(self.metrics_port), **self.extra_env})
        if self.slots:
            env["IMAGEPIPE_WORKER_SLOTS"] = str(self.slots)
        self.queues = provision(load_settings(env), env)
        env["IMAGEPIPE_QUEUE_URL"] = self.queues.queue_url
        if self.queues.webhook_queue_url:
            env["IMAGEPIPE_WEBHOOK_QUEUE_URL"] = self.queues.webhook_queue_url
        self.env = env
        return self

    def start_ingest(self, command: list[str] | None = None) -> None:
        """`imagepipe serve` (or `command`, given the same --host/--port)."""
        serve = command or [*ROLE_COMMAND, "serve"]
        self._start_role("ingest", [*serve, "--host", self.host, "--port", str(self.port)])

    def start_consumer(self) -> None:
        self._start_role("consumer", [*ROLE_COMMAND, "consume"])

    def start_deliverer(self) -> None:
        """`imagepipe deliver` (needs IMAGEPIPE_WEBHOOK_URL and _SECRET or _SECRET_FILE set)."""
        port = str(self.deliverer_metrics_port)
        self._start_role("deliverer", [*ROLE_COMMAND, "deliver", "--metrics-port", port])

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every started role listens; StackError naming the first that does not."""
        ports = {
            "ingest": (self.host, self.port),
            "consumer": (HOST, self.metrics_port),
            "deliverer": (HOST, self.deliverer_metrics_port),
        }
        for role in self.roles:
            host, port = ports[role]
            if not wait_listening(
                HOST if host in ("0.0.0.0", "") else host, port, self.roles.values(), timeout
            ):
                raise StackError(f"the {role} did not start" + self._see(role))

    def exited(self) -> list[str]:
        return [name for name, process in self.roles.items() if process.poll() is not None]

    def stop(self) -> None:
        """SIGTERM to the roles, their drain time to finish, then the backend."""
        grace = float(self.env.get("IMAGEPIPE_SHUTDOWN_GRACE_SECONDS") or 25) + STOP_MARGIN_SECONDS
        stop_processes(list(self.roles.values()), grace)
        self.roles.clear()
        if self.backend is not None:
            self.backend.stop()
            self.backend = None

    def __enter__(self) -> LoopbackStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_role(self, role: str, command: list[str]) -> None:
        # cwd: the log folder, so that the repository root (its operator/) is not on sys.path.
        self.roles[role] = start_process(command, self.env, log=self._log(role), cwd=self.log_dir)

    def _log(self, role: str) -> Path | None:
        return None if self.log_dir is None else self.log_dir / f"{role}.log"

    def _see(self, role: str) -> str:
        return "" if self.log_dir is None else f"; see {self.log_dir / f'{role}.log'}"


def _reachable(host: str) -> str:
    """An address to connect to a server listening on `host` (a wildcard: loopback)."""
    return HOST if host in ("0.0.0.0", "", "::") else host
