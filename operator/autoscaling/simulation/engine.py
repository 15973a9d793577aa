"""Discrete-event simulation of the queue, the consumer pods and a scaling loop.

Jobs arrive at pre-drawn times (so every policy meets the same jobs: common
random numbers) into one FIFO queue. Pods have ``slots_per_pod`` slots, become
ready ``startup_seconds`` after they are requested, and take the next job as
soon as a slot frees. A controller is asked every ``tick_seconds`` for a
replica count, seeing only what the real operator can: visible and in-flight
messages, the completion and service-time counters, replica counts.
Scale-down cancels pending pods first, then stops the least busy ready pods,
which finish the jobs they hold before they go (graceful termination).
Pods cost from the moment they are requested until they are gone.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Controller", "Observation", "RunResult", "SimConfig", "run"]

_COMPLETE, _READY, _TICK = 0, 1, 2


@dataclass(frozen=True)
class SimConfig:
    """Fixed parameters of a run (the issue's defaults)."""

    slots_per_pod: int = 2
    startup_seconds: float = 20.0
    tick_seconds: float = 15.0
    max_replicas: int = 200
    objective_seconds: float = 30.0


@dataclass(frozen=True)
class Observation:
    """What a controller sees at a loop: gauges and cumulative counters."""

    now: float
    visible: int
    in_flight: int
    completed_total: int
    service_seconds_total: float
    current_replicas: int
    ready_replicas: int


class Controller(Protocol):
    """A scaling policy under test."""

    def initial_replicas(self) -> int: ...

    def decide(self, obs: Observation) -> int: ...


@dataclass(frozen=True)
class RunResult:
    """Outcome of one run (``latencies``: sorted enqueue-to-done seconds)."""

    jobs: int
    within: float
    p99: float
    mean_wait: float
    pod_seconds: float
    peak_replicas: int
    scale_events: int
    latencies: list[float] = field(default_factory=list, repr=False, compare=False)


class _Pod:
    __slots__ = ("busy", "ready", "requested", "terminating")

    def __init__(self, requested: float, ready: bool) -> None:
        self.requested = requested
        self.ready = ready
        self.busy = 0
        self.terminating = False


class _Sim:
    """Mutable state of one run; see :func:`run`."""

    def __init__(self, cfg: SimConfig, arrivals: list[float], services: list[float]) -> None:
        self.cfg = cfg
        self.arrivals = arrivals
        self.services = services
        self.events: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.pods: dict[int, _Pod] = {}
        self.next_pod = 0
        self.free: list[int] = []  # one pod id per free slot (stale ids skipped)
        self.next_job = 0  # jobs [next_job, next_arrival) are waiting
        self.next_arrival = 0
        self.start = [0.0] * len(arrivals)
        self.finish = [0.0] * len(arrivals)
        self.completed = 0
        self.service_total = 0.0
        self.in_service = 0
        self.pod_seconds = 0.0
        self.peak = 0
        self.scale_events = 0

    def push(self, t: float, kind: int, a: int, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, a, b))

    def counts(self) -> tuple[int, int]:
        """(active replicas, ready replicas), terminating pods excluded."""
        active = ready = 0
        for pod in self.pods.values():
            if not pod.terminating:
                active += 1
                ready += pod.ready
        return active, ready

    def add_pod(self, now: float, ready: bool) -> None:
        pid = self.next_pod
        self.next_pod += 1
        self.pods[pid] = _Pod(now, ready)
        if ready:
            self.free.extend([pid] * self.cfg.slots_per_pod)
        else:
            self.push(now + self.cfg.startup_seconds, _READY, pid)

    def remove_pod(self, now: float, pid: int) -> None:
        pod = self.pods.pop(pid)
        self.pod_seconds += now - pod.requested

    def take_slot(self) -> int:
        """A ready, non-terminating pod with a free slot, or -1."""
        while self.free:
            pid = self.free.pop()
            pod = self.pods.get(pid)
            if pod is not None and pod.ready and not pod.terminating:
                return pid
        return -1

    def dispatch(self, now: float) -> None:
        """Start waiting jobs (FIFO) while slots are free."""
        while self.next_job < self.next_arrival:
            pid = self.take_slot()
            if pid < 0:
                return
            job = self.next_job
            self.next_job += 1
            self.start[job] = now
            self.pods[pid].busy += 1
            self.in_service += 1
            self.push(now + self.services[job], _COMPLETE, pid, job)

    def complete(self, now: float, pid: int, job: int) -> None:
        self.finish[job] = now
        self.completed += 1
        self.in_service -= 1
        self.service_total += self.services[job]
        pod = self.pods[pid]
        pod.busy -= 1
        if pod.terminating:
            if pod.busy == 0:
                self.remove_pod(now, pid)
            return
        self.free.append(pid)
        self.dispatch(now)

    def pod_ready(self, now: float, pid: int) -> None:
        pod = self.pods.get(pid)
        if pod is None or pod.terminating:
            return
        pod.ready = True
        self.free.extend([pid] * self.cfg.slots_per_pod)
        self.dispatch(now)

    def set_replicas(self, now: float, n: int) -> None:
        n = max(0, min(n, self.cfg.max_replicas))
        current, _ = self.counts()
        if n != current:
            self.scale_events += 1
        for _ in range(n - current):
            self.add_pod(now, ready=False)
        if n < current:
            self.shrink(now, current - n)
        self.peak = max(self.peak, n)

    def shrink(self, now: float, count: int) -> None:
        live = [(pid, p) for pid, p in self.pods.items() if not p.terminating]
        # pending pods (newest first), then ready pods holding the fewest jobs
        live.sort(key=lambda item: (item[1].ready, item[1].busy, -item[1].requested))
        for pid, pod in live[:count]:
            pod.terminating = True
            if not pod.ready or pod.busy == 0:
                self.remove_pod(now, pid)

    def observe(self, now: float) -> Observation:
        active, ready = self.counts()
        return Observation(
            now=now,
            visible=self.next_arrival - self.next_job,
            in_flight=self.in_service,
            completed_total=self.completed,
            service_seconds_total=self.service_total,
            current_replicas=active,
            ready_replicas=ready,
        )


