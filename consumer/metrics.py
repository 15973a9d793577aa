"""The consumer's Prometheus metrics (docs/design.md, "Metrics"), in a registry of
their own so that tests and several consumers in one process do not clash."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from imagepipe.errors import IMAGE_ERROR_CODES
from imagepipe.jobstore.conflicts import conflicts_counter
from imagepipe.slo import LATENCY_BUCKETS
from imagepipe.webhooks.outbox import events_counter

STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STAGES = ("download", "decode", "resize", "encode", "upload")
DEAD_LETTER_RESULTS = ("failed", "already_final", "unparseable", "newer_version")
# The codes a job can fail with. Their series exist from start-up: rate() and
# increase() cannot see the event that creates a series, so a failure code
# seen first would never count against the SLI.
FAILURE_CODES = (
    *IMAGE_ERROR_CODES,
    "not_found",
    "retries_exhausted",
    "internal",
)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.job_latency = Histogram(
            "imagepipe_job_latency_seconds",
            "Enqueue to completed, per completed job (failed jobs count in imagepipe_jobs_total)",
            ["pipeline"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "imagepipe_queue_wait_seconds",
            "SQS SentTimestamp to received",
            ["pipeline"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "imagepipe_stage_duration_seconds",
            "Time per processing stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.jobs = Counter(
            "imagepipe_jobs",
            "Jobs finished by outcome and error code",
            ["pipeline", "outcome", "code"],
            registry=r,
        )
        self.in_flight = Gauge("imagepipe_jobs_in_flight", "Jobs being processed now", registry=r)
        self.slots = Gauge("imagepipe_worker_slots", "Concurrent jobs this consumer runs", registry=r)
        self.received = Counter("imagepipe_messages_received", "Messages received from SQS", registry=r)
        self.deleted = Counter("imagepipe_messages_deleted", "Messages deleted from SQS", registry=r)
        self.retried = Counter(
            "imagepipe_messages_retried",
            "Messages handed back to SQS for a later receive, by reason",
            ["reason"],
            registry=r,
        )
        self.deadline_misses = Counter(
            "imagepipe_deadline_misses", "Jobs completed after their objective", ["pipeline"], registry=r
        )
        self.poll_errors = Counter("imagepipe_poll_errors", "Failed SQS receives", registry=r)
        self.status_conflicts = conflicts_counter(r)
        self.dead_letters = Counter(
            "imagepipe_dead_letters_swept",
            "Dead-lettered messages settled by the sweeper, by result",
            ["result"],
            registry=r,
        )
        self.webhook_events = events_counter(r)
        for result in DEAD_LETTER_RESULTS:
            self.dead_letters.labels(result)
        for stage in STAGES:
            self.stage_duration.labels(stage)

    def prepare(self, pipelines: Iterable[str]) -> None:
        """Create every per-pipeline series at zero, so the first job counts too."""
        for pipeline in pipelines:
            self.job_latency.labels(pipeline)
            self.queue_wait.labels(pipeline)
            self.deadline_misses.labels(pipeline)
            self.jobs.labels(pipeline, "completed", "none")
            for code in FAILURE_CODES:
                self.jobs.labels(pipeline, "failed", code)
