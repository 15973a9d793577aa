"""The operator's own Prometheus metrics (docs/design.md, "Metrics"), in a
registry of their own, served on `IMAGEPIPE_METRICS_PORT` (9102) by aiohttp
inside kopf's event loop.

`imagepipeline` is `NAMESPACE/NAME` of the ImagePipeline (the label the
consumer and ingest pods it deploys carry too): names repeat across
namespaces, and a `namespace` label would clash with the one Prometheus
gives the operator pod's own series.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from imagepipe.exposition import RESOURCE_LABEL

from .backend import QueueDepth

DEFAULT_PORT = 9102
QUEUE_STATES = ("visible", "in_flight", "delayed")


@dataclass
class OperatorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # pipeline → the reason label of its current desired-replicas series.
    _reasons: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.queue = Gauge(
            "imagepipe_queue_messages",
            "Messages in the job queue by state",
            [RESOURCE_LABEL, "state"],
            registry=r,
        )
        self.dlq = Gauge(
            "imagepipe_dlq_messages", "Messages in the dead-letter queue", [RESOURCE_LABEL], registry=r
        )
        self.desired = Gauge(
            "imagepipe_autoscaler_desired_replicas",
            "Consumer replicas the autoscaler decided, and why",
            [RESOURCE_LABEL, "reason"],
            registry=r,
        )
        self.service_time = Gauge(
            "imagepipe_autoscaler_service_time_seconds",
            "Smoothed per-image service time the autoscaler used",
            [RESOURCE_LABEL],
            registry=r,
        )
        self.arrival_rate = Gauge(
            "imagepipe_autoscaler_arrival_rate",
            "Smoothed job arrivals per second the autoscaler used",
            [RESOURCE_LABEL],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "imagepipe_operator_reconcile_errors",
            "Failed reconciliations and autoscaler loops, by reason",
            [RESOURCE_LABEL, "reason"],
            registry=r,
        )

    def record_queue(self, pipeline: str, depth: QueueDepth) -> None:
        for state, value in zip(QUEUE_STATES, (depth.visible, depth.in_flight, depth.delayed), strict=True):
            self.queue.labels(pipeline, state).set(value)
        self.dlq.labels(pipeline).set(depth.dead_letter)

    def record_decision(
        self, pipeline: str, replicas: int, reason: str, service_seconds: float, arrival_rate: float
    ) -> None:
        old = self._reasons.get(pipeline)
        if old is not None and old != reason:
            self.desired.remove(pipeline, old)
        self._reasons[pipeline] = reason
        self.desired.labels(pipeline, reason).set(replicas)
        self.service_time.labels(pipeline).set(service_seconds)
        self.arrival_rate.labels(pipeline).set(arrival_rate)

    def record_error(self, pipeline: str, reason: str) -> None:
        self.reconcile_errors.labels(pipeline, reason).inc()

    def forget(self, pipeline: str) -> None:
        """Drop a deleted pipeline's gauges (its error counter stays: counters only grow)."""
        for state in QUEUE_STATES:
            _remove(self.queue, pipeline, state)
        _remove(self.dlq, pipeline)
        reason = self._reasons.pop(pipeline, None)
        if reason is not None:
            _remove(self.desired, pipeline, reason)
        _remove(self.service_time, pipeline)
        _remove(self.arrival_rate, pipeline)


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


class MetricsServer:
    """`GET /metrics` of one registry on HOST:PORT (port 0: any free port, see `port`)."""

    def __init__(self, metrics: OperatorMetrics, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        self.metrics, self.host, self.requested_port = metrics, host, port
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.requested_port).start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, _: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