def _loop(sim: _Sim, controller: Controller, horizon: float) -> None:
    """Process events in time order until every job is done and the horizon
    has passed (checked at loop ticks, so pods are costed to the horizon)."""
    arrivals, events, n = sim.arrivals, sim.events, len(sim.arrivals)
    while True:
        next_arrival = arrivals[sim.next_arrival] if sim.next_arrival < n else math.inf
        if events and events[0][0] <= next_arrival:
            t, _, kind, a, b = heapq.heappop(events)
            if kind == _COMPLETE:
                sim.complete(t, a, b)
            elif kind == _READY:
                sim.pod_ready(t, a)
            else:
                if sim.completed == n and t >= horizon:
                    return
                sim.set_replicas(t, controller.decide(sim.observe(t)))
                sim.push(t + sim.cfg.tick_seconds, _TICK, 0)
        else:
            sim.next_arrival += 1
            sim.dispatch(next_arrival)


def run(
    cfg: SimConfig,
    arrivals: list[float],
    services: list[float],
    controller: Controller,
    horizon: float,
) -> RunResult:
    """Simulate one policy on one set of jobs (sorted arrival times and the
    service time of the i-th job to start) and summarise it."""
    sim = _Sim(cfg, arrivals, services)
    for _ in range(controller.initial_replicas()):
        sim.add_pod(0.0, ready=True)
    sim.peak = controller.initial_replicas()
    sim.push(cfg.tick_seconds, _TICK, 0)
    _loop(sim, controller, horizon)
    lat = sorted(f - a for f, a in zip(sim.finish, arrivals, strict=True))
    end = max(horizon, max(sim.finish, default=0.0))
    pod_seconds = sim.pod_seconds + sum(end - p.requested for p in sim.pods.values())
    n = len(lat)
    within = sum(1 for x in lat if x <= cfg.objective_seconds) / n if n else 1.0
    waits = sum(s - a for s, a in zip(sim.start, arrivals, strict=True))
    return RunResult(
        jobs=n,
        within=within,
        p99=lat[max(0, math.ceil(0.99 * n) - 1)] if n else 0.0,
        mean_wait=waits / n if n else 0.0,
        pod_seconds=pod_seconds,
        peak_replicas=sim.peak,
        scale_events=sim.scale_events,
        latencies=lat,
    )
