"""Whole-pipeline load benchmark (issue 4): ingest + consumer + loopback S3/SQS on this machine.

    .venv/bin/python bench/pipeline_load.py                     # about 5-6 minutes
    .venv/bin/python bench/pipeline_load.py --steady-seconds 30 --json pipeline.json

Uploads the 2-8 MP photos (loadstack.PHOTOS) through `imagepipe serve` to one
`imagepipe consume` (worker slots: the CPUs, as in production), both against
a moto server in its own process, all on 127.0.0.1:

1. core: the core benchmark's single-core rate on the same photos, measured
   now on this machine: `imagepipe.processing.render` in one process pinned to
   CPU 0, median CPU time per photo (as bench/run.py does), img/s/core.
2. capacity: a backlog of --backlog uploads at once; capacity = completions
   per second between the first and the last completion (status documents'
   completed_at). CPU time (/proc) of the ingest, the consumer and its render
   workers, and moto over the phase gives CPU seconds per image.
3. steady: arrivals at a fixed interval at 50 % of capacity for --steady-seconds.
4. burst: 10x that rate for --burst-seconds, then the backlog drains (at most
   --drain-seconds more).

Latency of a job: completed_at in its status document (read from S3 at the
end) minus the time the client received its 202. Jobs not completed by the
end count as misses. Target (issue 4): the pipeline's capacity per core at
most 15 % below the core's images/s per core. Judged on CPU time (the
machine is shared: wall-clock capacity per core is also printed, and judged
too, but is only meaningful on a quiet machine). Exit status 1 if it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from loadstack import (
    PHOTOS,
    Stack,
    aws_client_kwargs,
    cpu_seconds,
    load_images,
    loadavg,
    multipart_body,
    percentile,
    tree_cpu_seconds,
    verdict,
)

OBJECTIVE_SECONDS = 30.0
MAX_BELOW_CORE = 0.15


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backlog", type=int, default=60, help="uploads of the capacity phase (%(default)s)")
    parser.add_argument("--steady-seconds", type=float, default=120.0, help="(default: %(default)s)")
    parser.add_argument("--steady-fraction", type=float, default=0.5, help="of capacity (%(default)s)")
    parser.add_argument("--burst-seconds", type=float, default=30.0, help="(default: %(default)s)")
    parser.add_argument("--burst-factor", type=float, default=10.0, help="x the steady rate (%(default)s)")
    parser.add_argument(
        "--drain-seconds", type=float, default=180.0, help="longest wait after the burst (%(default)s)"
    )
    parser.add_argument("--slots", type=int, help="consumer worker slots (default: the consumer's, CPUs)")
    parser.add_argument("--core-repeat", type=int, default=3, help="timed renders per photo (%(default)s)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--core-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --------------------------------------------------------------------------- 1. the core, one pinned core


def core_child(repeat: int) -> None:
    os.sched_setaffinity(0, {0})
    from imagepipe.allocator import keep_freed_memory
    from imagepipe.processing import render
    from imagepipe.spec import DEFAULT_SPEC

    keep_freed_memory()  # as bench/run.py and the consumer's render workers do
    per_photo = {}
    for name, data in load_images(PHOTOS):
        render(data, DEFAULT_SPEC)  # warm-up
        samples = []
        for _ in range(repeat):
            started = time.process_time()
            render(data, DEFAULT_SPEC)
            samples.append(time.process_time() - started)
        per_photo[name] = sorted(samples)[len(samples) // 2] * 1000
    print(json.dumps(per_photo))


def measure_core(repeat: int) -> dict[str, Any]:
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--core-child", "--core-repeat", str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    per_photo = json.loads(out)
    ms = sum(per_photo.values()) / len(per_photo)
    return {"ms_per_image": ms, "images_per_s_per_core": 1000 / ms, "per_photo_ms": per_photo}


# --------------------------------------------------------------------------- 2-4. the pipeline


@dataclass
class Job:
    phase: str
    photo: str
    sent: float  # time.time()
    accepted: float = float("nan")  # time.time() of the 202
    status: int = 0
    job_id: str = ""
    done: float = float("nan")  # completed_at (epoch seconds)
    outcome: str = ""


@dataclass
class Run:
    stack: Stack
    args: argparse.Namespace
    jobs: list[Job] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bodies = [(name, *multipart_body(name, data)) for name, data in load_images(PHOTOS)]
        self.turn = 0
        self.pending: set[asyncio.Task[None]] = set()

    def cpu(self) -> dict[str, float]:
        consumer = self.stack.pid("consumer")
        return {
            "ingest": cpu_seconds(self.stack.pid("ingest")),
            "consumer": tree_cpu_seconds(consumer),
            "consumer_parent": cpu_seconds(consumer, reaped_children=False),
            "moto": cpu_seconds(self.stack.pid("moto")),
            "client": time.process_time(),
        }

    async def upload(self, session: aiohttp.ClientSession, phase: str) -> None:
        name, body, ctype = self.bodies[self.turn % len(self.bodies)]
        self.turn += 1
        job = Job(phase, name, time.time())
        self.jobs.append(job)
        try:
            async with session.post(
                f"{self.stack.api}/v1/images", data=body, headers={"Content-Type": ctype}
            ) as response:
                job.status = response.status
                if response.status == 202:
                    job.job_id = (await response.json())["job_id"]
                    job.accepted = time.time()
        except (aiohttp.ClientError, TimeoutError):
            job.status = 0

    def launch(self, session: aiohttp.ClientSession, phase: str) -> None:
        task = asyncio.create_task(self.upload(session, phase))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def finished(self, session: aiohttp.ClientSession) -> int:
        """Jobs the consumer has finished (completed or failed), from its metrics."""
        async with session.get(f"http://127.0.0.1:{self.stack.metrics_port}/metrics") as response:
            text = await response.text()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("imagepipe_jobs_total{") and (
                'outcome="completed"' in line or 'outcome="failed"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    async def wait_finished(self, session: aiohttp.ClientSession, count: int, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await self.finished(session) >= count:
                return True
            await asyncio.sleep(0.5)
        return False

    async def arrivals(
        self, session: aiohttp.ClientSession, phase: str, rate: float, seconds: float
    ) -> float:
        """Open-loop arrivals at a fixed interval; returns the achieved arrival rate."""
        start = time.monotonic()
        sent = 0
        while True:
            due = start + sent / rate
            if due - start >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            self.launch(session, phase)
            sent += 1
        return sent / max(seconds, time.monotonic() - start)

    async def accepted_count(self) -> int:
        await asyncio.gather(*self.pending)
        return sum(1 for job in self.jobs if job.status == 202)

    async def run(self) -> None:
        args = self.args
        connector = aiohttp.TCPConnector(limit=200)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as control,
        ):
            # Warm-up: every render worker imports and runs once; not measured.
            for _ in range(2 * (args.slots or os.cpu_count() or 2)):
                self.launch(session, "warmup")
            if not await self.wait_finished(control, await self.accepted_count(), 120):
                raise RuntimeError("the warm-up jobs did not finish")

            # Capacity: a backlog, drained as fast as the pipeline can.
            print(f"capacity: {args.backlog} uploads at once ...", flush=True)
            cpu0 = self.cpu()
            started = time.time()
            for _ in range(args.backlog):
                self.launch(session, "capacity")
            target = await self.accepted_count()
            if not await self.wait_finished(control, target, 300):
                raise RuntimeError("the capacity backlog did not drain within 300 s")
            cpu1 = self.cpu()
            await self.read_statuses([j for j in self.jobs if j.phase == "capacity"])
            done = sorted(j.done for j in self.jobs if j.phase == "capacity" and j.outcome == "completed")
            capacity = (len(done) - 1) / (done[-1] - done[0])
            n = len(done)
            self.figures["capacity"] = {
                "images": n,
                "seconds": done[-1] - started,
                "images_per_s": capacity,
                "cpu_s_per_image": {k: (cpu1[k] - cpu0[k]) / n for k in cpu0},
            }
            print(f"capacity: {capacity:.2f} images/s", flush=True)

            steady = args.steady_fraction * capacity
            burst = args.burst_factor * steady
            print(f"steady: {steady:.2f}/s for {args.steady_seconds:.0f} s ...", flush=True)
            self.figures["steady_offered"] = await self.arrivals(
                session, "steady", steady, args.steady_seconds
            )
            print(f"burst: {burst:.2f}/s for {args.burst_seconds:.0f} s ...", flush=True)
            self.figures["burst_offered"] = await self.arrivals(session, "burst", burst, args.burst_seconds)
            burst_end = time.monotonic()
            target = await self.accepted_count()
            print(f"draining (at most {args.drain_seconds:.0f} s after the burst) ...", flush=True)
            remaining = args.drain_seconds - (time.monotonic() - burst_end)
            self.figures["drained"] = await self.wait_finished(control, target, max(1.0, remaining))
            self.figures["rates"] = {"steady": steady, "burst": burst}
        await self.read_statuses([j for j in self.jobs if j.phase in ("steady", "burst")])

    async def read_statuses(self, jobs: list[Job]) -> None:
        """completed_at of each job, straight from its status document in S3."""
        from aiobotocore.session import get_session

        limit = asyncio.Semaphore(16)
        bucket = self.stack.env["IMAGEPIPE_BUCKET"]
        async with get_session().create_client("s3", **aws_client_kwargs(self.stack)) as s3:

            async def read(job: Job) -> None:
                if not job.job_id:
                    return
                async with limit:
                    response = await s3.get_object(Bucket=bucket, Key=f"jobs/{job.job_id}.json")
                    async with response["Body"] as stream:
                        doc = json.loads(await stream.read())
                job.outcome = str(doc.get("status"))
                if job.outcome == "completed" and doc.get("completed_at"):
                    job.done = datetime.fromisoformat(doc["completed_at"].replace("Z", "+00:00")).timestamp()

            await asyncio.gather(*(read(job) for job in jobs))


def phase_figures(jobs: list[Job], offered: float, seconds: float) -> dict[str, Any]:
    accepted = [j for j in jobs if j.status == 202]
    completed = [j for j in accepted if j.outcome == "completed"]
    latency = [j.done - j.accepted for j in completed]
    within = sum(1 for s in latency if s <= OBJECTIVE_SECONDS)
    start = min((j.sent for j in jobs), default=float("nan"))
    last = max((j.done for j in completed), default=float("nan"))
    upload_ms = [(j.accepted - j.sent) * 1000 for j in accepted]
    return {
        "offered_per_s": offered,
        "seconds": seconds,
        "uploads": len(jobs),
        "accepted": len(accepted),
        "completed": len(completed),
        "failed_or_unfinished": len(accepted) - len(completed),
        "throughput_per_s": len(completed) / (last - start) if completed else 0.0,
        "latency_s": {p: percentile(latency, p) for p in (50, 95, 99)},
        "within_objective": within / len(jobs) if jobs else float("nan"),
        "upload_202_ms": {"p50": percentile(upload_ms, 50), "p99": percentile(upload_ms, 99)},
    }


def summarise(run: Run, core: dict[str, Any], ncpu: int) -> dict[str, Any]:
    f, args = run.figures, run.args
    phases = {
        "capacity": phase_figures([j for j in run.jobs if j.phase == "capacity"], float("nan"), 0.0),
        "steady": phase_figures(
            [j for j in run.jobs if j.phase == "steady"], f["steady_offered"], args.steady_seconds
        ),
        "burst": phase_figures(
            [j for j in run.jobs if j.phase == "burst"], f["burst_offered"], args.burst_seconds
        ),
    }
    cap = f["capacity"]
    cpu = cap["cpu_s_per_image"]
    pipeline_cpu = cpu["ingest"] + cpu["consumer"]
    per_core = {
        "core": core["images_per_s_per_core"],
        "pipeline_cpu": 1 / pipeline_cpu,
        "pipeline_cpu_with_moto": 1 / (pipeline_cpu + cpu["moto"]),
        "pipeline_wall": cap["images_per_s"] / ncpu,
    }
    burst = [j for j in run.jobs if j.phase == "burst"]
    timeline: dict[int, int] = {}
    if burst:
        start = min(j.sent for j in burst)
        for j in burst:
            if j.outcome == "completed":
                bucket = int((j.done - start) // 10) * 10
                timeline[bucket] = timeline.get(bucket, 0) + 1
    return {
        "core": core,
        "capacity": cap,
        "phases": phases,
        "per_core": per_core,
        "cpus": ncpu,
        # Burst jobs completed per 10 s since the burst began: shows the drain rate over time.
        "burst_completions_per_10s": dict(sorted(timeline.items())),
        "jobs": [[j.phase, j.photo, j.sent, j.accepted, j.done, j.outcome] for j in run.jobs],
        **f,
    }


def report(s: dict[str, Any], load: tuple[str, str]) -> bool:
    core, cap, pc = s["core"], s["capacity"], s["per_core"]
    print(f"\nPipeline load: {len(PHOTOS)} photos (2-8 MP JPEG), {s['cpus']} CPUs")
    print(f"  load average  {load[0]} (start) -> {load[1]} (end)")
    print(f"  core          {core['ms_per_image']:.1f} ms CPU per image on one pinned core")
    cpu = cap["cpu_s_per_image"]
    print(
        f"  capacity      {cap['images_per_s']:.2f} images/s ({cap['images']} images); CPU per image: ingest "
        f"{cpu['ingest'] * 1000:.1f} ms, consumer {cpu['consumer'] * 1000:.1f} ms (its event loop "
        f"{cpu['consumer_parent'] * 1000:.1f} ms + render workers "
        f"{(cpu['consumer'] - cpu['consumer_parent']) * 1000:.1f} ms), "
        f"moto {cpu['moto'] * 1000:.1f} ms, load client {cpu['client'] * 1000:.1f} ms"
    )
    print(
        "\n| phase | offered/s | uploads | completed | throughput/s | 202 p50/p99 ms "
        "| e2e p50 / p95 / p99 s | within 30 s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, p in s["phases"].items():
        lat = p["latency_s"]
        up = p["upload_202_ms"]
        print(
            f"| {name} | {p['offered_per_s']:.2f} | {p['uploads']} | {p['completed']} | "
            f"{p['throughput_per_s']:.2f} | {up['p50']:.0f} / {up['p99']:.0f} | "
            f"{lat[50]:.1f} / {lat[95]:.1f} / {lat[99]:.1f} | {p['within_objective'] * 100:.1f} % |"
        )
    timeline = " ".join(f"{t}s:{n}" for t, n in s["burst_completions_per_10s"].items())
    print(f"  burst jobs completed per 10 s since it began: {timeline}")
    if not s["drained"]:
        print(f"  (the burst's backlog had not drained {s['args']['drain_seconds']:.0f} s after it ended)")
    print("\n| images/s per core | figure | vs core |")
    print("| --- | ---: | ---: |")
    rows = [
        ("core benchmark (render, 1 pinned core, CPU time)", pc["core"]),
        ("pipeline, CPU time of ingest + consumer + workers", pc["pipeline_cpu"]),
        ("pipeline, CPU time incl. moto (the S3/SQS stand-in)", pc["pipeline_cpu_with_moto"]),
        (f"pipeline, wall: capacity / {s['cpus']} CPUs", pc["pipeline_wall"]),
    ]
    for label, value in rows:
        print(f"| {label} | {value:.2f} | {value / pc['core'] - 1:+.1%} |")
    floor = 1 - MAX_BELOW_CORE
    ok_cpu = pc["pipeline_cpu"] >= floor * pc["core"]
    ok_wall = pc["pipeline_wall"] >= floor * pc["core"]
    print("\nTargets:")
    print(
        f"  {verdict(ok_cpu)}  capacity per core (CPU time) at most {MAX_BELOW_CORE:.0%} below the core: "
        f"{pc['pipeline_cpu'] / pc['core'] - 1:+.1%}"
    )
    print(
        f"  {verdict(ok_wall)}  same, wall-clock capacity / CPUs (valid on a quiet machine only): "
        f"{pc['pipeline_wall'] / pc['core'] - 1:+.1%}"
    )
    steady = s["phases"]["steady"]
    print(f"  info  steady phase within 30 s: {steady['within_objective'] * 100:.1f} %")
    return ok_cpu


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.core_child:
        core_child(args.core_repeat)
        return 0
    started_load = loadavg()
    began = time.monotonic()
    print("core: rendering the photos on one pinned core ...", flush=True)
    core = measure_core(args.core_repeat)
    with Stack(consumer=True, slots=args.slots) as stack:
        run = Run(stack, args)
        asyncio.run(run.run())
    load = (started_load, loadavg())
    summary = summarise(run, core, len(os.sched_getaffinity(0)))
    summary["args"] = vars(args)
    summary["loadavg"] = {"start": load[0], "end": load[1]}
    summary["runtime_s"] = time.monotonic() - began
    ok = report(summary, load)
    print(f"  (runtime {summary['runtime_s']:.0f} s)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=2, default=str)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
