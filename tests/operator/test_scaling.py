"""The autoscaler loop's pure parts: parameters, memory, inputs, status, pod
targets, Prometheus queries, and the operator's own metrics."""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client import generate_latest

from imagepipe.operator.autoscaling.consumer_metrics import Counts
from imagepipe.operator.autoscaling.inputs import (
    ConsumerReading,
    Memory,
    Replicas,
    last_scaling,
    memory_from_status,
    memory_to_status,
    params_for,
    scaling_inputs,
    scaling_status,
)
from imagepipe.operator.autoscaling.observe import counts_from_results, prometheus_queries, ready_targets
from imagepipe.operator.autoscaling.policy import ScalerState, desired_replicas
from imagepipe.operator.backend import QueueDepth
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.metrics import OperatorMetrics

DEPTH = QueueDepth(visible=200, in_flight=4, delayed=1, dead_letter=3)
LATENCY = ((1.0, 10.0), (2.5, 90.0), (30.0, 99.0), (math.inf, 100.0))


def test_params_follow_the_spec(minimal: dict[str, Any]) -> None:
    minimal["spec"]["scaling"] = {"minReplicas": 2, "maxReplicas": 9, "slotsPerPod": 4, "burstFactor": 5}
    minimal["spec"]["slo"] = {"latencySeconds": 60}
    params = params_for(parse_imagepipeline(minimal), 7.5)
    assert (params.min_replicas, params.max_replicas, params.slots_per_pod) == (2, 9, 4)
    assert params.objective_seconds == 60 and params.burst_factor == 5
    assert params.detection_seconds == 7.5 and params.initial_service_seconds == 0.25


def test_memory_survives_a_round_trip_through_status() -> None:
    memory = Memory(
        scaler=ScalerState(rate=3.5, service_seconds=0.3, history=((100.0, 4), (115.0, 5))),
        backlog=17,
        time=115.0,
    )
    restored = memory_from_status(memory_to_status(memory))
    assert restored.scaler == memory.scaler
    assert (restored.backlog, restored.time, restored.scraped) == (17, 115.0, False)


@pytest.mark.parametrize("saved", [None, "x", {"history": [["a", 1]]}, {"backlog": "many"}])
def test_unreadable_memory_starts_afresh(saved: Any) -> None:
    assert memory_from_status(saved) == Memory()


def test_arrivals_balance_the_queue_against_finished_jobs() -> None:
    memory = Memory(backlog=100, time=1000.0)
    reading = ConsumerReading(tick=Counts(finished=45, busy_seconds=9, started=45), window=Counts())
    inputs = scaling_inputs(1015.0, DEPTH, reading, Replicas(current=2, ready=2), memory)
    # (205 − 100 + 45) / 15 s
    assert inputs.arrival_rate == pytest.approx(10.0)
    assert inputs.interval_seconds == 15.0 and inputs.service_seconds == pytest.approx(0.2)
    assert (inputs.visible, inputs.in_flight) == (201, 4)


def test_unknown_arrivals_keep_the_remembered_rate() -> None:
    memory = Memory(scaler=ScalerState(rate=2.5), backlog=None, time=None)
    reading = ConsumerReading(tick=None, window=Counts())
    inputs = scaling_inputs(1015.0, DEPTH, reading, Replicas(1, 1), memory)
    assert inputs.arrival_rate == 2.5 and inputs.service_seconds is None


def test_status_reports_the_decision(minimal: dict[str, Any]) -> None:
    p = parse_imagepipeline(minimal)
    reading = ConsumerReading(tick=None, window=Counts(failed=0.0, latency=LATENCY))
    inputs = scaling_inputs(1015.0, DEPTH, reading, Replicas(1, 1), Memory())
    decision = desired_replicas(inputs, params_for(p, 15), ScalerState())
    status = scaling_status(p, decision, Replicas(1, 1), reading, DEPTH)
    assert status["desiredReplicas"] == decision.replicas > 1
    assert status["backlog"] == 205 and status["readyReplicas"] == 1 and status["deadLetterMessages"] == 3
    assert status["withinObjective"] == pytest.approx(0.99)
    assert 1.0 < status["p95LatencySeconds"] < 30.0
    assert status["scalingReason"] == decision.reason == "backlog"
    changed = last_scaling(None, 1, decision, "2025-01-01T00:00:00Z")
    assert changed == {
        "time": "2025-01-01T00:00:00Z",
        "from": 1,
        "to": decision.replicas,
        "reason": "backlog",
    }
    assert last_scaling(changed, decision.replicas, decision, "later") is changed


