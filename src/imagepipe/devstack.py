"""Run the whole pipeline on this machine: an S3+SQS endpoint on loopback
(moto's server, from the `dev` extra), the bucket with its public-read policy
on variants/*, the job queue with its dead-letter queue, the ingest API and a
consumer. State lives in memory and is gone when it stops (Ctrl+C). It refuses
to start when provisioning reports a problem, such as originals readable
without credentials."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from imagepipe.cliargs import port, positive_int
from imagepipe.config import ConfigError
from imagepipe.localprovision import BackendRefused
from imagepipe.loopback import LoopbackStack, PortsBusy, StackError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="ingest listen address (default: %(default)s)")
    parser.add_argument("--port", type=port, default=8080, help="ingest port; 0: any free (%(default)s)")
    parser.add_argument(
        "--backend-port", type=port, default=4566, help="S3+SQS port; 0: any free (%(default)s)"
    )
    parser.add_argument(
        "--metrics-port", type=port, default=9102, help="consumer metrics port; 0: any free (%(default)s)"
    )
    parser.add_argument("--slots", type=positive_int, help="consumer worker slots (default: CPUs)")
    parser.add_argument("--bucket", default="imagepipe-dev", help="bucket name (default: %(default)s)")
    parser.add_argument("--queue", default="imagepipe-dev-jobs", help="queue name (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    stack = LoopbackStack(
        bucket=args.bucket,
        queue=args.queue,
        host=args.host,
        port=args.port,
        backend_port=args.backend_port,
        metrics_port=args.metrics_port,
        slots=args.slots,
        defaults={"IMAGEPIPE_LOG_FORMAT": "text"},
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


def _serve(stack: LoopbackStack) -> int:
    """Run the roles until Ctrl+C / SIGTERM or until one exits."""
    stopping: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stack.start_ingest()
        stack.start_consumer()
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
""",
        flush=True,
    )
