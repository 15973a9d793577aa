"""Run the whole pipeline on this machine: an S3+SQS endpoint on loopback
(moto's server, from the `dev` extra), the bucket with its public-read policy
on variants/*, the job queue with its dead-letter queue, the ingest API and a
consumer. State lives in memory and is gone when it stops (Ctrl+C). It refuses
to start when provisioning reports a problem, such as originals readable
without credentials."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from types import FrameType
from typing import Any

from imagepipe.aws import open_anonymous_s3
from imagepipe.config import ConfigError, load_settings
from imagepipe.privacy import originals_problem
from imagepipe.problems import Problem
from imagepipe.provision import Queues, ensure_bucket, ensure_queues

# The endpoint is local and in memory: dummy credentials, never the user's real ones.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "imagepipe-dev", "AWS_SECRET_ACCESS_KEY": "imagepipe-dev"}
# The local queue's maxReceiveCount (consumers read it from the redrive policy).
DEV_MAX_RECEIVES = 5
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


class BackendRefused(Exception):
    """Provisioning found a problem the stack must not run with."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.reason}: {problem.message}")
        self.problem = problem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="ingest listen address (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="ingest port (default: %(default)s)")
    parser.add_argument(
        "--backend-port", type=int, default=4566, help="S3+SQS port; 0: any free (%(default)s)"
    )
    parser.add_argument("--metrics-port", type=int, default=9102, help="consumer metrics port (%(default)s)")
    parser.add_argument("--slots", type=int, help="consumer worker slots (default: CPUs)")
    parser.add_argument("--bucket", default="imagepipe-dev", help="bucket name (default: %(default)s)")
    parser.add_argument("--queue", default="imagepipe-dev-jobs", help="queue name (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        print("imagepipe dev needs the dev extra: pip install 'imagepipe[dev]'", file=sys.stderr)
        return 2
    backend_port = args.backend_port or _free_port()
    for port, what in (
        (backend_port, "--backend-port"),
        (args.port, "--port"),
        (args.metrics_port, "--metrics-port"),
    ):
        if not _port_free(port):
            print(f"imagepipe dev: port {port} is in use; choose another with {what}", file=sys.stderr)
            return 2
    # moto's server logs every request through werkzeug; the roles log what matters.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=backend_port, verbose=False)
    server.start()
    try:
        env = _environment(args, f"http://127.0.0.1:{backend_port}")
        try:
            settings = load_settings(env)
        except ConfigError as exc:
            print(f"imagepipe dev: {exc}", file=sys.stderr)
            return 2
        try:
            queues = asyncio.run(provision_backend(env))
        except BackendRefused as exc:
            print(f"imagepipe dev: {exc}", file=sys.stderr)
            return 2
        env["IMAGEPIPE_QUEUE_URL"] = queues.queue_url
        return _run_roles(args, env, settings.variant_base_url(), queues)
    finally:
        server.stop()


def _environment(args: argparse.Namespace, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    env.update(DUMMY_CREDENTIALS)
    env.setdefault("AWS_REGION", "us-east-1")
    env.setdefault("IMAGEPIPE_LOG_FORMAT", "text")
    env.update(
        {
            "IMAGEPIPE_AWS_ENDPOINT_URL": endpoint,
            "IMAGEPIPE_S3_ENDPOINT_URL": endpoint,
            "IMAGEPIPE_SQS_ENDPOINT_URL": endpoint,
            "IMAGEPIPE_BUCKET": args.bucket,
            "IMAGEPIPE_QUEUE_NAME": args.queue,
            "IMAGEPIPE_METRICS_PORT": str(args.metrics_port),
        }
    )
    env.pop("IMAGEPIPE_QUEUE_URL", None)
    if args.slots:
        env["IMAGEPIPE_WORKER_SLOTS"] = str(args.slots)
    return env


async def provision_backend(env: dict[str, str]) -> Queues:
    """The bucket and queues `env` names, created where missing; raises
    BackendRefused on the first problem (originals public, a refused write)."""
    from aiobotocore.session import get_session

    settings = load_settings(env)
    session = get_session()
    client: dict[str, Any] = {
        "region_name": settings.region,
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
    async with AsyncExitStack() as stack:
        s3 = await stack.enter_async_context(
            session.create_client("s3", endpoint_url=settings.s3_endpoint_url, **client)
        )
        sqs = await stack.enter_async_context(
            session.create_client("sqs", endpoint_url=settings.sqs_endpoint_url, **client)
        )
        report = await ensure_bucket(s3, settings.bucket, settings.region)
        public = await originals_problem(s3, await open_anonymous_s3(settings, stack), settings.bucket)
        problems = [*report.problems, *([public] if public else [])]
        if problems:
            raise BackendRefused(problems[0])
        return await ensure_queues(
            sqs,
            settings.queue_name,
            f"{settings.queue_name}-dlq",
            DEV_MAX_RECEIVES,
            settings.visibility_timeout_seconds,
        )


def _run_roles(args: argparse.Namespace, env: dict[str, str], variant_base: str, queues: Queues) -> int:
    base = [sys.executable, "-m", "imagepipe.cli"]
    roles = {
        "ingest": subprocess.Popen([*base, "serve", "--host", args.host, "--port", str(args.port)], env=env),
        "consumer": subprocess.Popen([*base, "consume"], env=env),
    }
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if _wait_listening(args.host, args.port, roles, timeout=30):
            _print_banner(args, env, variant_base, queues)
        while not stopping and all(p.poll() is None for p in roles.values()):
            time.sleep(0.2)
        failed = [name for name, p in roles.items() if p.poll() is not None]
        if failed and not stopping:
            print(f"imagepipe dev: {', '.join(failed)} exited; stopping", file=sys.stderr)
        return _stop(roles, grace=float(env.get("IMAGEPIPE_SHUTDOWN_GRACE_SECONDS") or 25) + 10) or (
            1 if failed and not stopping else 0
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(roles: dict[str, subprocess.Popen[bytes]], grace: float) -> int:
    for process in roles.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in roles.values():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return 0


def _print_banner(args: argparse.Namespace, env: dict[str, str], variant_base: str, queues: Queues) -> None:
    api = f"http://{args.host}:{args.port}"
    print(
        f"""
imagepipe dev is running (state is in memory; Ctrl+C stops it)

  upload      curl -F file=@photo.jpg {api}/v1/images
  status      curl {api}/v1/images/JOB_ID        (the status_url of the upload's answer)
  variants    {variant_base}/variants/JOB_ID/...  (public; originals and status are private)
  S3 + SQS    {env["IMAGEPIPE_AWS_ENDPOINT_URL"]}  bucket {env["IMAGEPIPE_BUCKET"]}, queue {queues.queue_url}
  metrics     http://127.0.0.1:{args.metrics_port}/metrics
""",
        flush=True,
    )


def _wait_listening(host: str, port: int, roles: dict[str, subprocess.Popen[bytes]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(p.poll() is None for p in roles.values()):
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
