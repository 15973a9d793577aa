"""Compare the operator's SLO-aware autoscaler with KEDA's queue-length rule
and a fixed fleet, in a queueing simulation of four traffic traces (steady,
diurnal, burst, ramp). Each job takes 0.25 s on average (log-normal, CV 0.5);
a pod runs 2 at a time and needs 20 s to start; the autoscaler looks every
15 s; at most 200 pods; the objective is 30 s from upload to variants. Each
trace runs once per seed. Columns: the share of all jobs done within the
objective, the lowest share of a single seed, the 99th percentile latency,
pod-seconds per run, the most pods at once, and scaling changes per run. KEDA
is tried with each --queue-lengths value: the table shows the cheapest one
meeting 99 percent per trace, and the best single value for every trace. The exit
status is 1 when our policy misses 99 percent on a trace."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from imagepipe.cliargs import positive_int, positive_ints
from imagepipe.operator.autoscaling.policy import ScalingParams
from imagepipe.operator.autoscaling.simulation.engine import Controller, RunResult, SimConfig
from imagepipe.operator.autoscaling.simulation.engine import run as run_simulation
from imagepipe.operator.autoscaling.simulation.policies import (
    FixedFleet,
    KedaQueueLength,
    SloPolicy,
    fixed_fleet_size,
)
from imagepipe.operator.autoscaling.simulation.traces import TRACES, Jobs, Trace, draw_jobs

__all__ = ["Summary", "compare", "main", "simulate_policy"]

SERVICE_SECONDS = 0.25
SERVICE_CV = 0.5
QUEUE_LENGTHS = (1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 75, 100)
TARGET = 0.99


@dataclass(frozen=True)
class Summary:
    """One policy on one trace, pooled over seeds."""

    trace: str
    policy: str
    within: float
    worst: float
    p99: float
    pod_seconds: float
    peak_replicas: int
    scale_events: float


def _pool(trace: str, policy: str, runs: Sequence[RunResult]) -> Summary:
    """Pool several seeds' runs of one policy on one trace."""
    lat = sorted(x for r in runs for x in r.latencies)
    n = len(lat)
    return Summary(
        trace=trace,
        policy=policy,
        within=sum(r.within * r.jobs for r in runs) / max(1, n),
        worst=min(r.within for r in runs),
        p99=lat[max(0, math.ceil(0.99 * n) - 1)] if n else 0.0,
        pod_seconds=sum(r.pod_seconds for r in runs) / len(runs),
        peak_replicas=max(r.peak_replicas for r in runs),
        scale_events=sum(r.scale_events for r in runs) / len(runs),
    )


def simulate_policy(
    trace: Trace,
    jobs: Sequence[Jobs],
    make: Callable[[], Controller],
    name: str,
    cfg: SimConfig | None = None,
) -> Summary:
    """Run a fresh controller from ``make`` on each job set of ``trace``."""
    cfg = cfg or SimConfig()
    runs = [run_simulation(cfg, j.arrivals, j.services, make(), trace.duration) for j in jobs]
    return _pool(trace.name, name, runs)


def _best_keda(runs: dict[int, Summary]) -> tuple[int, Summary]:
    """Cheapest queueLength meeting the target, else the highest share."""
    ok = [(s.pod_seconds, q) for q, s in runs.items() if s.within >= TARGET]
    if ok:
        return min(ok)[1], runs[min(ok)[1]]
    q = max((s.within, -s.pod_seconds, q) for q, s in runs.items())[2]
    return q, runs[q]


def _best_overall(keda: dict[str, dict[int, Summary]]) -> int:
    """One queueLength for every trace: meeting the target everywhere at the
    least total pod-seconds, else the highest worst-trace share."""
    qs = sorted(next(iter(keda.values())))

    def score(q: int) -> tuple[bool, float, float]:
        rows = [by_q[q] for by_q in keda.values()]
        low = min(s.within for s in rows)
        return (low >= TARGET, low if low < TARGET else 0.0, -sum(s.pod_seconds for s in rows))

    return max(qs, key=score)


