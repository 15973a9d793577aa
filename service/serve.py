"""Run the ingest HTTP API: uploads in, originals to S3, jobs on SQS.

Configured by the IMAGEPIPE_* environment (docs/design.md); flags override
the listen address. SIGTERM: not ready at once, accepting for
IMAGEPIPE_SHUTDOWN_DELAY_SECONDS, then the requests in flight finish
(service/shutdown.py) and the process exits 0."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from imagepipe import logs
from imagepipe.allocator import map_large_buffers
from imagepipe.capacity import drain_seconds
from imagepipe.cliargs import port
from imagepipe.config import ConfigError, load_settings
from imagepipe.errors import InvalidSpec
from imagepipe.jobstore.store import ConditionalWritesUnsupported
from imagepipe.service.access import AccessLogger
from imagepipe.service.app import BACKEND_TIMEOUT_SECONDS, create_app
from imagepipe.service.protocol import IngestRunner
from imagepipe.service.shutdown import serve
from imagepipe.service.state import INGEST
from imagepipe.spec import load_pipelines
from imagepipe.webhooks.outbox import DeliveryQueueMissing

log = logging.getLogger("imagepipe.service")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default: IMAGEPIPE_HOST or 0.0.0.0)")
    parser.add_argument("--port", type=port, help="listen port (default: IMAGEPIPE_PORT or 8080)")
    parser.add_argument(
        "--backend-timeout",
        type=float,
        default=BACKEND_TIMEOUT_SECONDS,
        help="seconds one S3/SQS call may take before an upload answers 503 (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        pipelines = load_pipelines(settings.pipelines_file)
        app = create_app(settings, pipelines, backend_timeout=args.backend_timeout)
    except ConfigError as exc:
        print(f"imagepipe serve: {exc}", file=sys.stderr)
        return 2
    except InvalidSpec as exc:
        print(f"imagepipe serve: IMAGEPIPE_PIPELINES_FILE: {exc.message}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    map_large_buffers()
    host = args.host or settings.host
    port = args.port or settings.port
    state = app[INGEST]
    log.info(
        "ingest starting",
        extra={
            "host": host,
            "port": port,
            "pipelines": sorted(pipelines),
            "auth": bool(settings.api_keys),
            "upload_budget_bytes": state.budget.budget,
        },
    )
    drain = drain_seconds(settings.upload_timeout_seconds, settings.shutdown_grace_seconds)
    runner = IngestRunner(
        app,
        on_malformed=state.metrics.count_malformed,
        access_log_class=AccessLogger,
        shutdown_timeout=1.0,
        handle_signals=False,
    )
    try:
        asyncio.run(serve(runner, host, port, state.lifecycle, settings.shutdown_delay_seconds, drain))
    except (ConditionalWritesUnsupported, DeliveryQueueMissing) as exc:
        print(f"imagepipe serve: {exc}", file=sys.stderr)
        return 2
    log.info("ingest stopped")
    return 0
