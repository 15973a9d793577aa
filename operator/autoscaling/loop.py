"""The autoscaler loop: a kopf timer per ImagePipeline (every 15 s) that
reads the queue and the consumers' metrics, asks `autoscale.desired_replicas`,
sets the consumer Deployment's `spec.replicas` (engine builtin; with keda the
ScaledObject does) and writes the decision to status and the metrics.

A thin shell: every decision and number is made by pure functions in
scaling.py, consumer_metrics.py and autoscale.py. A loop that cannot read
what it needs logs, counts an error and waits for the next one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf
from botocore.exceptions import BotoCoreError, ClientError

from ..backend import QueueDepth, read_queue_depth
from ..conditions import now as timestamp
from ..imagepipeline import ImagePipeline, InvalidPipeline, parse_imagepipeline
from ..kube import ApiError, Kube
from ..metrics import OperatorMetrics
from ..schema import GROUP, PLURAL, VERSION
from ..timers import register_quietly
from ..trust import TrustPolicy, violations
from .consumer_metrics import Counts
from .inputs import (
    ConsumerReading,
    Memory,
    last_scaling,
    memory_from_status,
    memory_to_status,
    params_for,
    read_scrape,
    remember,
    scaling_inputs,
    scaling_status,
    take_over,
)
from .observe import consumer_targets, patch_replicas, prometheus_reading, read_replicas, scrape_pods
from .policy import desired_replicas

DEFAULT_INTERVAL_SECONDS = 15.0
TIMER_ID = "autoscaler"
log = logging.getLogger(__name__)


@dataclass
class Autoscaler:
    """The loop's state across ticks: one Memory per pipeline, one HTTP session for scrapes."""

    metrics: OperatorMetrics
    interval: float = DEFAULT_INTERVAL_SECONDS
    read_depth: Callable[[ImagePipeline], Awaitable[QueueDepth]] = read_queue_depth
    # What resources may point the loop at, and how much of an answer it reads.
    policy: TrustPolicy = field(default_factory=TrustPolicy)
    memories: dict[str, Memory] = field(default_factory=dict)
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)

    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def forget(self, p: ImagePipeline) -> None:
        self.memories.pop(p.key, None)
        self.metrics.forget(p.key)

    async def tick(self, kube: Kube, body: kopf.Body, status: kopf.Status, patch: kopf.Patch) -> None:
        try:
            p = parse_imagepipeline(body)
        except InvalidPipeline:
            return  # the reconcile handler reports it
        if violations(p, self.policy):
            return  # likewise (NotAllowed): its URLs are not fetched
        label = p.key
        try:
            await self._tick(kube, p, status, patch)
        except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("autoscaler %s: Kubernetes API: %r", label, exc)
            self.metrics.record_error(label, "AutoscalerApiError")
        except (ClientError, BotoCoreError, OSError) as exc:
            log.warning("autoscaler %s: reading the queue failed: %r", label, exc)
            self.metrics.record_error(label, "QueueUnreadable")

    async def _tick(self, kube: Kube, p: ImagePipeline, status: kopf.Status, patch: kopf.Patch) -> None:
        label = p.key
        replicas = await read_replicas(kube, p)
        if replicas is None:
            return  # not created yet
        depth = await self.read_depth(p)
        self.metrics.record_queue(label, depth)
        now = time.time()
        memory = self.memories.get(label) or memory_from_status(status.get("autoscaler"))
        memory = take_over(memory, p.scaling.engine, replicas.current, now)
        reading = await self._read_consumers(kube, p, memory, now)
        inputs = scaling_inputs(now, depth, reading, replicas, memory)
        decision = desired_replicas(inputs, params_for(p, self.interval), memory.scaler)
        if p.scaling.engine == "builtin" and decision.replicas != replicas.current:
            await patch_replicas(kube, p, decision.replicas)
            log.info(
                "autoscaler %s: %d → %d replicas (%s)",
                label,
                replicas.current,
                decision.replicas,
                decision.reason,
            )
        self.metrics.record_decision(
            label, decision.replicas, decision.reason, decision.service_seconds, decision.arrival_rate
        )
        memory = remember(memory, decision, depth, now)
        self.memories[label] = memory
        patch.status.update(scaling_status(p, decision, replicas, reading, depth))
        patch.status["autoscaler"] = memory_to_status(memory)
        if p.scaling.engine == "builtin":
            patch.status["lastScaling"] = last_scaling(
                status.get("lastScaling"), replicas.current, decision, timestamp()
            )

    async def _read_consumers(
        self, kube: Kube, p: ImagePipeline, memory: Memory, now: float
    ) -> ConsumerReading:
        url = p.scaling.prometheus_url
        try:
            if url:
                interval = now - memory.time if memory.time is not None else self.interval
                tick, window = await prometheus_reading(
                    self.http(), url, p, interval, self.policy.max_response_bytes
                )
                return ConsumerReading(tick, window)
            return await self._scrape(kube, p, memory, now)
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            log.warning("autoscaler %s: consumer metrics unreadable: %r", p.key, exc)
            self.metrics.record_error(p.key, "ConsumerMetricsUnreadable")
            return ConsumerReading(None, Counts())

    async def _scrape(self, kube: Kube, p: ImagePipeline, memory: Memory, now: float) -> ConsumerReading:
        """Scrape the ready pods; the deltas since the previous scrape (none on the first)."""
        targets = await consumer_targets(kube, p)
        pods = await scrape_pods(self.http(), targets, self.policy.max_response_bytes)
        return read_scrape(memory, pods, now)


def register(registry: kopf.OperatorRegistry, kube: Callable[[], Kube], scaler: Autoscaler) -> None:
    """The timer and the forgetting of deleted pipelines (no finalizer: optional=True)."""

    @kopf.timer(GROUP, VERSION, PLURAL, id=TIMER_ID, interval=scaler.interval, registry=registry)
    async def autoscale(body: kopf.Body, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
        await scaler.tick(kube(), body, status, patch)

    register_quietly(registry, autoscale, TIMER_ID)

    @kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, registry=registry)
    def forget(body: kopf.Body, **_: Any) -> None:
        with contextlib.suppress(InvalidPipeline):
            scaler.forget(parse_imagepipeline(body))
