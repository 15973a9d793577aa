"""Consume image jobs from SQS: render each upload's variants into S3 and
complete its status. Configured by the IMAGEPIPE_* environment (docs/design.md);
flags override it for local use. Exits 0 after a graceful SIGTERM drain."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys

from imagepipe.cliargs import port, positive_int
from imagepipe.config import ConfigError, load_settings
from imagepipe.logs import configure

from .worker import Consumer, Options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--slots", type=positive_int, help="concurrent jobs (IMAGEPIPE_WORKER_SLOTS)")
    parser.add_argument("--metrics-port", type=port, help="metrics and health port (IMAGEPIPE_METRICS_PORT)")
    parser.add_argument("--metrics-host", default=Options.metrics_host, help="metrics listen address")
    parser.add_argument(
        "--wait-seconds",
        type=int,
        default=Options.wait_seconds,
        help="SQS long-poll wait (default: %(default)s)",
    )
    parser.add_argument(
        "--release-base-seconds",
        type=int,
        help="first visibility of a message handed back after a failure, doubling per receive "
        "(default: the visibility timeout)",
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=Options.stall_seconds,
        help="/healthz fails when the poll loop has been idle this long (default: %(default)s)",
    )
    parser.add_argument(
        "--sweep-seconds",
        type=float,
        default=Options.sweep_seconds,
        help="between sweeps of the dead-letter queue (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"imagepipe consume: {exc}", file=sys.stderr)
        return 2
    overrides = {"worker_slots": args.slots, "metrics_port": args.metrics_port}
    settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    configure(settings.log_level, settings.log_format)
    options = Options(
        metrics_host=args.metrics_host,
        wait_seconds=args.wait_seconds,
        release_base_seconds=args.release_base_seconds,
        stall_seconds=args.stall_seconds,
        sweep_seconds=args.sweep_seconds,
    )
    return asyncio.run(Consumer(settings, options).run())
