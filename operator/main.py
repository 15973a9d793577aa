"""Wiring: one kopf registry with the login, the handlers, the autoscaler
timer, the metrics server and the settings; `run` starts kopf (peering on by
default: several replicas, one acts)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from . import handlers
from .autoscaling import loop
from .metrics import DEFAULT_PORT, MetricsServer
from .trust import PolicyError, policy_from_env

PEERING_NAME = "imagepipe-operator"
Login = Callable[..., kopf.ConnectionInfo | None]


def default_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, then a kubeconfig."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def build_registry(
    runtime: handlers.OperatorRuntime,
    login: Login = default_login,
    autoscale_interval: float = loop.DEFAULT_INTERVAL_SECONDS,
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    scaler = loop.Autoscaler(
        runtime.metrics,
        interval=autoscale_interval,
        read_depth=runtime.read_queue_depth,
        policy=runtime.policy,
    )
    server = MetricsServer(runtime.metrics, port=runtime.metrics_port or 0)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = 20  # INFO and up become Kubernetes events
        settings.execution.max_workers = 8
        if runtime.metrics_port is not None:
            await server.start()

    @kopf.on.login(registry=registry)
    def connect(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = login(**kwargs)
        runtime.connection = info
        return info

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await server.stop()
        await scaler.close()
        await runtime.close()

    handlers.register(registry, runtime)
    loop.register(registry, runtime.kube, scaler)
    return registry


def run(args: argparse.Namespace) -> int:
    port = getattr(args, "metrics_port", None)
    try:
        policy = policy_from_env()
    except PolicyError as exc:
        print(f"imagepipe operator: {exc}", file=sys.stderr)
        return 2
    runtime = handlers.OperatorRuntime(
        metrics_port=metrics_port_from_env() if port is None else port,
        policy=policy,
        reconcile_interval=getattr(args, "reconcile_interval", None) or handlers.DRIFT_SECONDS,
    )
    interval = getattr(args, "autoscale_interval", None) or loop.DEFAULT_INTERVAL_SECONDS
    namespaces = getattr(args, "namespace", None) or ()
    standalone = bool(getattr(args, "standalone", False))
    asyncio.run(
        kopf.operator(
            registry=build_registry(runtime, autoscale_interval=interval),
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone,
            peering_name=None if standalone else (getattr(args, "peering", None) or PEERING_NAME),
            liveness_endpoint=getattr(args, "liveness", None),
        )
    )
    return 0


def metrics_port_from_env(env: Mapping[str, str] = os.environ) -> int:
    """IMAGEPIPE_METRICS_PORT (default 9102)."""
    value = env.get("IMAGEPIPE_METRICS_PORT", "")
    try:
        return int(value) if value else DEFAULT_PORT
    except ValueError as exc:
        raise SystemExit(f"IMAGEPIPE_METRICS_PORT: expected a port number, got {value!r}") from exc
