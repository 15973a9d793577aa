"""Apply one ImagePipeline's children: read every candidate by name, plan
with `ownership.plan`, then create, patch and prune (a thin async shell)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import kopf

from .children import build_children, create_only, prunable
from .deliverer import BUILD, DelivererChoice
from .imagepipeline import ImagePipeline
from .kube import Kube, collection_path
from .ownership import Key, Plan, describe, key, plan
from .rollout import ingest_must_wait

PROMETHEUS_API = "/apis/monitoring.coreos.com/v1"
# How soon a held-back ingest rollout looks at the consumers again.
ROLLOUT_RETRY_SECONDS = 10.0


def child_path(namespace: str, child: Key) -> str:
    api_version, kind, name = child
    return f"{collection_path(api_version, kind, namespace)}/{name}"


async def plan_children(
    kube: Kube, body: kopf.Body, p: ImagePipeline, deliverer: DelivererChoice = BUILD
) -> Plan:
    """What to do, from the desired children (adopted: our controller reference)
    and what the API server has under their names and the prunable ones."""
    prometheus = await kube.exists(PROMETHEUS_API)
    desired = []
    for child in build_children(p, prometheus_rules=prometheus, deliverer=deliverer):
        kopf.adopt(child, owner=body)
        desired.append((child, create_only(child)))
    candidates = {key(child) for child, _ in desired} | set(prunable(p))
    # A 404 (no such object, or no such API: KEDA or the Prometheus operator absent) reads as None.
    current = {c: await kube.request("GET", child_path(p.namespace, c)) for c in sorted(candidates)}
    todo = plan(desired, current, prunable(p), p.uid)
    ingest, consumer = (
        ("apps/v1", "Deployment", p.child("ingest")),
        ("apps/v1", "Deployment", p.child("consumer")),
    )
    if ingest_must_wait(current.get(ingest), p.image, current.get(consumer)):
        # Consumers roll first; the next reconciliation patches the ingest.
        held = [change for change in todo.patch if key(change) != ingest]
        return dataclasses.replace(todo, patch=held, waiting=True)
    return todo


async def apply_children(
    kube: Kube,
    body: kopf.Body,
    p: ImagePipeline,
    logger: logging.Logger | Any,
    deliverer: DelivererChoice = BUILD,
) -> list[Key]:
    """Make the children match the spec; returns the conflicts (nothing applied if any)."""
    todo = await plan_children(kube, body, p, deliverer)
    for child in todo.create:
        await kube.create(child)
        logger.info(f"{child['kind']} {child['metadata']['name']}: created")
    for change in todo.patch:
        await kube.patch(change)
        logger.info(f"{change['kind']} {change['metadata']['name']}: patched")
    for gone, uid in todo.prune:
        await kube.delete(child_path(p.namespace, gone), uid)
        logger.info(f"{describe(gone)}: deleted (the spec no longer asks for it)")
    if todo.waiting:
        logger.info(f"Deployment {p.child('ingest')}: image change waits for the consumers' rollout")
        raise kopf.TemporaryError("the ingest rolls after the consumers", delay=ROLLOUT_RETRY_SECONDS)
    return todo.conflicts
