"""The deliverer's Prometheus metrics (docs/design.md, "Metrics"), in a registry
of their own; every outcome's series exists from start-up, so rate() sees the
first of each."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from imagepipe.webhooks.outcome import OUTCOMES
from imagepipe.webhooks.signingkeys import RELOAD_RESULTS

# One attempt: bounded by IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS (at most 60 s).
ATTEMPT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# State change to delivered: seconds when the receiver is up, up to the horizon when it was not.
AGE_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600, 13 * 24 * 3600)


@dataclass
class DelivererMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.deliveries = Counter(
            "imagepipe_webhook_deliveries",
            "Event messages settled, by outcome (delivered, retried, abandoned, duplicate, ...)",
            ["outcome"],
            registry=r,
        )
        self.attempt_duration = Histogram(
            "imagepipe_webhook_attempt_duration_seconds",
            "One POST to the receiver, connection to the last byte read",
            buckets=ATTEMPT_BUCKETS,
            registry=r,
        )
        self.event_age = Histogram(
            "imagepipe_webhook_event_age_seconds",
            "The event's state change to its delivery (the receiver's 2xx)",
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "imagepipe_webhook_deliveries_in_flight", "Event messages being delivered now", registry=r
        )
        self.concurrency = Gauge(
            "imagepipe_webhook_concurrency", "Deliveries this deliverer runs at once", registry=r
        )
        self.polls = Counter(
            "imagepipe_webhook_polls", "Receives from the delivery queue, failed ones included", registry=r
        )
        self.poll_errors = Counter(
            "imagepipe_webhook_poll_errors", "Failed receives from the delivery queue", registry=r
        )
        self.secret_reloads = Counter(
            "imagepipe_webhook_secret_reloads",
            "Reads of IMAGEPIPE_WEBHOOK_SECRET_FILE after it changed, and again after a backoff "
            "while the last read failed, by result (loaded; failed: unreadable or invalid, the "
            "last good secrets go on signing)",
            ["result"],
            registry=r,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        for result in RELOAD_RESULTS:
            self.secret_reloads.labels(result)

    def secret_reload(self, result: str) -> None:
        self.secret_reloads.labels(result).inc()
