"""Wiring: the aiohttp application, its middlewares, routes and backends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

from aiohttp import web
from prometheus_client import CollectorRegistry

from imagepipe.aws import open_backends
from imagepipe.config import Settings, upload_budget
from imagepipe.context import Limits
from imagepipe.jobstore.store import JobStore
from imagepipe.service import compat, health, images
from imagepipe.service.auth import Authenticator
from imagepipe.service.budget import UploadBudget
from imagepipe.service.cors import cors_middleware
from imagepipe.service.errors import error_middleware
from imagepipe.service.metrics import IngestMetrics, metrics_middleware
from imagepipe.service.openapi import openapi
from imagepipe.service.ratelimit import RateLimiter
from imagepipe.service.readiness import BackendCheck
from imagepipe.service.shutdown import Lifecycle
from imagepipe.service.state import INGEST, Ingest
from imagepipe.spec import VariantList, load_pipelines
from imagepipe.webhooks.outbox import Outbox

# How long one S3/SQS call may take before the upload answers 503.
BACKEND_TIMEOUT_SECONDS = 15.0


def create_app(
    settings: Settings,
    pipelines: dict[str, VariantList] | None = None,
    backend_timeout: float = BACKEND_TIMEOUT_SECONDS,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """The ingest application; raises ConfigError when no upload budget fits (config.upload_budget)."""
    state = Ingest(
        settings=settings,
        pipelines=pipelines if pipelines is not None else load_pipelines(settings.pipelines_file),
        limits=Limits(max_pixels=settings.max_pixels, max_decoded_pixels=settings.max_decoded_pixels),
        auth=Authenticator(settings.api_keys),
        metrics=IngestMetrics(registry, settings.imagepipeline),
        budget=UploadBudget(upload_budget(settings)),
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        backend=BackendCheck(settings.backend_check_interval_seconds, settings.backend_check_timeout_seconds),
        lifecycle=Lifecycle(),
    )
    app = web.Application(
        middlewares=[
            state.lifecycle.middleware,
            metrics_middleware(state.metrics),
            cors_middleware(settings.cors_origins),
            error_middleware,
        ]
    )
    app[INGEST] = state

    async def backends(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            state.backends = await open_backends(settings, stack)
            state.store = JobStore(
                state.backends.s3,
                state.backends.bucket,
                backend_timeout,
                on_refused=lambda reason: state.metrics.status_conflicts.labels(reason).inc(),
            )
            await state.check_backend()
            state.outbox = Outbox(state.backends.sqs, settings, state.metrics.webhook_events, backend_timeout)
            await state.open_outbox()
            # One check before serving, so the first probe already knows.
            await state.backend.check(state.ping)
            checking = asyncio.create_task(state.backend.run(state.ping))
            yield
            checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checking
            state.store = state.backends = state.outbox = None

    app.cleanup_ctx.append(backends)
    add_routes(app)
    return app


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/v1/images", images.upload, expect_handler=images.expect_upload)
    router.add_get("/v1/images/{job_id}", images.get_status, allow_head=False)
    router.add_delete("/v1/images/{job_id}", images.delete)
    router.add_post("/images/upload", compat.upload, expect_handler=images.expect_upload)
    router.add_get("/images/status/{job_id}", compat.get_status, allow_head=False)
    router.add_get("/healthz", health.healthz, allow_head=False)
    router.add_get("/readyz", health.readyz, allow_head=False)
    router.add_get("/metrics", health.metrics, allow_head=False)
    router.add_get("/openapi.json", openapi, allow_head=False)
