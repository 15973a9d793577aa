"""Deliver signed webhook events from the delivery queue to the receiver
(IMAGEPIPE_WEBHOOK_URL, signed with IMAGEPIPE_WEBHOOK_SECRET, or with the
file IMAGEPIPE_WEBHOOK_SECRET_FILE, re-read when it changes), retrying with
backoff until the horizon. Configured by the IMAGEPIPE_* environment
(docs/design.md); flags override it for local use. Refuses to start on an
unsafe target; exits 0 after a graceful SIGTERM drain."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys

from imagepipe.cliargs import port
from imagepipe.config import ConfigError, load_settings, require_webhook_secret
from imagepipe.logs import configure
from imagepipe.webhooks.deliverer import Deliverer, Options
from imagepipe.webhooks.targets import check_target

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=port, help="metrics and health port (IMAGEPIPE_METRICS_PORT)")
    parser.add_argument("--metrics-host", default=Options.metrics_host, help="metrics listen address")
    parser.add_argument(
        "--wait-seconds",
        type=int,
        default=Options.wait_seconds,
        help="SQS long-poll wait (default: %(default)s)",
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=Options.stall_seconds,
        help="/healthz fails when the poll loop has been idle this long (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ)
        require_webhook_secret(settings)
    except ConfigError as exc:
        print(f"imagepipe deliver: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.metrics_port is not None:
        settings = dataclasses.replace(settings, metrics_port=args.metrics_port)
    problem = asyncio.run(check_target(settings.webhook_url, settings.webhook_allow_private))
    if problem is not None and problem.refuse:
        print(f"imagepipe deliver: IMAGEPIPE_WEBHOOK_URL: {problem.message}", file=sys.stderr)
        return 2
    configure(settings.log_level, settings.log_format)
    if problem is not None:
        log.warning("webhook target: %s", problem.message)
    options = Options(
        metrics_host=args.metrics_host, wait_seconds=args.wait_seconds, stall_seconds=args.stall_seconds
    )
    return asyncio.run(Deliverer(settings, options).run())
