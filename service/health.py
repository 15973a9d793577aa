"""Liveness, readiness (S3 and SQS reachable, short timeout) and /metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from imagepipe.service.errors import ApiError, BackendUnavailable
from imagepipe.service.state import ingest

READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = ingest(request)
    if app.store is None:
        raise BackendUnavailable("starting")
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await app.store.ping()
    except TimeoutError as exc:
        raise BackendUnavailable("storage or queue did not answer in time") from exc
    except ApiError:
        raise
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = ingest(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
