"""The scaling policies the simulator compares, as engine controllers.

* :class:`SloPolicy`: ours (:func:`imagepipe.operator.autoscale.desired_replicas`),
  fed the way the operator feeds it: deltas of observed counters.
* :class:`KedaQueueLength`: KEDA's aws-sqs-queue scaler behind the HPA:
  ``desired = ceil((visible + in_flight) / queueLength)`` with the HPA's
  15 s sync, 10 % tolerance and default behaviour (up by max(100 %, 4 pods)
  per 15 s, down to the largest recommendation of the last 300 s).
* :class:`FixedFleet`: a constant count, sized for the trace's peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from imagepipe.operator.autoscale import (
    Decision,
    ScalerState,
    ScalingInputs,
    ScalingParams,
    arrival_rate_from_counts,
    desired_replicas,
)
from imagepipe.operator.simulate_engine import Observation

__all__ = ["FixedFleet", "KedaQueueLength", "SloPolicy", "fixed_fleet_size"]


def fixed_fleet_size(peak_rate: float, service: float, slots: int, rho: float = 0.8) -> int:
    """Pods for the peak rate at utilisation ``rho`` (Little's law)."""
    return max(1, math.ceil(peak_rate * service / (slots * rho) - 1e-9))


@dataclass
class FixedFleet:
    """Never changes its replica count."""

    replicas: int

    def initial_replicas(self) -> int:
        return self.replicas

    def decide(self, obs: Observation) -> int:
        return self.replicas


class SloPolicy:
    """Our policy, fed from counter deltas like the real operator."""

    def __init__(self, params: ScalingParams) -> None:
        self.params = params
        self.state = ScalerState()
        self.last: Observation | None = None
        self.decisions: list[Decision] = []

    def initial_replicas(self) -> int:
        return self.params.min_replicas

    def _inputs(self, obs: Observation) -> ScalingInputs:
        prev = self.last
        backlog = obs.visible + obs.in_flight
        if prev is None:
            dt, prev_backlog, done, spent = obs.now, 0, obs.completed_total, 0.0
        else:
            dt = obs.now - prev.now
            prev_backlog = prev.visible + prev.in_flight
            done = obs.completed_total - prev.completed_total
            spent = obs.service_seconds_total - prev.service_seconds_total
        if prev is None:
            spent = obs.service_seconds_total
        return ScalingInputs(
            now=obs.now,
            visible=obs.visible,
            in_flight=obs.in_flight,
            arrival_rate=arrival_rate_from_counts(prev_backlog, backlog, done, dt),
            interval_seconds=dt,
            service_seconds=spent / done if done else None,
            current_replicas=obs.current_replicas,
            ready_replicas=obs.ready_replicas,
        )

    def decide(self, obs: Observation) -> int:
        decision = desired_replicas(self._inputs(obs), self.params, self.state)
        self.state = decision.state
        self.last = obs
        self.decisions.append(decision)
        return decision.replicas


class KedaQueueLength:
    """KEDA's SQS queue-length target as the HPA applies it."""

    def __init__(
        self,
        queue_length: float,
        min_replicas: int = 1,
        max_replicas: int = 200,
        tolerance: float = 0.1,
        down_window: float = 300.0,
    ) -> None:
        self.queue_length = queue_length
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.tolerance = tolerance
        self.down_window = down_window
        self.history: list[tuple[float, int]] = []

    def initial_replicas(self) -> int:
        return self.min_replicas

    def _recommend(self, metric: int, current: int) -> int:
        ratio = metric / (max(current, 1) * self.queue_length)
        in_band = abs(ratio - 1.0) <= self.tolerance
        rec = current if in_band else math.ceil(metric / self.queue_length)
        return min(max(rec, self.min_replicas), self.max_replicas)

    def decide(self, obs: Observation) -> int:
        current = obs.current_replicas
        rec = self._recommend(obs.visible + obs.in_flight, current)
        self.history = [(t, r) for t, r in self.history if obs.now - t < self.down_window]
        self.history.append((obs.now, rec))
        if rec > current:
            return min(rec, max(2 * current, current + 4), self.max_replicas)
        return min(current, max(r for _, r in self.history))
