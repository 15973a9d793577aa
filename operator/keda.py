"""The KEDA option: a ScaledObject on the consumer Deployment with an
aws-sqs-queue trigger (visible + in-flight messages / queueLength), and the
TriggerAuthentication for a credentials Secret."""

from __future__ import annotations

import math
from typing import Any

from .builders import Manifest, labels
from .imagepipeline import ImagePipeline

# KEDA's HPA syncs every 15 s: the detection delay of this engine.
DETECTION_SECONDS = 15.0


def queue_length(p: ImagePipeline) -> int:
    """Messages per pod: what one pod at the target utilisation clears within the
    time left before the objective (X - Tₛ - D - S), at least one service time."""
    scaling = p.scaling
    service = scaling.expected_service_seconds
    budget = p.slo.latency_seconds - scaling.pod_startup_seconds - DETECTION_SECONDS - service
    per_pod = scaling.slots_per_pod * scaling.target_utilisation * max(budget, service) / service
    return max(1, math.floor(per_pod))


def _trigger(p: ImagePipeline) -> dict[str, Any]:
    backend = p.backend
    meta = {
        "queueURL": backend.queue,
        "queueLength": str(queue_length(p)),
        "awsRegion": backend.region,
        "scaleOnInFlight": "true",
        "scaleOnDelayed": "false",
    }
    if backend.endpoint_url:
        meta["awsEndpoint"] = backend.endpoint_url
    trigger: dict[str, Any] = {"type": "aws-sqs-queue", "metadata": meta}
    if backend.credentials_secret:
        trigger["authenticationRef"] = {"name": p.child("consumer")}
    elif p.consumer.service_account_name:
        meta["identityOwner"] = "workload"
    return trigger


def build_scaled_object(p: ImagePipeline) -> Manifest | None:
    """The ScaledObject when `spec.scaling.engine` is keda, else None."""
    scaling = p.scaling
    if scaling.engine != "keda":
        return None
    down = {"stabilizationWindowSeconds": scaling.scale_down_stabilisation_seconds}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": p.child("consumer"), "namespace": p.namespace, "labels": labels(p, "consumer")},
        "spec": {
            "scaleTargetRef": {"name": p.child("consumer")},
            "pollingInterval": 15,
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "advanced": {
                # When the ScaledObject goes (engine switched to builtin), the Deployment
                # keeps the count KEDA left, and the builtin loop takes over from there.
                "restoreToOriginalReplicaCount": False,
                "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": down}},
            },
            "triggers": [_trigger(p)],
        },
    }


def build_trigger_authentication(p: ImagePipeline) -> Manifest | None:
    """Static AWS keys for KEDA from the credentials Secret (keda engine only)."""
    secret = p.backend.credentials_secret
    if p.scaling.engine != "keda" or not secret:
        return None
    refs = [
        {"parameter": "awsAccessKeyID", "name": secret, "key": "AWS_ACCESS_KEY_ID"},
        {"parameter": "awsSecretAccessKey", "name": secret, "key": "AWS_SECRET_ACCESS_KEY"},
    ]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": p.child("consumer"), "namespace": p.namespace, "labels": labels(p, "consumer")},
        "spec": {"secretTargetRef": refs},
    }
