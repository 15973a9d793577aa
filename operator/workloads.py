"""Pure builders of the two Deployments: ingest (`imagepipe serve`) and
consumer (`imagepipe consume`), configured by the IMAGEPIPE_* environment of
docs/design.md and the pipelines file mounted from `NAME-config`; and the
pieces of a pod every role shares (deliverer.py builds the third)."""

from __future__ import annotations

from typing import Any

from imagepipe.capacity import termination_grace_seconds
from imagepipe.config import Settings

from .builders import (
    CONFIG_HASH_ANNOTATION,
    CONFIG_MOUNT,
    INGEST_PORT,
    METRICS_PORT,
    PIPELINES_FILE,
    REPLICAS_OWNER_ANNOTATION,
    Manifest,
    build_configmap,
    config_hash,
    labels,
    metadata,
    selector,
)
from .imagepipeline import ImagePipeline
from .webhookspec import delivery_queue

# SIGTERM → drain for the consumer's grace period; the kubelet kills after this margin more.
TERMINATION_MARGIN_SECONDS = 10
# The ingest's memory limit is not here: it is base + upload budget (ingest_memory.py).
DEFAULT_RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "ingest": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {}},
    "consumer": {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
    "deliverer": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
}


def env_var(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "value": str(value)}


def common_env(p: ImagePipeline) -> list[dict[str, Any]]:
    """What both roles read: backends, the pipelines file, logging, the objective."""
    backend = p.backend
    queue_var = "IMAGEPIPE_QUEUE_URL" if backend.queue_is_url else "IMAGEPIPE_QUEUE_NAME"
    env = [
        env_var("IMAGEPIPE_BUCKET", backend.bucket),
        env_var(queue_var, backend.queue),
        env_var("AWS_REGION", backend.region),
        env_var("IMAGEPIPE_PIPELINES_FILE", f"{CONFIG_MOUNT}/{PIPELINES_FILE}"),
        env_var("IMAGEPIPE_MAX_PIXELS", p.limits.max_pixels),
        env_var("IMAGEPIPE_OBJECTIVE_SECONDS", p.slo.latency_seconds),
        env_var("IMAGEPIPE_LOG_LEVEL", p.log_level),
        env_var("IMAGEPIPE_LOG_FORMAT", "json"),
        env_var("IMAGEPIPE_IMAGEPIPELINE", p.key),
    ]
    if backend.endpoint_url:
        env.append(env_var("IMAGEPIPE_AWS_ENDPOINT_URL", backend.endpoint_url))
    if p.public_url:
        env.append(env_var("IMAGEPIPE_PUBLIC_URL", p.public_url))
    return env


