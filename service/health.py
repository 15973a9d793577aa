"""Liveness (the process answers), readiness (service/readiness.py) and /metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from imagepipe.errors import BACKEND_RETRY_AFTER_SECONDS
from imagepipe.service.errors import ApiError
from imagepipe.service.readiness import readiness
from imagepipe.service.state import ingest


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    app = ingest(request)
    state = readiness(
        app.lifecycle.stopping, app.backend.ok, app.budget.has_room(app.settings.max_upload_bytes)
    )
    if not state.ready:
        raise ApiError(503, state.code, state.reason, {"Retry-After": str(BACKEND_RETRY_AFTER_SECONDS)})
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = ingest(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
