"""What the autoscaler reads besides the queue: the consumer Deployment, the
ready consumer pods' `/metrics` (port `metrics`), or Prometheus instead.

`ready_targets` and `prometheus_queries` are pure; the rest are thin I/O.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp

from ..builders import METRICS_PORT, selector
from ..imagepipeline import ImagePipeline
from ..kube import Kube
from ..monitoring import series_selector
from ..ownership import is_ours
from .consumer_metrics import Counts, parse_counts
from .inputs import WINDOW_SECONDS, Replicas

log = logging.getLogger(__name__)
SCRAPE_TIMEOUT = aiohttp.ClientTimeout(total=5)
# Prometheus needs a range of a few scrapes for rate(); shorter loops use this one.
MIN_RATE_WINDOW_SECONDS = 60


def deployment_path(p: ImagePipeline) -> str:
    return f"/apis/apps/v1/namespaces/{p.namespace}/deployments/{p.child('consumer')}"


async def read_replicas(kube: Kube, p: ImagePipeline) -> Replicas | None:
    """The consumer Deployment's replicas; None when it does not exist (yet) or
    is not ours (a same-named Deployment of someone else's is never scaled)."""
    found = await kube.request("GET", deployment_path(p))
    if found is None or not is_ours(found, p.uid):
        return None
    spec, status = found.get("spec") or {}, found.get("status") or {}
    return Replicas(current=int(spec.get("replicas", 1)), ready=int(status.get("readyReplicas") or 0))


async def patch_replicas(kube: Kube, p: ImagePipeline, replicas: int) -> None:
    await kube.request("PATCH", deployment_path(p), {"spec": {"replicas": replicas}})


def _is_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and bool(status.get("podIP")) and not (pod.get("metadata") or {}).get("deletionTimestamp")


def _metrics_port(pod: Mapping[str, Any]) -> int:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "metrics":
                return int(port["containerPort"])
    return METRICS_PORT


def ready_targets(pods: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, str]:
    """Pod name → `/metrics` URL of every ready pod carrying `labels`."""
    targets = {}
    for pod in pods.get("items") or []:
        metadata = pod.get("metadata") or {}
        carries = all((metadata.get("labels") or {}).get(k) == v for k, v in labels.items())
        if carries and _is_ready(pod):
            ip = pod["status"]["podIP"]
            host = f"[{ip}]" if ":" in ip else ip
            targets[metadata["name"]] = f"http://{host}:{_metrics_port(pod)}/metrics"
    return targets


async def consumer_targets(kube: Kube, p: ImagePipeline) -> dict[str, str]:
    labels = selector(p, "consumer")
    query = urllib.parse.urlencode({"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())})
    pods = await kube.request("GET", f"/api/v1/namespaces/{p.namespace}/pods?{query}") or {}
    return ready_targets(pods, labels)


async def read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, refused (ValueError) once it passes `limit` bytes: a pod or a
    Prometheus named by a resource must not fill the operator's memory."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise ValueError(f"{response.url}: response larger than {limit} bytes")
    return bytes(body)


async def scrape_pods(
    session: aiohttp.ClientSession, targets: Mapping[str, str], limit: int
) -> dict[str, Counts]:
    """Each pod's cumulative Counts; a pod that does not answer (or answers
    more than `limit` bytes) is left out (logged)."""

    async def one(url: str) -> Counts:
        async with session.get(url, timeout=SCRAPE_TIMEOUT) as response:
            response.raise_for_status()
            return parse_counts((await read_bounded(response, limit)).decode())

    names = list(targets)
    results = await asyncio.gather(*(one(targets[n]) for n in names), return_exceptions=True)
    counts = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BaseException):
            log.warning("scraping consumer pod %s failed: %r", name, result)
        else:
            counts[name] = result
    return counts


def prometheus_queries(p: ImagePipeline, window_seconds: int) -> dict[str, str]:
    """PromQL for Counts over `window_seconds`, one query per field."""
    sel, w = series_selector(p), f"{window_seconds}s"
    return {
        "finished": f"sum(increase(imagepipe_jobs_total{{{sel}}}[{w}]))",
        "failed": f'sum(increase(imagepipe_jobs_total{{{sel},outcome="failed"}}[{w}]))',
        "busy_seconds": f"sum(increase(imagepipe_stage_duration_seconds_sum{{{sel}}}[{w}]))",
        "started": f'sum(increase(imagepipe_stage_duration_seconds_count{{{sel},stage="download"}}[{w}]))',
        "latency": f"sum by (le) (increase(imagepipe_job_latency_seconds_bucket{{{sel}}}[{w}]))",
    }


def counts_from_results(results: Mapping[str, list[dict[str, Any]]], scale: float = 1.0) -> Counts:
    """Prometheus vector results (per query) → Counts, every value times `scale`."""

    def scalar(key: str) -> float:
        return sum(float(r["value"][1]) for r in results.get(key, [])) * scale

    buckets = sorted(
        (float(r["metric"]["le"]), float(r["value"][1]) * scale) for r in results.get("latency", [])
    )
    return Counts(
        scalar("finished"), scalar("failed"), scalar("busy_seconds"), scalar("started"), tuple(buckets)
    )


async def query_prometheus(
    session: aiohttp.ClientSession, base: str, p: ImagePipeline, window: int, limit: int
) -> Counts:
    async def one(query: str) -> list[dict[str, Any]]:
        url = f"{base.rstrip('/')}/api/v1/query"
        async with session.get(url, params={"query": query}, timeout=SCRAPE_TIMEOUT) as response:
            response.raise_for_status()
            body = json.loads(await read_bounded(response, limit))
            result: list[dict[str, Any]] = body["data"]["result"]
            return result

    queries = prometheus_queries(p, window)
    answers = await asyncio.gather(*(one(q) for q in queries.values()))
    return counts_from_results(dict(zip(queries, answers, strict=True)))


async def prometheus_reading(
    session: aiohttp.ClientSession, base: str, p: ImagePipeline, interval: float, limit: int
) -> tuple[Counts, Counts]:
    """(what the consumers did over the last `interval`, over WINDOW_SECONDS)."""
    rate_window = max(MIN_RATE_WINDOW_SECONDS, round(interval))
    recent = await query_prometheus(session, base, p, rate_window, limit)
    tick = recent.scaled(interval / rate_window)
    window = await query_prometheus(session, base, p, int(WINDOW_SECONDS), limit)
    return tick, window
