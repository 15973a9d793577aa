"""The ingest's Prometheus metrics (docs/design.md), one registry per application."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from imagepipe.errors import IMAGE_ERROR_CODES
from imagepipe.exposition import exposed
from imagepipe.jobstore.conflicts import conflicts_counter
from imagepipe.webhooks.outbox import events_counter

MB = 1024 * 1024
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UPLOAD_BUCKETS = (
    16 * 1024,
    64 * 1024,
    256 * 1024,
    0.5 * MB,
    MB,
    2 * MB,
    4 * MB,
    6 * MB,
    8 * MB,
    10 * MB,
    16 * MB,
)


# Refusals and the upload route's answers exist from start-up at zero: rate()
# cannot see the event that creates a series.
REJECTION_CODES = (
    "empty_upload",
    "bad_request",
    *IMAGE_ERROR_CODES,
    "unknown_pipeline",
    "unauthorized",
    "idempotency_conflict",
    "idempotency_in_progress",
    "request_timeout",
    "rate_limited",
    "overloaded",
)
# The route of requests aiohttp's parser refused (bad request line, header or
# chunk framing): they never reach a route, nor the middleware below.
MALFORMED_ROUTE = "malformed"
UPLOAD_STATUSES = ("200", "202", "400", "401", "408", "409", "413", "415", "422", "429", "500", "503")


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, resource: str = "") -> None:
        self.registry = registry or CollectorRegistry()
        self.resource = resource  # NAMESPACE/NAME of the ImagePipeline; "" when none
        self.requests = Counter(
            "imagepipe_http_requests_total",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "imagepipe_http_request_duration_seconds",
            "Time from request start to response, by route template.",
            ["route"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "imagepipe_uploads_rejected_total",
            "Uploads refused, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.upload_bytes = Histogram(
            "imagepipe_upload_bytes",
            "Size of accepted uploads.",
            buckets=UPLOAD_BUCKETS,
            registry=self.registry,
        )
        self.status_conflicts = conflicts_counter(self.registry)
        self.webhook_events = events_counter(self.registry)
        for code in REJECTION_CODES:
            self.rejected.labels(code)
        for status in UPLOAD_STATUSES:
            self.requests.labels("/v1/images", "POST", status)
        self.requests.labels(MALFORMED_ROUTE, "other", "400")

    def count_malformed(self, status: int) -> None:
        """A request the HTTP parser refused: its method is unknown (the parser
        may have stopped before it), so "other"."""
        self.requests.labels(MALFORMED_ROUTE, "other", str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(exposed(self.registry, self.resource))


def route_label(request: web.Request) -> str:
    """The route template (bounded cardinality), never the client's path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(metrics: IngestMetrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = route_label(request)
            method = request.method if request.method in METHODS else "other"
            metrics.requests.labels(route, method, str(status)).inc()
            metrics.duration.labels(route).observe(time.perf_counter() - started)

    return middleware
