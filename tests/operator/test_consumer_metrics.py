"""Consumer metric text → the autoscaler's numbers (pure functions)."""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest

from imagepipe.consumer.metrics import Metrics
from imagepipe.operator.autoscaling.consumer_metrics import (
    Counts,
    parse_counts,
    pod_deltas,
    quantile,
    within_objective,
)


def consumer_text(completed: int, failed: int = 0, latency: float = 2.0, stage_seconds: float = 0.1) -> str:
    """What a real consumer exports (its own Metrics class) after these jobs."""
    m = Metrics()
    for _ in range(completed):
        m.jobs.labels("default", "completed", "none").inc()
        m.job_latency.labels("default").observe(latency)
    for _ in range(failed):
        m.jobs.labels("default", "failed", "corrupt_image").inc()
    for _ in range(completed + failed):
        for stage in ("download", "decode", "resize", "encode", "upload"):
            m.stage_duration.labels(stage).observe(stage_seconds)
    return generate_latest(m.registry).decode()


def test_parses_the_consumers_own_export() -> None:
    counts = parse_counts(consumer_text(completed=8, failed=2, latency=2.0, stage_seconds=0.05))
    assert counts.finished == 10 and counts.failed == 2 and counts.started == 10
    assert counts.service_seconds == pytest.approx(0.25)  # five stages of 0.05 s
    assert dict(counts.latency)[2.5] == 8 and dict(counts.latency)[1.0] == 0
    assert math.isinf(counts.latency[-1][0]) and counts.latency[-1][1] == 8


def test_sums_every_pipeline_label() -> None:
    text = (
        "# TYPE imagepipe_jobs counter\n"
        'imagepipe_jobs_total{pipeline="a",outcome="completed",code="none"} 3\n'
        'imagepipe_jobs_total{pipeline="b",outcome="completed",code="none"} 4\n'
        'imagepipe_jobs_total{pipeline="b",outcome="duplicate",code="none"} 1\n'
    )
    counts = parse_counts(text)
    assert counts.finished == 8 and counts.failed == 0
    assert counts.service_seconds is None  # no stage observed


def test_unrelated_and_empty_text() -> None:
    assert parse_counts("") == Counts()
    assert parse_counts("# TYPE other gauge\nother 5\n") == Counts()


def cumulative(finished: float, started: float = 0.0, busy: float = 0.0) -> Counts:
    return Counts(finished=finished, started=started, busy_seconds=busy)


def test_pod_deltas_across_restarts_and_new_pods() -> None:
    before = {"a": cumulative(100, 100, 25), "b": cumulative(50, 50, 10), "gone": cumulative(7, 7, 1)}
    after = {"a": cumulative(130, 130, 32.5), "b": cumulative(5, 5, 1), "new": cumulative(2, 2, 0.5)}
    delta = pod_deltas(before, after, baseline=False)
    # a: +30; b restarted: its 5; new pod: its 2; a pod that went away adds nothing.
    assert delta.finished == 37 and delta.started == 37
    assert delta.busy_seconds == pytest.approx(7.5 + 1 + 0.5)


def test_first_scrape_is_only_a_baseline() -> None:
    assert pod_deltas({}, {"a": cumulative(1000, 1000, 250)}, baseline=True) == Counts()


BUCKETS = ((1.0, 0.0), (2.5, 50.0), (5.0, 90.0), (30.0, 100.0), (math.inf, 100.0))


def test_quantile_interpolates_like_promql() -> None:
    assert quantile(BUCKETS, 0.5) == pytest.approx(2.5)
    assert quantile(BUCKETS, 0.95) == pytest.approx(5.0 + 25.0 * 5 / 10)
    assert quantile(BUCKETS, 0.25) == pytest.approx(1.0 + 1.5 * 25 / 50)


def test_quantile_edges() -> None:
    assert quantile((), 0.95) is None
    assert quantile(((1.0, 0.0), (math.inf, 0.0)), 0.95) is None
    assert quantile(((1.0, 1.0), (30.0, 1.0), (math.inf, 10.0)), 0.95) == 30.0  # beyond the last bound


def test_within_objective_counts_failures_as_bad() -> None:
    counts = Counts(failed=0.0, latency=BUCKETS)
    assert within_objective(counts, 30) == 1.0
    assert within_objective(counts, 5) == pytest.approx(0.9)
    assert within_objective(Counts(failed=25.0, latency=BUCKETS), 30) == pytest.approx(0.8)
    assert within_objective(Counts(), 30) is None


def test_counts_arithmetic_and_scaling() -> None:
    a = Counts(finished=4, latency=((1.0, 1.0), (math.inf, 4.0)))
    b = Counts(finished=1, latency=((1.0, 1.0), (math.inf, 1.0)))
    assert (a - b).latency == ((1.0, 0.0), (math.inf, 3.0))
    assert (a + b).finished == 5
    assert a.scaled(0.5).latency == ((1.0, 0.5), (math.inf, 2.0))
