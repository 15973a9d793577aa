"""Pure builder of the `NAME-deliverer` Deployment (`imagepipe deliver`): the
one role that POSTs signed events to `spec.webhook.url`, from the delivery
queue, so a slow receiver never holds a render slot.

Only this role gets the signing secret, and only as a file: the Secret's key
mounted read-only (the kubelet reads the Secret; no manifest, ConfigMap or
environment holds it), named by IMAGEPIPE_WEBHOOK_SECRET_FILE. The kubelet
updates a mounted Secret in place, and the deliverer re-reads the file when
it changes: the secret rotates without a restart (an env var never changes
in a running pod). The volume is optional: a missing Secret or key leaves
the file absent, and the deliverer's one-line refusal naming the variable
reaches the pod's status, where the operator reports it as
WebhookSecretMissing (deliverer_pods.py); a required volume would instead
hold the pod in ContainerCreating with the reason only in an Event. It
reads no pipelines file, so a change of the variants does not roll it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from imagepipe.config import Settings

from .builders import METRICS_PORT, Manifest
from .imagepipeline import ImagePipeline
from .workloads import (
    TERMINATION_MARGIN_SECONDS,
    common_env,
    env_var,
    http_probe,
    pod_template,
    role_container,
    role_deployment,
    scrape_annotations,
    webhook_env,
)

ROLE = "deliverer"
# What the rendering roles read and the deliverer does not (it has no pipelines file mounted).
NOT_READ = frozenset(
    {
        "IMAGEPIPE_PIPELINES_FILE",
        "IMAGEPIPE_MAX_PIXELS",
        "IMAGEPIPE_OBJECTIVE_SECONDS",
        "IMAGEPIPE_PUBLIC_URL",
    }
)
SECRET_VOLUME = "webhook-secret"
SECRET_MOUNT = "/var/run/imagepipe/webhook"
SECRET_FILE_NAME = "secret"
SECRET_FILE = f"{SECRET_MOUNT}/{SECRET_FILE_NAME}"
# The files are root's; the image's user (Dockerfile: USER 10001:10001) reads
# them through its group, which the kubelet gives them (fsGroup). No one writes.
IMAGE_GROUP = 10001
SECRET_MODE = 0o440
# Deliveries are at least once and deduplicated by the delivery record: one
# pod is enough, and the queue keeps every event while it restarts.
REPLICAS = 1


@dataclass(frozen=True)
class DelivererChoice:
    """What the operator decided beside the spec: whether to build the deliverer at
    all (no: its target was refused) and whether its policy allows private targets."""

    build: bool = True
    allow_private: bool = False


# Without a target check (`imagepipe operator render`): built, private targets refused.
BUILD = DelivererChoice()


def deliverer_env(p: ImagePipeline, allow_private: bool) -> list[dict[str, Any]]:
    webhook = p.webhook
    assert webhook is not None
    env = [e for e in common_env(p) if e["name"] not in NOT_READ]
    env += [e for e in webhook_env(p) if e["name"] != "IMAGEPIPE_WEBHOOK_EVENTS"]  # filtered when emitted
    env.append(env_var("IMAGEPIPE_WEBHOOK_SECRET_FILE", SECRET_FILE))
    env.append(env_var("IMAGEPIPE_METRICS_PORT", METRICS_PORT))
    if webhook.horizon_seconds is not None:
        env.append(env_var("IMAGEPIPE_WEBHOOK_HORIZON_SECONDS", webhook.horizon_seconds))
    if allow_private:
        env.append(env_var("IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE", "true"))
    return env


def secret_volume(p: ImagePipeline) -> dict[str, Any]:
    assert p.webhook is not None
    secret = p.webhook.secret
    return {
        "name": SECRET_VOLUME,
        "secret": {
            "secretName": secret.name,
            "items": [{"key": secret.key, "path": SECRET_FILE_NAME}],
            "defaultMode": SECRET_MODE,
            "optional": True,
        },
    }


def build_deliverer_deployment(p: ImagePipeline, choice: DelivererChoice | None = None) -> Manifest | None:
    """The deliverer when spec.webhook is set and its target was not refused, else None."""
    choice = choice or BUILD
    if p.webhook is None or not choice.build:
        return None
    main = role_container(p, ROLE, "deliver", deliverer_env(p, choice.allow_private), config=False)
    main["volumeMounts"].append({"name": SECRET_VOLUME, "mountPath": SECRET_MOUNT, "readOnly": True})
    main["ports"] = [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}]
    main["livenessProbe"] = http_probe("/healthz", "metrics", 10, 6)
    main["readinessProbe"] = http_probe("/healthz", "metrics", 5, 2)
    # A start-up refusal (a bad secret, an unsafe target) is one line: the pod's
    # status carries it, and the operator reports it (deliverer_pods.py).
    main["terminationMessagePolicy"] = "FallbackToLogsOnError"
    template = pod_template(p, ROLE, main, config=False)
    template["metadata"]["annotations"].update(scrape_annotations(METRICS_PORT))
    template["spec"]["volumes"].append(secret_volume(p))
    template["spec"]["securityContext"]["fsGroup"] = IMAGE_GROUP
    # SIGTERM lets the attempts in flight finish (each bounded by its timeout); the rest stay queued.
    grace = math.ceil(Settings().webhook_timeout_seconds) + TERMINATION_MARGIN_SECONDS
    template["spec"]["terminationGracePeriodSeconds"] = grace
    return role_deployment(p, ROLE, REPLICAS, template)
