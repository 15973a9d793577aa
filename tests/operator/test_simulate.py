"""The simulator against queueing theory, and the policy on short traces."""

from __future__ import annotations

import math
import random

import pytest

from imagepipe.operator.autoscaling.policy import ScalingParams
from imagepipe.operator.autoscaling.simulation.cli import main
from imagepipe.operator.autoscaling.simulation.engine import SimConfig, run
from imagepipe.operator.autoscaling.simulation.policies import (
    FixedFleet,
    KedaQueueLength,
    SloPolicy,
    fixed_fleet_size,
)
from imagepipe.operator.autoscaling.simulation.traces import TRACES, draw_jobs, service_times


def erlang_c_wait(c: int, lam: float, service: float) -> float:
    """Mean wait in queue of M/M/c (Erlang C)."""
    a = lam * service
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c / service - lam)


@pytest.mark.parametrize(("pods", "slots", "rho"), [(1, 4, 0.7), (2, 2, 0.7), (3, 2, 0.85)])
def test_mmc_mean_wait_matches_erlang_c(pods: int, slots: int, rho: float) -> None:
    c, service, horizon = pods * slots, 1.0, 40000.0
    lam = rho * c / service
    rng = random.Random(11)
    arrivals, t = [], rng.expovariate(lam)
    while t < horizon:
        arrivals.append(t)
        t += rng.expovariate(lam)
    services = service_times(len(arrivals), service, 1.0, rng, exponential=True)
    cfg = SimConfig(slots_per_pod=slots)
    result = run(cfg, arrivals, services, FixedFleet(pods), horizon)
    expected = erlang_c_wait(c, lam, service)
    assert result.mean_wait == pytest.approx(expected, rel=0.10)
    assert result.pod_seconds == pytest.approx(pods * max(horizon, result.latencies[-1]), rel=1e-3)


def test_lognormal_service_has_the_asked_mean_and_cv() -> None:
    xs = service_times(50000, 0.25, 0.5, random.Random(3))
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    assert mean == pytest.approx(0.25, rel=0.02)
    assert sd / mean == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("name", ["burst", "ramp"])
def test_policy_meets_objective_on_short_traces(name: str) -> None:
    trace = TRACES[name]
    jobs = draw_jobs(trace, seed=1)
    cfg = SimConfig()
    ours = run(cfg, jobs.arrivals, jobs.services, SloPolicy(ScalingParams()), trace.duration)
    fixed_n = fixed_fleet_size(trace.peak, 0.25, cfg.slots_per_pod)
    fixed = run(cfg, jobs.arrivals, jobs.services, FixedFleet(fixed_n), trace.duration)
    assert ours.within >= 0.99
    assert ours.pod_seconds < fixed.pod_seconds
    if name == "burst":
        keda = run(cfg, jobs.arrivals, jobs.services, KedaQueueLength(10), trace.duration)
        assert keda.within < ours.within


def test_deterministic() -> None:
    trace = TRACES["burst"]
    a = draw_jobs(trace, seed=4)
    b = draw_jobs(trace, seed=4)
    assert a == b
    cfg = SimConfig()
    r1 = run(cfg, a.arrivals, a.services, SloPolicy(ScalingParams()), trace.duration)
    r2 = run(cfg, b.arrivals, b.services, SloPolicy(ScalingParams()), trace.duration)
    assert r1 == r2 and r1.latencies == r2.latencies


def test_keda_follows_hpa_rate_limits() -> None:
    from imagepipe.operator.autoscaling.simulation.engine import Observation

    keda = KedaQueueLength(5)

    def obs(t: float, backlog: int, current: int) -> Observation:
        return Observation(t, backlog, 0, 0, 0.0, current, current)

    assert keda.decide(obs(15, 1000, 1)) == 5  # +4 pods at most from 1
    assert keda.decide(obs(30, 1000, 5)) == 10  # +100 % from 5
    assert keda.decide(obs(45, 0, 10)) == 10  # held by the 300 s window
    assert keda.decide(obs(45 + 300, 0, 10)) == 1


def test_cli_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--trace", "burst", "--seeds", "1", "--queue-lengths", "2,10"]) == 0
    out = capsys.readouterr().out
    assert "burst" in out and "ours" in out and "keda q=" in out and "fixed 8" in out
    assert out.startswith("seeds 1..1; our policy: objective 30 s") and "ScalingParams(" not in out


def test_our_policy_reads_observations_as_the_loop_does() -> None:
    """The first scrape is a baseline (no arrival rate yet, as after an operator
    start); the next balances the queue total against jobs finished."""
    from imagepipe.operator.autoscaling.simulation.engine import Observation

    policy = SloPolicy(ScalingParams())
    policy.decide(Observation(15.0, 100, 2, 50, 12.5, 1, 1))
    assert policy.decisions[0].arrival_rate == 0.0 and policy.memory.scraped
    policy.decide(Observation(30.0, 130, 2, 80, 20.0, 1, 1))
    # 30 more in the queue and 30 finished in 15 s: 60 arrivals, 4/s (before smoothing).
    assert policy.memory.backlog == 132 and policy.decisions[1].arrival_rate > 0.0
