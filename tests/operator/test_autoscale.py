"""Properties of the SLO-aware replica policy (pure function, no cluster)."""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import replace
from typing import Any

import pytest

from imagepipe.operator.autoscaling.policy import (
    Decision,
    ScalerState,
    ScalingInputs,
    ScalingParams,
    arrival_rate_from_counts,
    desired_replicas,
)

PARAMS = ScalingParams()


def inputs(**kw: Any) -> ScalingInputs:
    base = ScalingInputs(
        now=1000.0,
        visible=0,
        in_flight=0,
        arrival_rate=5.0,
        interval_seconds=15.0,
        service_seconds=0.25,
        current_replicas=1,
        ready_replicas=1,
    )
    return replace(base, **kw)


def decide(params: ScalingParams = PARAMS, **kw: Any) -> Decision:
    return desired_replicas(inputs(**kw), params, ScalerState())


@pytest.mark.parametrize("current", [1, 4, 30])
def test_monotone_in_backlog(current: int) -> None:
    got = [
        decide(visible=b, current_replicas=current, ready_replicas=current).replicas
        for b in range(0, 20000, 37)
    ]
    assert got == sorted(got)
    assert got[-1] == PARAMS.max_replicas


@pytest.mark.parametrize("current", [1, 4, 30])
def test_monotone_in_arrival_rate(current: int) -> None:
    rates = [r / 4 for r in range(0, 2000)]
    got = [decide(arrival_rate=r, current_replicas=current, ready_replicas=current).replicas for r in rates]
    assert got == sorted(got)
    assert got[0] >= 1


def test_respects_bounds_on_random_inputs() -> None:
    rng = random.Random(7)
    params = ScalingParams(min_replicas=3, max_replicas=17)
    state = ScalerState()
    for i in range(2000):
        current = rng.randint(0, 40)
        d = desired_replicas(
            ScalingInputs(
                now=15.0 * i,
                visible=rng.choice([0, rng.randint(0, 100000)]),
                in_flight=rng.randint(0, 500),
                arrival_rate=rng.choice([0.0, rng.uniform(0, 1000)]),
                interval_seconds=rng.choice([0.0, 15.0]),
                service_seconds=rng.choice([None, rng.uniform(0.01, 10)]),
                current_replicas=current,
                ready_replicas=rng.randint(0, current) if current else 0,
            ),
            params,
            state,
        )
        state = d.state
        assert 3 <= d.replicas <= 17


def test_never_zero_and_min_validated() -> None:
    d = decide(arrival_rate=0.0, service_seconds=None, current_replicas=0, ready_replicas=0)
    assert d.replicas == 1
    assert d.reason == "min"
    with pytest.raises(ValueError):
        ScalingParams(min_replicas=0)
    with pytest.raises(ValueError):
        ScalingParams(min_replicas=5, max_replicas=4)


def test_reasons() -> None:
    assert decide(visible=10**7).reason == "max"
    assert decide(visible=400).reason == "backlog"
    assert decide(arrival_rate=40.0, current_replicas=1).reason == "burst_headroom"
    quiet = ScalingParams(burst_factor=1.0)
    assert decide(quiet, arrival_rate=40.0, current_replicas=1).reason == "steady"


def test_components_follow_the_model() -> None:
    d = decide(arrival_rate=40.0, visible=200, current_replicas=10, ready_replicas=10)
    assert d.steady == pytest.approx(40 * 0.25 / (2 * 0.85))
    assert d.drain_seconds == PARAMS.min_drain_seconds  # X - S - D - Ts < 0 here
    assert d.drain == pytest.approx(200 * 0.25 / (2 * 10.0))
    share = 1 - (30 - 0.25) / (15 + 20)
    assert d.burst_floor == pytest.approx(10 * 40 * share * 0.25 / 2)
    assert d.replicas == math.ceil(max(d.steady + d.drain, d.burst_floor))


