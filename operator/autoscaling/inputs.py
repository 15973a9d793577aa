"""The autoscaler's pure parts around `autoscale.desired_replicas`: the
policy's parameters from a pipeline's spec, the loop's memory (in memory per
pipeline, and the part that must survive a restart in `status.autoscaler`),
the inputs of one tick, and the status it writes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..backend import QueueDepth
from ..imagepipeline import ImagePipeline
from .consumer_metrics import Counts, pod_deltas, quantile, total, within_objective
from .policy import Decision, ScalerState, ScalingInputs, ScalingParams, arrival_rate_from_counts

# The latency histogram behind p95 and withinObjective covers this much time.
WINDOW_SECONDS = 300.0


def params_for(p: ImagePipeline, interval_seconds: float) -> ScalingParams:
    """The policy's parameters: the spec's, the loop period as detection delay."""
    scaling = p.scaling
    return ScalingParams(
        objective_seconds=p.slo.latency_seconds,
        slots_per_pod=scaling.slots_per_pod,
        startup_seconds=scaling.pod_startup_seconds,
        detection_seconds=float(interval_seconds),
        target_utilisation=scaling.target_utilisation,
        burst_factor=scaling.burst_factor,
        stabilisation_seconds=float(scaling.scale_down_stabilisation_seconds),
        min_replicas=scaling.min_replicas,
        max_replicas=scaling.max_replicas,
        initial_service_seconds=scaling.expected_service_seconds,
    )


@dataclass(frozen=True)
class ConsumerReading:
    """What the consumers did: `tick` since the previous loop (None when not
    known yet: the first scrape after a start only sets a baseline), and
    `window` over the last WINDOW_SECONDS (latency histogram, failures)."""

    tick: Counts | None
    window: Counts


@dataclass
class Memory:
    """One pipeline's loop memory. `scaler`, `backlog`, `time` and `engine` are
    kept in status; the per-pod counters and the latency window only in memory."""

    scaler: ScalerState = field(default_factory=ScalerState)
    backlog: int | None = None  # queue total at the previous loop
    time: float | None = None  # wall-clock seconds of the previous loop
    engine: str | None = None  # spec.scaling.engine at the previous loop
    pods: dict[str, Counts] = field(default_factory=dict)
    scraped: bool = False  # whether `pods` holds a previous scrape
    window: list[tuple[float, Counts]] = field(default_factory=list)

    def add_to_window(self, now: float, delta: Counts) -> Counts:
        """Remember this loop's delta; the sum of those within WINDOW_SECONDS."""
        self.window = [(t, c) for t, c in self.window if now - t < WINDOW_SECONDS] + [(now, delta)]
        return total(c for _, c in self.window)


def read_scrape(memory: Memory, pods: dict[str, Counts], now: float) -> ConsumerReading:
    """One scrape of every ready pod (cumulative counts by pod) → what they did
    since the previous scrape (None on the first: it only sets the baseline)
    and over the window. Updates `memory`'s per-pod counts and window."""
    baseline = not memory.scraped
    delta = pod_deltas(memory.pods, pods, baseline=baseline)
    memory.pods, memory.scraped = pods, True
    window = memory.add_to_window(now, delta)
    return ConsumerReading(None if baseline else delta, window)


def memory_to_status(memory: Memory) -> dict[str, Any]:
    s = memory.scaler
    return {
        "rate": s.rate,
        "serviceSeconds": s.service_seconds,
        "history": [[t, r] for t, r in s.history],
        "backlog": memory.backlog,
        "time": memory.time,
        "engine": memory.engine,
    }


def memory_from_status(saved: Any) -> Memory:
    """The memory a previous operator process left in status (empty if none or unreadable)."""
    if not isinstance(saved, dict):
        return Memory()
    try:
        scaler = ScalerState(
            rate=_float(saved.get("rate")),
            service_seconds=_float(saved.get("serviceSeconds")),
            history=tuple((float(t), int(r)) for t, r in saved.get("history") or ()),
        )
        backlog = saved.get("backlog")
        return Memory(
            scaler=scaler,
            backlog=int(backlog) if backlog is not None else None,
            time=_float(saved.get("time")),
            engine=str(saved["engine"]) if saved.get("engine") else None,
        )
    except (TypeError, ValueError):
        return Memory()


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


@dataclass(frozen=True)
class Replicas:
    """The consumer Deployment's `spec.replicas` and `status.readyReplicas`."""

    current: int
    ready: int


def scaling_inputs(
    now: float, depth: QueueDepth, reading: ConsumerReading, replicas: Replicas, memory: Memory
) -> ScalingInputs:
    """One loop's observation. Arrivals balance the queue total against jobs
    finished; until both are known, the remembered rate stands in."""
    interval = now - memory.time if memory.time is not None else 0.0
    if memory.backlog is None or reading.tick is None or interval <= 0:
        rate = memory.scaler.rate or 0.0
    else:
        rate = arrival_rate_from_counts(memory.backlog, depth.total, int(reading.tick.finished), interval)
    return ScalingInputs(
        now=now,
        visible=depth.visible + depth.delayed,
        in_flight=depth.in_flight,
        arrival_rate=rate,
        interval_seconds=interval if interval > 0 else 1.0,
        service_seconds=reading.tick.service_seconds if reading.tick else None,
        current_replicas=replicas.current,
        ready_replicas=replicas.ready,
    )


def last_scaling(previous: Any, current: int, decision: Decision, when: str) -> Any:
    """The last change of replicas and why; unchanged while the count stays."""
    if decision.replicas == current:
        return previous
    return {"time": when, "from": current, "to": decision.replicas, "reason": decision.reason}


def scaling_status(
    p: ImagePipeline, decision: Decision, replicas: Replicas, reading: ConsumerReading, depth: QueueDepth
) -> dict[str, Any]:
    """The status fields of one loop (without lastScaling and the memory)."""
    status: dict[str, Any] = {
        "desiredReplicas": decision.replicas,
        "readyReplicas": replicas.ready,
        "backlog": depth.total,
        "deadLetterMessages": depth.dead_letter,
        "arrivalRate": round(decision.arrival_rate, 4),
        "serviceTimeSeconds": round(decision.service_seconds, 4),
        "scalingReason": decision.reason,
    }
    p95 = quantile(reading.window.latency, 0.95)
    within = within_objective(reading.window, p.slo.latency_seconds)
    if p95 is not None:
        status["p95LatencySeconds"] = round(p95, 3)
    if within is not None:
        status["withinObjective"] = round(within, 5)
    return status


def take_over(memory: Memory, engine: str, current: int, now: float) -> Memory:
    """After a switch of engine (keda ↔ builtin, or a first loop), the running
    count enters the scale-down window as a recommendation: the loop starts
    from what runs now and lowers nothing for `stabilisation_seconds`."""
    if memory.engine == engine:
        return memory
    return replace(memory, scaler=replace(memory.scaler, history=((now, current),)), engine=engine)


def remember(memory: Memory, decision: Decision, depth: QueueDepth, now: float) -> Memory:
    return replace(memory, scaler=decision.state, backlog=depth.total, time=now)