def test_status_leaves_out_latency_without_jobs(minimal: dict[str, Any]) -> None:
    p = parse_imagepipeline(minimal)
    reading = ConsumerReading(tick=None, window=Counts())
    decision = desired_replicas(
        scaling_inputs(1.0, QueueDepth(0, 0, 0, 0), reading, Replicas(1, 1), Memory()),
        params_for(p, 15),
        ScalerState(),
    )
    status = scaling_status(p, decision, Replicas(1, 1), reading, QueueDepth(0, 0, 0, 0))
    assert "p95LatencySeconds" not in status and "withinObjective" not in status
    assert status["desiredReplicas"] == 1 and status["scalingReason"] == "min"


def pod(name: str, ready: bool = True, ip: str = "10.0.0.5", instance: str = "photos") -> dict[str, Any]:
    labels = {"app.kubernetes.io/instance": instance, "app.kubernetes.io/component": "consumer"}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"ports": [{"name": "metrics", "containerPort": 9999}]}]},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": str(ready)}]},
    }


def test_ready_targets_only_ready_pods_of_this_pipeline() -> None:
    wanted = {"app.kubernetes.io/instance": "photos", "app.kubernetes.io/component": "consumer"}
    pods = {
        "items": [
            pod("a"),
            pod("b", ready=False),
            pod("c", instance="other"),
            pod("d", ip="fd00::1"),
        ]
    }
    assert ready_targets(pods, wanted) == {
        "a": "http://10.0.0.5:9999/metrics",
        "d": "http://[fd00::1]:9999/metrics",
    }


def test_prometheus_queries_and_results(minimal: dict[str, Any]) -> None:
    queries = prometheus_queries(parse_imagepipeline(minimal), 60)
    assert 'imagepipeline="default/photos"' in queries["finished"] and "[60s]" in queries["finished"]
    assert 'stage="download"' in queries["started"] and "by (le)" in queries["latency"]
    results = {
        "finished": [{"metric": {}, "value": [0, "30"]}],
        "latency": [
            {"metric": {"le": "+Inf"}, "value": [0, "20"]},
            {"metric": {"le": "30.0"}, "value": [0, "19"]},
        ],
    }
    counts = counts_from_results(results)
    assert counts.finished == 30 and counts.failed == 0
    assert counts.latency == ((30.0, 19.0), (math.inf, 20.0))


def test_operator_metrics_keep_one_reason_series() -> None:
    metrics = OperatorMetrics()
    metrics.record_queue("default/photos", DEPTH)
    metrics.record_decision("default/photos", 3, "backlog", 0.25, 4.0)
    metrics.record_decision("default/photos", 2, "stabilising", 0.25, 4.0)
    metrics.record_error("default/photos", "InvalidSpec")
    text = generate_latest(metrics.registry).decode()
    assert 'imagepipe_queue_messages{imagepipeline="default/photos",state="in_flight"} 4.0' in text
    assert 'imagepipe_dlq_messages{imagepipeline="default/photos"} 3.0' in text
    assert (
        'imagepipe_autoscaler_desired_replicas{imagepipeline="default/photos",reason="stabilising"} 2.0'
        in text
    )
    assert 'reason="backlog"' not in text
    assert (
        'imagepipe_operator_reconcile_errors_total{imagepipeline="default/photos",reason="InvalidSpec"} 1.0'
        in text
    )
    metrics.forget("default/photos")
    assert "imagepipe_queue_messages{" not in generate_latest(metrics.registry).decode()