def compare(
    traces: Sequence[str],
    seeds: Sequence[int],
    queue_lengths: Sequence[int],
    params: ScalingParams | None = None,
    every_keda: bool = False,
) -> list[Summary]:
    """All policies on all traces; KEDA rows are named ``keda q=N`` (the best
    per trace, then the best overall; every value with ``every_keda``)."""
    params = params or ScalingParams()
    cfg = SimConfig()
    rows: list[Summary] = []
    keda: dict[str, dict[int, Summary]] = {}
    for name in traces:
        trace = TRACES[name]
        jobs = [draw_jobs(trace, s, SERVICE_SECONDS, SERVICE_CV) for s in seeds]
        fixed = fixed_fleet_size(trace.peak, SERVICE_SECONDS, cfg.slots_per_pod)
        rows.append(simulate_policy(trace, jobs, partial(SloPolicy, params), "ours"))
        rows.append(simulate_policy(trace, jobs, partial(FixedFleet, fixed), f"fixed {fixed}"))
        keda[name] = {
            q: simulate_policy(trace, jobs, partial(KedaQueueLength, q), f"keda q={q}") for q in queue_lengths
        }
        if every_keda:
            rows.extend(keda[name].values())
        elif queue_lengths:
            rows.append(_best_keda(keda[name])[1])
    if not queue_lengths:
        return rows
    overall = _best_overall(keda)
    rows.extend(
        Summary(**{**by_q[overall].__dict__, "policy": f"keda q={overall} (overall)"})
        for by_q in keda.values()
    )
    return rows


def format_table(rows: Sequence[Summary]) -> str:
    """A plain-text table, grouped by trace."""
    head = (
        f"{'trace':<8} {'policy':<22} {'within 30s':>10} {'worst seed':>10} "
        f"{'p99 s':>7} {'pod-s':>8} {'peak':>5} {'scalings':>8}"
    )
    lines = [head, "-" * len(head)]
    for name in dict.fromkeys(r.trace for r in rows):
        for r in (r for r in rows if r.trace == name):
            lines.append(
                f"{r.trace:<8} {r.policy:<22} {r.within * 100:9.2f}% {r.worst * 100:9.2f}% "
                f"{r.p99:7.2f} {r.pod_seconds:8.0f} {r.peak_replicas:5d} {r.scale_events:8.1f}"
            )
    return "\n".join(lines)


def describe(params: ScalingParams) -> str:
    """The policy's parameters in words (the simulated cluster's are fixed)."""
    return (
        f"our policy: objective {params.objective_seconds:g} s, {params.slots_per_pod} slots per pod, "
        f"pods start in {params.startup_seconds:g} s, loop every {params.detection_seconds:g} s, "
        f"target utilisation {params.target_utilisation:.0%}, burst headroom {params.burst_factor:g}x, "
        f"scale-down after {params.stabilisation_seconds:g} s, "
        f"{params.min_replicas}-{params.max_replicas} pods"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace", action="append", choices=sorted(TRACES), help="trace to run (repeatable; default: all)"
    )
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds per trace (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument(
        "--queue-lengths",
        type=positive_ints,
        default=list(QUEUE_LENGTHS),
        help="KEDA queueLength values to search (comma-separated)",
    )
    parser.add_argument(
        "--all-keda", action="store_true", help="print every queueLength searched, not only the best"
    )


def run(args: argparse.Namespace) -> int:
    """Print the comparison table; exit 1 if our policy misses the target on a trace."""
    traces = args.trace or list(TRACES)
    seeds = range(args.seed, args.seed + args.seeds)
    rows = compare(traces, list(seeds), args.queue_lengths, every_keda=args.all_keda)
    print(f"seeds {seeds.start}..{seeds.stop - 1}; {describe(ScalingParams())}")
    print(format_table(rows))
    missed = [r.trace for r in rows if r.policy == "ours" and r.within < TARGET]
    return 1 if missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagepipe simulate", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
