"""The scaling policies the simulator compares, as engine controllers.

* :class:`SloPolicy`: ours (`policy.desired_replicas`), fed by the loop's
  own `inputs` code from the engine's counters.
* :class:`KedaQueueLength`: KEDA's aws-sqs-queue scaler behind the HPA:
  ``desired = ceil((visible + in_flight) / queueLength)`` with the HPA's
  15 s sync, 10 % tolerance and default behaviour (up by max(100 %, 4 pods)
  per 15 s, down to the largest recommendation of the last 300 s).
* :class:`FixedFleet`: a constant count, sized for the trace's peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...backend import QueueDepth
from ..consumer_metrics import Counts
from ..inputs import Memory, Replicas, read_scrape, remember, scaling_inputs
from ..policy import Decision, ScalingParams, desired_replicas
from .engine import Observation

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
    """Our policy, fed through the operator's own inputs code: each observation
    becomes the queue's depth, one scrape of the fleet's counters and the
    Deployment's replicas, and goes through `read_scrape`, `scaling_inputs`
    and `remember` exactly as in the loop (the first scrape is a baseline, as
    after an operator start; delayed messages count as waiting)."""

    def __init__(self, params: ScalingParams) -> None:
        self.params = params
        self.memory = Memory()
        self.decisions: list[Decision] = []

    def initial_replicas(self) -> int:
        return self.params.min_replicas

    def decide(self, obs: Observation) -> int:
        depth = QueueDepth(visible=obs.visible, in_flight=obs.in_flight, delayed=0, dead_letter=0)
        # The engine's counters are the fleet's: one "pod" whose counts only grow.
        fleet = Counts(
            finished=obs.completed_total,
            busy_seconds=obs.service_seconds_total,
            started=obs.completed_total,
        )
        reading = read_scrape(self.memory, {"fleet": fleet}, obs.now)
        replicas = Replicas(current=obs.current_replicas, ready=obs.ready_replicas)
        inputs = scaling_inputs(obs.now, depth, reading, replicas, self.memory)
        decision = desired_replicas(inputs, self.params, self.memory.scaler)
        self.memory = remember(self.memory, decision, depth, obs.now)
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
