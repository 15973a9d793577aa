"""The ingest under a flood and under one abusive key (issue 14), for
bench/ingest_load.py --flood / --fairness.

--flood: CLIENTS clients at once, each sending a 9.3 MB JPEG over about
--spread seconds (half declare Content-Length, half stream chunked), against
one `imagepipe serve` with --budget (default: the ingest's own default).
Reports accepted / refused counts, the peak RSS (VmHWM) against base +
budget, and one upload right after. Before the budget (issue 14): 48 x 9.3 MB
at once, all accepted, peak RSS 944 MB.

--fairness: one key ("flood") uploads the photos as fast as --clients
connections allow, while another ("steady") sends one upload every 0.25 s;
reports each key's answers and the steady key's p50/p99 latency.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import aiohttp
from loadstack import MB, PHOTOS, Stack, load_images, loadavg, percentile, status_kb
from trickle import big_photo, slow_upload

from imagepipe.capacity import DEFAULT_UPLOAD_BUDGET_BYTES, INGEST_BASE_BYTES

# A flooding upload's body goes out in this many writes.
PIECES = 40
KEYS = {"flood": "flood-key-0123456789abcdef", "steady": "steady-key-0123456789abcdef"}


async def sample_rss(pid: int, into: list[int]) -> None:
    while True:
        into.append(status_kb(pid, "VmRSS"))
        await asyncio.sleep(0.25)


def flood(clients: int, spread: float, budget: int | None) -> dict[str, Any]:
    data = big_photo()
    env = {"IMAGEPIPE_UPLOAD_BUDGET_BYTES": str(budget)} if budget else {}
    started_load = loadavg()
    with Stack(extra_env=env) as stack:
        pid, port = stack.pid("ingest"), int(stack.api.rsplit(":", 1)[1])
        idle = status_kb(pid, "VmRSS") * 1024

        async def run() -> tuple[list[int], list[int], float]:
            rss: list[int] = []
            sampler = asyncio.create_task(sample_rss(pid, rss))
            began = time.perf_counter()
            answers = await asyncio.gather(
                *(slow_upload(port, data, spread, declared=i % 2 == 0, pieces=PIECES) for i in range(clients))
            )
            took = time.perf_counter() - began
            sampler.cancel()
            return [status for status, _ in answers], rss, took

        statuses, rss, took = asyncio.run(run())
        peak = status_kb(pid, "VmHWM") * 1024
        after, _ = asyncio.run(slow_upload(port, data, 0.0, pieces=PIECES))
    charged = budget or DEFAULT_UPLOAD_BUDGET_BYTES
    return {
        "clients": clients,
        "upload_bytes": len(data),
        "spread_seconds": spread,
        "seconds": round(took, 1),
        "budget_bytes": charged,
        "bound_bytes": INGEST_BASE_BYTES + charged,
        "idle_rss_bytes": idle,
        "peak_rss_bytes": peak,
        "rss_max_sampled_bytes": max(rss, default=0) * 1024,
        "answers": dict(Counter(str(s) for s in statuses)),
        "upload_after": after,
        "loadavg": {"start": started_load, "end": loadavg()},
    }


async def _fair_run(api: str, clients: int, duration: float) -> dict[str, Any]:
    photos = [data for _, data in load_images(PHOTOS)]
    seen: dict[str, Counter[str]] = {"flood": Counter(), "steady": Counter()}
    steady_ms: list[float] = []
    stop = time.perf_counter() + duration

    async def post(session: aiohttp.ClientSession, key: str, data: bytes) -> int:
        headers = {"Authorization": f"Bearer {KEYS[key]}", "Content-Type": "image/jpeg"}
        try:
            async with session.post(f"{api}/v1/images", data=data, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    async def flooder(session: aiohttp.ClientSession, index: int) -> None:
        turn = index
        while time.perf_counter() < stop:
            status = await post(session, "flood", photos[turn % len(photos)])
            seen["flood"][str(status)] += 1
            turn += 1

    async def steady(session: aiohttp.ClientSession) -> None:
        turn = 0
        while time.perf_counter() < stop:
            began = time.perf_counter()
            status = await post(session, "steady", photos[turn % len(photos)])
            seen["steady"][str(status)] += 1
            if status == 202:
                steady_ms.append((time.perf_counter() - began) * 1000)
            turn += 1
            await asyncio.sleep(max(0.0, 0.25 - (time.perf_counter() - began)))

    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=clients), timeout=timeout
        ) as flood_session,
        aiohttp.ClientSession(timeout=timeout) as steady_session,
    ):
        await asyncio.gather(steady(steady_session), *(flooder(flood_session, i) for i in range(clients)))
    return {
        "answers": {key: dict(counts) for key, counts in seen.items()},
        "steady_latency_ms": {"p50": percentile(steady_ms, 50), "p99": percentile(steady_ms, 99)},
    }


def fairness(clients: int, duration: float) -> dict[str, Any]:
    env = {"IMAGEPIPE_API_KEYS": ",".join(f"{k}:{v}" for k, v in KEYS.items())}
    started_load = loadavg()
    with Stack(extra_env=env) as stack:
        figures = asyncio.run(_fair_run(stack.api, clients, duration))
    figures.update(clients=clients, seconds=duration, loadavg={"start": started_load, "end": loadavg()})
    return figures


def report_flood(f: dict[str, Any]) -> bool:
    size = f["upload_bytes"] / 1e6
    print(f"\nIngest flood: {f['clients']} clients x {size:.1f} MB, each over {f['spread_seconds']} s")
    print(f"  load average          {f['loadavg']['start']} -> {f['loadavg']['end']}, {os.cpu_count()} CPUs")
    print(f"  answers               {f['answers']} in {f['seconds']} s")
    print(f"  an upload right after {f['upload_after']}")
    print(
        f"  ingest RSS            idle {f['idle_rss_bytes'] / MB:.0f} MiB,"
        f" peak {f['peak_rss_bytes'] / MB:.0f} MiB"
        f" (bound: base {INGEST_BASE_BYTES / MB:.0f} + budget {f['budget_bytes'] / MB:.0f} ="
        f" {f['bound_bytes'] / MB:.0f} MiB)"
    )
    answered = set(f["answers"]) <= {"202", "503"}
    ok = answered and f["peak_rss_bytes"] < f["bound_bytes"] and f["upload_after"] == 202
    verdict = "PASS" if ok else "FAIL"
    print(f"  {verdict}  every client answered (202/503), peak under the bound, next upload 202")
    return ok


def report_fairness(f: dict[str, Any]) -> bool:
    print(f"\nIngest fairness: one key on {f['clients']} connections, one steady key, {f['seconds']} s")
    print(f"  load average          {f['loadavg']['start']} -> {f['loadavg']['end']}, {os.cpu_count()} CPUs")
    print(f"  flooding key          {f['answers']['flood']}")
    print(f"  steady key            {f['answers']['steady']}")
    lat = f["steady_latency_ms"]
    print(f"  steady key's 202      p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
    ok = set(f["answers"]["steady"]) == {"202"}
    print(f"  {'PASS' if ok else 'FAIL'}  every steady upload accepted")
    return ok