def run_noisy(rate: float, loops: int, seed: int) -> list[int]:
    """Feed a constant Poisson rate, noisy service times and a small noisy
    queue, closing the loop on the replica count; return the decisions."""
    rng = random.Random(seed)
    state, replicas, out = ScalerState(), 1, []
    for i in range(loops):
        # Poisson count over 15 s via exponential gaps
        n, t = 0, rng.expovariate(rate)
        while t < 15.0:
            n, t = n + 1, t + rng.expovariate(rate)
        svc = sum(rng.lognormvariate(math.log(0.25) - 0.11, 0.47) for _ in range(max(n, 1)))
        d = desired_replicas(
            ScalingInputs(
                now=15.0 * (i + 1),
                visible=rng.randint(0, 6),
                in_flight=min(2 * replicas, rng.randint(0, 4)),
                arrival_rate=n / 15.0,
                interval_seconds=15.0,
                service_seconds=svc / max(n, 1),
                current_replicas=replicas,
                ready_replicas=replicas,
            ),
            PARAMS,
            state,
        )
        state, replicas = d.state, d.replicas
        out.append(replicas)
    return out


@pytest.mark.parametrize(("rate", "seed"), [(5.0, 1), (12.0, 2), (20.0, 3), (60.0, 4)])
def test_no_flapping_on_noisy_constant_rate(rate: float, seed: int) -> None:
    got = run_noisy(rate, 240, seed)  # one hour of loops
    settled = got[8:]
    changes = sum(1 for a, b in itertools.pairwise(settled) if a != b)
    assert changes <= 4, got
    assert max(settled) - min(settled) <= 2


def test_rate_estimate_smooths_noise_and_follows_a_surge() -> None:
    state = ScalerState()
    for i, raw in enumerate([5.0, 6.0, 4.0, 5.5, 4.5]):
        state = desired_replicas(inputs(now=15.0 * i, arrival_rate=raw), PARAMS, state).state
    assert state.rate is not None and 4.5 < state.rate < 5.6
    surge = desired_replicas(inputs(now=90.0, arrival_rate=50.0), PARAMS, state)
    assert surge.arrival_rate == 50.0


def test_scale_up_immediate_scale_down_after_window() -> None:
    state = ScalerState()
    d = desired_replicas(inputs(now=0.0), PARAMS, state)
    assert d.replicas == 1
    up = desired_replicas(inputs(now=15.0, visible=3000), PARAMS, d.state)
    assert up.replicas > 10  # at once, in the same loop
    state, replicas, t = up.state, up.replicas, 15.0
    window = PARAMS.stabilisation_seconds
    held_until = None
    while t < 15.0 + 3 * window:
        t += 15.0
        d = desired_replicas(inputs(now=t, current_replicas=replicas, ready_replicas=replicas), PARAMS, state)
        if d.replicas < replicas and held_until is None:
            held_until = t
        if t - 15.0 < window:
            assert d.replicas == up.replicas
            assert d.reason == "stabilising"
        state, replicas = d.state, d.replicas
    assert held_until is not None and held_until - 15.0 >= window
    assert replicas == 1


def test_arrival_rate_from_counts() -> None:
    assert arrival_rate_from_counts(10, 40, 45, 15.0) == pytest.approx(5.0)
    assert arrival_rate_from_counts(100, 0, 10, 15.0) == 0.0  # approximate counts: clamp
    assert arrival_rate_from_counts(0, 5, 0, 0.0) == 0.0


def test_pure_same_inputs_same_decision() -> None:
    a = decide(visible=123, arrival_rate=17.0)
    b = decide(visible=123, arrival_rate=17.0)
    assert a == b


def test_first_measured_service_time_replaces_the_prior_at_once() -> None:
    params = ScalingParams(initial_service_seconds=1.0)
    quiet = ScalingInputs(
        now=0.0,
        visible=0,
        in_flight=0,
        arrival_rate=0.0,
        interval_seconds=15.0,
        service_seconds=None,
        current_replicas=1,
        ready_replicas=1,
    )
    before = desired_replicas(quiet, params, ScalerState())
    assert before.service_seconds == 1.0 and before.state.service_seconds is None
    measured = replace(quiet, now=15.0, service_seconds=0.25)
    after = desired_replicas(measured, params, before.state)
    assert after.service_seconds == 0.25
