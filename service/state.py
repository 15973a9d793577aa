"""What every handler needs, kept on the aiohttp application under one key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from imagepipe.config import Settings
from imagepipe.context import Limits
from imagepipe.service.auth import Authenticator
from imagepipe.service.budget import UploadBudget
from imagepipe.service.metrics import IngestMetrics
from imagepipe.service.ratelimit import RateLimiter
from imagepipe.service.readiness import BackendCheck
from imagepipe.service.shutdown import Lifecycle
from imagepipe.service.store import JobStore
from imagepipe.spec import PipelineSpec


@dataclass
class Ingest:
    settings: Settings
    pipelines: dict[str, PipelineSpec]
    limits: Limits
    auth: Authenticator
    metrics: IngestMetrics
    budget: UploadBudget
    limiter: RateLimiter
    backend: BackendCheck
    lifecycle: Lifecycle
    # Set once the backends are open (application startup).
    store: JobStore | None = None

    def jobs(self) -> JobStore:
        if self.store is None:  # pragma: no cover - routes run only after startup
            raise RuntimeError("the backends are not open")
        return self.store


INGEST = web.AppKey("ingest", Ingest)


def ingest(request: web.Request) -> Ingest:
    return request.app[INGEST]
