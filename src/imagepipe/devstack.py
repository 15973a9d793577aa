"""Run the whole pipeline on this machine: an S3+SQS endpoint on loopback
(moto's server, from the `dev` extra), the bucket with its public-read policy
on variants/*, the job queue with its dead-letter queue, the ingest API and a
consumer, and, when IMAGEPIPE_WEBHOOK_URL is set, the delivery queue and a
webhook deliverer (signing with IMAGEPIPE_WEBHOOK_SECRET, or a secret made
for this run and printed). State lives in memory and is gone when it stops
(Ctrl+C). It refuses to start when provisioning reports a problem, such as
originals readable without credentials, or when the webhook target is
unsafe (loopback and private receivers need IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE=true)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import signal
import sys
import time
from types import FrameType

from imagepipe.cliargs import port, positive_int
from imagepipe.config import ConfigError, load_settings
from imagepipe.localprovision import BackendRefused
from imagepipe.loopback import LoopbackStack, PortsBusy, StackError
from imagepipe.webhooks.targets import check_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="ingest listen address (default: %(default)s)")
    parser.add_argument("--port", type=port, default=8080, help="ingest port; 0: any free (%(default)s)")
    parser.add_argument(
        "--backend-port", type=port, default=4566, help="S3+SQS port; 0: any free (%(default)s)"
    )
    parser.add_argument(
        "--metrics-port", type=port, default=9102, help="consumer metrics port; 0: any free (%(default)s)"
    )
    parser.add_argument(
        "--deliverer-metrics-port",
        type=port,
        default=0,
        help="webhook deliverer metrics port, when IMAGEPIPE_WEBHOOK_URL is set; 0: any free (%(default)s)",
    )
    parser.add_argument("--slots", type=positive_int, help="consumer worker slots (default: CPUs)")
    parser.add_argument("--bucket", default="imagepipe-dev", help="bucket name (default: %(default)s)")
    parser.add_argument("--queue", default="imagepipe-dev-jobs", help="queue name (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        webhooks = _webhook_env()
    except (ConfigError, StackError) as exc:
        print(f"imagepipe dev: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    stack = LoopbackStack(
        bucket=args.bucket,
        queue=args.queue,
        host=args.host,
        port=args.port,
        backend_port=args.backend_port,
        metrics_port=args.metrics_port,
        deliverer_metrics_port=args.deliverer_metrics_port,
        slots=args.slots,
        defaults={"IMAGEPIPE_LOG_FORMAT": "text"},
        extra_env=webhooks,
    )
    try:
        stack.start()
    except PortsBusy as exc:
        print(f"imagepipe dev: {exc}; choose others with those options (0: any free port)", file=sys.stderr)
        return 2
    except (StackError, ConfigError, BackendRefused) as exc:
        stack.stop()
        print(f"imagepipe dev: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    try:
        return _serve(stack)
    finally:
        stack.stop()


def _webhook_env() -> dict[str, str]:
    """With IMAGEPIPE_WEBHOOK_URL set: its target checked now (StackError when unsafe), and a
    signing secret made for this run unless one is given. Empty without webhooks."""
    settings = load_settings(os.environ, need_backends=False)
    if not settings.webhooks_enabled:
        return {}
    problem = asyncio.run(check_target(settings.webhook_url, settings.webhook_allow_private))
    if problem is not None and problem.refuse:
        raise StackError(f"IMAGEPIPE_WEBHOOK_URL: {problem.message}")
    if settings.webhook_secret or settings.webhook_secret_file:
        return {}
    return {"IMAGEPIPE_WEBHOOK_SECRET": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()}


def _serve(stack: LoopbackStack) -> int:
    """Run the roles until Ctrl+C / SIGTERM or until one exits."""
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start_ingest()
        stack.start_consumer()
        if stack.env.get("IMAGEPIPE_WEBHOOK_URL"):
            stack.start_deliverer()
        try:
            stack.wait_ready(timeout=60)
            _print_banner(stack)
        except StackError as exc:
            print(f"imagepipe dev: {exc}", file=sys.stderr)
        while not stopping and not stack.exited():
            time.sleep(0.2)
        failed = stack.exited()
        if failed and not stopping:
            print(f"imagepipe dev: {', '.join(failed)} exited; stopping", file=sys.stderr)
            return 1
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_banner(stack: LoopbackStack) -> None:
    assert stack.queues is not None
    print(
        f"""
imagepipe dev is running (state is in memory; Ctrl+C stops it)

  upload      curl -F file=@photo.jpg {stack.api}/v1/images
  status      curl {stack.api}/v1/images/JOB_ID        (the status_url of the upload's answer)
  variants    {stack.variant_base_url}/variants/JOB_ID/...  (public; originals and status are private)
  S3 + SQS    {stack.endpoint}  bucket {stack.bucket}, queue {stack.queues.queue_url}
  metrics     http://127.0.0.1:{stack.metrics_port}/metrics
{_webhook_banner(stack)}""",
        flush=True,
    )


SECRET_VARIABLES = ("IMAGEPIPE_WEBHOOK_SECRET", "IMAGEPIPE_WEBHOOK_SECRET_FILE")


def _webhook_banner(stack: LoopbackStack) -> str:
    if "deliverer" not in stack.roles:
        return ""
    # A secret given is never echoed; one made for this run is what a receiver needs.
    given = [name for name in SECRET_VARIABLES if os.environ.get(name)]
    secret = given[0] if given else stack.env["IMAGEPIPE_WEBHOOK_SECRET"]
    return (
        f"  webhooks    POST {stack.env['IMAGEPIPE_WEBHOOK_URL']}, signed with {secret}\n"
        f"              deliverer metrics http://127.0.0.1:{stack.deliverer_metrics_port}/metrics\n"
    )
