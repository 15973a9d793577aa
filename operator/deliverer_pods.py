"""Why the NAME-deliverer pods do not run, from their status: the kubelet's
verdict on the webhook Secret, and the one line a refusing deliverer prints.

The operator has no access to Secrets (least privilege: `get` on Secrets
reads every value in the namespace), so a missing Secret or key is learnt
where it matters: the webhook secret is an optional volume (deliverer.py),
so without it the deliverer starts, finds no file and exits 2 with one line
naming IMAGEPIPE_WEBHOOK_SECRET_FILE, which `terminationMessagePolicy:
FallbackToLogsOnError` puts into the pod's status; another Secret (the
credentials) missing is the kubelet's `CreateContainerConfigError`. A
deliverer refusing its configuration otherwise (a secret that is not
`whsec_…`, an unsafe target) exits 2 the same way. `deliverer_problem` is
pure; the rest is I/O.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

from imagepipe.problems import Problem

from .builders import selector
from .deliverer import ROLE
from .imagepipeline import ImagePipeline
from .kube import Kube

# The exit status of a role refusing its configuration (imagepipe.cli).
CONFIG_EXIT_STATUS = 2
MAX_MESSAGE = 300
# The deliverer's refusal when the mounted secret is absent (imagepipe.config, signing.read_secrets).
SECRET_FILE_UNREADABLE = re.compile(r"IMAGEPIPE_WEBHOOK_SECRET_FILE=\S+: cannot be read")


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((pod.get("status") or {}).get("containerStatuses") or [])


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "")[:MAX_MESSAGE]


def deliverer_problem(pods: Mapping[str, Any], p: ImagePipeline) -> Problem | None:
    """The first reason a deliverer pod cannot deliver; None when none is seen."""
    secret = p.webhook.secret if p.webhook else None
    for pod in pods.get("items") or []:
        name = (pod.get("metadata") or {}).get("name", "?")
        for status in _statuses(pod):
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") == "CreateContainerConfigError":
                message = str(waiting.get("message", ""))
                # The kubelet's words: `secret "NAME" not found`, `couldn't find key K in Secret NS/NAME`.
                if secret and (f'"{secret.name}"' in message or message.endswith(f"/{secret.name}")):
                    return Problem(
                        "WebhookSecretMissing",
                        f"pod {name} cannot start: {message} (spec.webhook.secretRef: "
                        f"Secret {secret.name!r}, key {secret.key!r}, holding whsec_...)",
                    )
                return Problem("DelivererCannotStart", f"pod {name} cannot start: {message}")
            terminated = (status.get("lastState") or {}).get("terminated") or {}
            if terminated.get("exitCode") == CONFIG_EXIT_STATUS:
                line = _last_line(str(terminated.get("message", ""))) or "no message"
                if secret and SECRET_FILE_UNREADABLE.search(line):
                    return Problem(
                        "WebhookSecretMissing",
                        f"pod {name} has no webhook secret: {line} (spec.webhook.secretRef: "
                        f"Secret {secret.name!r}, key {secret.key!r}, holding whsec_...)",
                    )
                return Problem("DelivererRefused", f"pod {name} refuses its configuration: {line}")
    return None


def pods_path(p: ImagePipeline) -> str:
    query = urllib.parse.urlencode(
        {"labelSelector": ",".join(f"{k}={v}" for k, v in selector(p, ROLE).items())}
    )
    return f"/api/v1/namespaces/{p.namespace}/pods?{query}"


async def read_deliverer_problem(kube: Kube, p: ImagePipeline) -> Problem | None:
    """Lists the deliverer's pods (the grant the autoscaler already has) and judges them."""
    if p.webhook is None:
        return None
    return deliverer_problem(await kube.request("GET", pods_path(p)) or {}, p)
