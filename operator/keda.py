"""The KEDA option: a ScaledObject on the consumer Deployment with an
aws-sqs-queue trigger (visible + in-flight messages / queueLength), and the
TriggerAuthentication for a credentials Secret."""

from __future__ import annotations

import math
from typing import Any

from .builders import Manifest, labels
from .defaults import Pipeline

# KEDA's HPA syncs every 15 s: the detection delay of this engine.
DETECTION_SECONDS = 15.0


def queue_length(p: Pipeline) -> int:
    """Messages per pod: what one pod at the target utilisation clears within the
    time left before the objective (X - Tₛ - D - S), at least one service time."""
    scaling = p.spec["scaling"]
    service = float(scaling["expectedServiceSeconds"])
    budget = (
        float(p.spec["slo"]["latencySeconds"]) - scaling["podStartupSeconds"] - DETECTION_SECONDS - service
    )
    per_pod: float = scaling["slotsPerPod"] * scaling["targetUtilisation"] * max(budget, service) / service
    return max(1, math.floor(per_pod))


def _trigger(p: Pipeline) -> dict[str, Any]:
    backend = p.spec["backend"]
    meta = {
        "queueURL": backend["queue"],
        "queueLength": str(queue_length(p)),
        "awsRegion": backend["region"],
        "scaleOnInFlight": "true",
        "scaleOnDelayed": "false",
    }
    if backend.get("endpointUrl"):
        meta["awsEndpoint"] = backend["endpointUrl"]
    trigger: dict[str, Any] = {"type": "aws-sqs-queue", "metadata": meta}
    if backend.get("credentialsSecret"):
        trigger["authenticationRef"] = {"name": p.child("consumer")}
    elif backend.get("serviceAccountName"):
        meta["identityOwner"] = "workload"
    return trigger


def build_scaled_object(p: Pipeline) -> Manifest | None:
    """The ScaledObject when `spec.scaling.engine` is keda, else None."""
    scaling = p.spec["scaling"]
    if scaling["engine"] != "keda":
        return None
    down = {"stabilizationWindowSeconds": scaling["scaleDownStabilisationSeconds"]}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": p.child("consumer"), "namespace": p.namespace, "labels": labels(p, "consumer")},
        "spec": {
            "scaleTargetRef": {"name": p.child("consumer")},
            "pollingInterval": 15,
            "minReplicaCount": scaling["minReplicas"],
            "maxReplicaCount": scaling["maxReplicas"],
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": down}}},
            "triggers": [_trigger(p)],
        },
    }


def build_trigger_authentication(p: Pipeline) -> Manifest | None:
    """Static AWS keys for KEDA from the credentials Secret (keda engine only)."""
    secret = p.spec["backend"].get("credentialsSecret")
    if p.spec["scaling"]["engine"] != "keda" or not secret:
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
