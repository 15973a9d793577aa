"""Wiring: one kopf registry with the login, the handlers and the settings;
`run` starts kopf (peering on by default: several replicas, one acts)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

import kopf

from . import handlers

PEERING_NAME = "imagepipe-operator"
Login = Callable[..., kopf.ConnectionInfo | None]


def default_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account first, then a kubeconfig."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


def build_registry(ctx: handlers.Context, login: Login = default_login) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = 20  # INFO and up become Kubernetes events
        settings.execution.max_workers = 8

    @kopf.on.login(registry=registry)
    def connect(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = login(**kwargs)
        ctx.connection = info
        return info

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await ctx.close()

    handlers.register(registry, ctx)
    return registry


def run(args: argparse.Namespace) -> int:
    ctx = handlers.Context()
    namespaces = getattr(args, "namespace", None) or ()
    standalone = bool(getattr(args, "standalone", False))
    asyncio.run(
        kopf.operator(
            registry=build_registry(ctx),
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone,
            peering_name=None if standalone else (getattr(args, "peering", None) or PEERING_NAME),
            liveness_endpoint=getattr(args, "liveness", None),
        )
    )
    return 0