def ingest_env(p: ImagePipeline) -> list[dict[str, Any]]:
    ingest = p.ingest
    env = [
        *common_env(p),
        env_var("IMAGEPIPE_HOST", "0.0.0.0"),
        env_var("IMAGEPIPE_PORT", INGEST_PORT),
        env_var("IMAGEPIPE_MAX_UPLOAD_BYTES", p.limits.max_upload_bytes),
        env_var("IMAGEPIPE_UPLOAD_TIMEOUT_SECONDS", p.limits.upload_timeout_seconds),
        env_var("IMAGEPIPE_UPLOAD_BUDGET_BYTES", ingest.memory.budget_bytes),
        env_var("IMAGEPIPE_RATE_LIMIT_PER_SECOND", ingest.rate_per_second),
        env_var("IMAGEPIPE_RATE_LIMIT_BURST", ingest.rate_burst),
        env_var("IMAGEPIPE_SHUTDOWN_DELAY_SECONDS", ingest.shutdown_delay_seconds),
    ]
    if ingest.cors_origins:
        env.append(env_var("IMAGEPIPE_CORS_ORIGINS", ",".join(ingest.cors_origins)))
    keys = ingest.api_keys_secret
    if keys:
        env.append(secret_env("IMAGEPIPE_API_KEYS", keys.name, keys.key))
    return env + webhook_env(p)


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    """A variable the kubelet reads from a Secret key: its value is in no manifest."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def webhook_env(p: ImagePipeline) -> list[dict[str, Any]]:
    """What the event producers (ingest, consumer) read: where events go, which, and the
    delivery queue; nothing without spec.webhook (their env stays as it was)."""
    if p.webhook is None:
        return []
    return [
        env_var("IMAGEPIPE_WEBHOOK_URL", p.webhook.url),
        env_var("IMAGEPIPE_WEBHOOK_EVENTS", ",".join(p.webhook.events)),
        env_var(*delivery_queue(p.backend.queue)),
    ]


def consumer_env(p: ImagePipeline) -> list[dict[str, Any]]:
    backend = p.backend
    return [
        *common_env(p),
        env_var("IMAGEPIPE_WORKER_SLOTS", p.scaling.slots_per_pod),
        env_var("IMAGEPIPE_METRICS_PORT", METRICS_PORT),
        env_var("IMAGEPIPE_SHUTDOWN_GRACE_SECONDS", p.consumer.shutdown_grace_seconds),
        env_var("IMAGEPIPE_VISIBILITY_TIMEOUT_SECONDS", backend.visibility_timeout_seconds),
        *webhook_env(p),
    ]


def _resources(p: ImagePipeline, role: str) -> dict[str, Any]:
    given = p.resources[role]
    defaults = DEFAULT_RESOURCES[role]
    resources = {
        "requests": dict(given.requests or defaults["requests"]),
        "limits": dict(given.limits or defaults["limits"]),
    }
    if role == "ingest":
        resources["limits"]["memory"] = str(p.ingest.memory.limit_bytes)
    return resources


def role_container(
    p: ImagePipeline, role: str, command: str, env: list[dict[str, Any]], config: bool = True
) -> dict[str, Any]:
    """`config`: mount the pipelines file (the roles that render or accept images read it)."""
    mounts = [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}] if config else []
    result: dict[str, Any] = {
        "name": role,
        "image": p.image,
        "imagePullPolicy": p.image_pull_policy,
        "args": [command],
        "env": env,
        "resources": _resources(p, role),
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    secret = p.backend.credentials_secret
    if secret:
        result["envFrom"] = [{"secretRef": {"name": secret}}]
    return result


def http_probe(path: str, port: str, period: int, failures: int, timeout: int = 1) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def pod_template(p: ImagePipeline, role: str, main: dict[str, Any], config: bool = True) -> dict[str, Any]:
    """`config`: with the pipelines file, and its hash (a change rolls the pods)."""
    volumes = [{"name": "config", "configMap": {"name": p.child("config")}}] if config else []
    pod: dict[str, Any] = {
        "containers": [main],
        "volumes": [*volumes, {"name": "tmp", "emptyDir": {}}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    # No role calls the Kubernetes API: no token in the pod (IRSA and pod
    # identity project their own web-identity token regardless).
    pod["automountServiceAccountToken"] = False
    account = p.service_account(role)
    if account:
        pod["serviceAccountName"] = account
    annotations = {CONFIG_HASH_ANNOTATION: config_hash(build_configmap(p))} if config else {}
    return {"metadata": {"labels": labels(p, role), "annotations": annotations}, "spec": pod}


def role_deployment(p: ImagePipeline, role: str, replicas: int, template: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(p, p.child(role), role),
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector(p, role)}, "template": template},
    }


def build_ingest_deployment(p: ImagePipeline) -> Manifest:
    container = role_container(p, "ingest", "serve", ingest_env(p))
    container["ports"] = [{"name": "http", "containerPort": INGEST_PORT, "protocol": "TCP"}]
    # Both answer from the process's state (never a backend call), so a short
    # timeout matches; backend health comes from the ingest's own background check.
    container["livenessProbe"] = http_probe("/healthz", "http", 10, 3, timeout=2)
    container["readinessProbe"] = http_probe("/readyz", "http", 5, 2, timeout=2)
    template = pod_template(p, "ingest", container)
    template["metadata"]["annotations"].update(scrape_annotations(INGEST_PORT))
    # Delay (still accepting while endpoints go), drain one whole upload, margin:
    # IMAGEPIPE_SHUTDOWN_GRACE_SECONDS is not set for the ingest, so its default applies.
    template["spec"]["terminationGracePeriodSeconds"] = termination_grace_seconds(
        p.ingest.shutdown_delay_seconds, p.limits.upload_timeout_seconds, Settings().shutdown_grace_seconds
    )
    return role_deployment(p, "ingest", p.ingest.replicas, template)


def build_consumer_deployment(p: ImagePipeline) -> Manifest:
    """`spec.replicas` is the creation value only: afterwards the autoscaler (or KEDA) owns it."""
    container = role_container(p, "consumer", "consume", consumer_env(p))
    container["ports"] = [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}]
    container["livenessProbe"] = http_probe("/healthz", "metrics", 10, 6)
    container["readinessProbe"] = http_probe("/healthz", "metrics", 5, 2)
    template = pod_template(p, "consumer", container)
    template["metadata"]["annotations"].update(scrape_annotations(METRICS_PORT))
    grace = p.consumer.shutdown_grace_seconds + TERMINATION_MARGIN_SECONDS
    template["spec"]["terminationGracePeriodSeconds"] = grace
    deployment = role_deployment(p, "consumer", p.scaling.min_replicas, template)
    deployment["metadata"]["annotations"] = {REPLICAS_OWNER_ANNOTATION: p.scaling.engine}
    return deployment


def scrape_annotations(port: int) -> dict[str, str]:
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}
