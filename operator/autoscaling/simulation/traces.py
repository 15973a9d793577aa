"""Load traces for the simulator and the jobs drawn from them.

Arrivals are a non-homogeneous Poisson process at the trace's rate λ(t),
drawn by thinning; service times are log-normal with the given mean and
coefficient of variation (or exponential, for checks against queueing
theory). Everything comes from one seeded ``random.Random``: a run is
deterministic and every policy meets exactly the same jobs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TRACES", "Jobs", "Trace", "draw_jobs", "service_times"]


@dataclass(frozen=True)
class Trace:
    """A named arrival-rate curve ``rate(t)`` (jobs/s) on ``[0, duration)``."""

    name: str
    duration: float
    peak: float
    rate: Callable[[float], float]
    description: str


@dataclass(frozen=True)
class Jobs:
    """Sorted arrival times and the service time of the i-th job served."""

    arrivals: list[float]
    services: list[float]


def _steady(t: float) -> float:
    return 5.0


def _diurnal(t: float) -> float:
    """A day compressed into 2 h: trough 1/s at the ends, peak 20/s at 1 h."""
    return 1.0 + 19.0 * (1.0 - math.cos(2.0 * math.pi * t / 7200.0)) / 2.0


def _burst(t: float) -> float:
    """5/s with 50/s for 60 s from t = 600 s. The loop ticks at multiples of
    15 s, so the burst starts just as a loop has looked: the worst case,
    a full period before anyone sees it."""
    return 50.0 if 600.0 <= t < 660.0 else 5.0


def _ramp(t: float) -> float:
    return 1.0 + 29.0 * min(t, 900.0) / 900.0


TRACES: dict[str, Trace] = {
    t.name: t
    for t in (
        Trace("steady", 3600.0, 5.0, _steady, "5/s for 1 h"),
        Trace("diurnal", 7200.0, 20.0, _diurnal, "1/s..20/s, a 24 h curve in 2 h"),
        Trace("burst", 1200.0, 50.0, _burst, "5/s for 20 min, 50/s for 60 s at 10 min"),
        Trace("ramp", 900.0, 30.0, _ramp, "1/s to 30/s over 15 min"),
    )
}


def _arrivals(trace: Trace, rng: random.Random) -> list[float]:
    """Thinning: candidates at the peak rate, kept with probability λ(t)/peak."""
    out: list[float] = []
    t = 0.0
    while True:
        t += rng.expovariate(trace.peak)
        if t >= trace.duration:
            return out
        if rng.random() * trace.peak < trace.rate(t):
            out.append(t)


def service_times(
    n: int, mean: float, cv: float, rng: random.Random, exponential: bool = False
) -> list[float]:
    """``n`` service times: log-normal with ``mean`` and ``cv``, or exponential."""
    if exponential:
        return [rng.expovariate(1.0 / mean) for _ in range(n)]
    sigma = math.sqrt(math.log(1.0 + cv * cv))
    mu = math.log(mean) - sigma * sigma / 2.0
    return [rng.lognormvariate(mu, sigma) for _ in range(n)]


def draw_jobs(trace: Trace, seed: int, mean: float = 0.25, cv: float = 0.5) -> Jobs:
    """The jobs of one trace for one seed (identical for every policy)."""
    rng = random.Random(f"{trace.name}:{seed}")
    arrivals = _arrivals(trace, rng)
    return Jobs(arrivals, service_times(len(arrivals), mean, cv, rng))
