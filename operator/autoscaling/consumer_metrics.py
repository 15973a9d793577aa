"""The consumers' own metrics as numbers the autoscaler uses (pure, no I/O).

Each consumer pod's `/metrics` text becomes one cumulative `Counts`
(docs/design.md's names, label names as in consumer/metrics.py):

* `finished`: `imagepipe_jobs_total`, every outcome (each one took a message
  off the queue: completed, failed, duplicate);
* `failed`: the same with `outcome="failed"` (bad for the SLI);
* `busy_seconds` and `started`: the sum of `imagepipe_stage_duration_seconds`
  over every stage, and the number of `download` observations (one per job
  attempt), so `busy_seconds / started` is the time a slot spends per image;
* `latency`: `imagepipe_job_latency_seconds` buckets (cumulative, by `le`).

Counters are summed over every `pipeline` label: the pods of one
ImagePipeline serve only it. Between two scrapes `pod_deltas` turns the
cumulative counts into what happened in the interval, per pod, so pods that
start, stop or restart (counters back to zero) do not distort the sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

JOBS = "imagepipe_jobs_total"
STAGE_SUM = "imagepipe_stage_duration_seconds_sum"
STAGE_COUNT = "imagepipe_stage_duration_seconds_count"
LATENCY_BUCKET = "imagepipe_job_latency_seconds_bucket"
FIRST_STAGE = "download"

Buckets = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Counts:
    """Job counters of one pod or a sum of pods; cumulative or a delta."""

    finished: float = 0.0
    failed: float = 0.0
    busy_seconds: float = 0.0
    started: float = 0.0
    # (upper bound, cumulative count) sorted by bound, the last one +Inf.
    latency: Buckets = field(default_factory=tuple)

    def __add__(self, other: Counts) -> Counts:
        return self._combine(other, 1.0)

    def __sub__(self, other: Counts) -> Counts:
        return self._combine(other, -1.0)

    def _combine(self, other: Counts, sign: float) -> Counts:
        bounds = sorted({le for le, _ in self.latency} | {le for le, _ in other.latency})
        mine, theirs = dict(self.latency), dict(other.latency)
        return Counts(
            finished=self.finished + sign * other.finished,
            failed=self.failed + sign * other.failed,
            busy_seconds=self.busy_seconds + sign * other.busy_seconds,
            started=self.started + sign * other.started,
            latency=tuple((le, mine.get(le, 0.0) + sign * theirs.get(le, 0.0)) for le in bounds),
        )

    def scaled(self, factor: float) -> Counts:
        """Every count times `factor` (a rate over one window → the count over another)."""
        latency = tuple((le, n * factor) for le, n in self.latency)
        return Counts(
            self.finished * factor,
            self.failed * factor,
            self.busy_seconds * factor,
            self.started * factor,
            latency,
        )

    @property
    def service_seconds(self) -> float | None:
        """Mean slot time per image; None when no job started."""
        return self.busy_seconds / self.started if self.started > 0 else None

    def is_reset_of(self, earlier: Counts) -> bool:
        """Whether these counts went backwards from `earlier` (the process restarted)."""
        return self.finished < earlier.finished or self.started < earlier.started


def parse_counts(text: str) -> Counts:
    """One pod's `/metrics` text (Prometheus text format) → cumulative Counts."""
    finished = failed = busy = started = 0.0
    latency: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == JOBS:
                finished += value
                failed += value if labels.get("outcome") == "failed" else 0.0
            elif name == STAGE_SUM:
                busy += value
            elif name == STAGE_COUNT and labels.get("stage") == FIRST_STAGE:
                started += value
            elif name == LATENCY_BUCKET:
                le = float(labels["le"])
                latency[le] = latency.get(le, 0.0) + value
    return Counts(finished, failed, busy, started, tuple(sorted(latency.items())))


def total(counts: Iterable[Counts]) -> Counts:
    result = Counts()
    for c in counts:
        result = result + c
    return result


def pod_deltas(previous: Mapping[str, Counts], current: Mapping[str, Counts], *, baseline: bool) -> Counts:
    """What all pods did since the previous scrape, summed.

    A pod seen before contributes its increase (its whole count after a
    restart). A pod not seen before contributes everything it counted (it
    started within the interval), except on a `baseline` scrape (the first
    one of this operator process), when old pods' totals are history.
    """
    deltas = []
    for pod, now in current.items():
        before = previous.get(pod)
        if before is None:
            if not baseline:
                deltas.append(now)
        elif now.is_reset_of(before):
            deltas.append(now)
        else:
            deltas.append(now - before)
    return total(deltas)


def quantile(buckets: Buckets, q: float) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated within its
    bucket as PromQL's histogram_quantile does; None without observations.
    A quantile in the +Inf bucket is reported as the largest finite bound."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def within_objective(counts: Counts, objective: float) -> float | None:
    """The SLI: jobs completed within `objective` (a bucket bound) over all
    finished jobs, failed ones counting as bad; None when none finished."""
    cumulative = dict(counts.latency)
    completed = counts.latency[-1][1] if counts.latency else 0.0
    finished = completed + counts.failed
    if finished <= 0:
        return None
    return min(1.0, max(0.0, cumulative.get(float(objective), 0.0) / finished))
