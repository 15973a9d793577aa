"""Consumers roll before the ingest: a new ingest may send messages (a newer
`v`) that only new consumers may process, and consumers of the previous
release write status documents unconditionally. So a change of the ingest's
image waits until the consumer Deployment runs that image everywhere. Pure
functions over the Deployments as the API server returns them."""

from __future__ import annotations

from typing import Any

Manifest = dict[str, Any]


def image_of(deployment: Manifest | None) -> str | None:
    if deployment is None:
        return None
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or [{}]
    image = containers[0].get("image")
    return str(image) if image else None


def rolled_out(deployment: Manifest | None, image: str) -> bool:
    """Every replica of `deployment` runs `image` (its controller has seen the latest spec)."""
    if deployment is None or image_of(deployment) != image:
        return False
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    generation = int(deployment.get("metadata", {}).get("generation") or 0)
    replicas = int(spec.get("replicas", 1) or 0)
    return (
        int(status.get("observedGeneration") or 0) >= generation
        and int(status.get("updatedReplicas") or 0) >= replicas
        and int(status.get("replicas") or 0) <= replicas  # no old pod left
    )


def ingest_must_wait(
    current_ingest: Manifest | None, desired_image: str, current_consumer: Manifest | None
) -> bool:
    """True while the ingest's image change must wait for the consumers' rollout."""
    if current_ingest is None or image_of(current_ingest) == desired_image:
        return False  # a first creation, or no image change: nothing to order
    return not rolled_out(current_consumer, desired_image)
