"""What the operator concludes about a webhook, as tables: its policy
setting, and why deliverer pods do not run."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from imagepipe.operator.deliverer_pods import deliverer_problem
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.trust import policy_from_env

GLOBAL = "https://93.184.215.14/hooks"


def pipeline(minimal: dict[str, Any], url: str) -> Any:
    body = copy.deepcopy(minimal)
    body["spec"]["webhook"] = {"url": url, "secretRef": {"name": "hooks"}}
    return parse_imagepipeline(body)


def test_the_policy_setting() -> None:
    assert not policy_from_env({}).allow_private_webhooks
    assert policy_from_env({"IMAGEPIPE_OPERATOR_ALLOW_PRIVATE_WEBHOOKS": "true"}).allow_private_webhooks


def pod(name: str, state: dict[str, Any] | None = None, last: dict[str, Any] | None = None) -> dict[str, Any]:
    status = {"name": "deliverer", "state": state or {"running": {}}, "lastState": last or {}}
    return {"metadata": {"name": name}, "status": {"containerStatuses": [status]}}


def waiting(reason: str, message: str) -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


REFUSAL = (
    '{"level": "info", "msg": "starting"}\n'
    "imagepipe deliver: invalid configuration: IMAGEPIPE_WEBHOOK_SECRET=(value hidden): not whsec_...\n"
)
PODS = {
    # name: (pods, reason or None, in the message)
    "none yet": ([], None, ""),
    "running": ([pod("a")], None, ""),
    "pending, no status": ([{"metadata": {"name": "a"}}], None, ""),
    "secret missing": (
        [pod("a", waiting("CreateContainerConfigError", 'secret "hooks" not found'))],
        "WebhookSecretMissing",
        "spec.webhook.secretRef",
    ),
    "key missing": (
        [pod("a", waiting("CreateContainerConfigError", "couldn't find key secret in Secret default/hooks"))],
        "WebhookSecretMissing",
        "key 'secret'",
    ),
    "another secret missing (credentials)": (
        [pod("a", waiting("CreateContainerConfigError", 'secret "aws" not found'))],
        "DelivererCannotStart",
        'secret "aws" not found',
    ),
    "a secret with a longer name is not ours": (
        [pod("a", waiting("CreateContainerConfigError", 'secret "hooks-old" not found'))],
        "DelivererCannotStart",
        "hooks-old",
    ),
    "refuses its configuration": (
        [
            pod(
                "a",
                waiting("CrashLoopBackOff", "back-off"),
                {"terminated": {"exitCode": 2, "message": REFUSAL}},
            )
        ],
        "DelivererRefused",
        "IMAGEPIPE_WEBHOOK_SECRET=(value hidden)",
    ),
    "crashed otherwise: not a configuration verdict": (
        [pod("a", waiting("CrashLoopBackOff", "back-off"), {"terminated": {"exitCode": 137}})],
        None,
        "",
    ),
    "image pull trouble is not ours to report": ([pod("a", waiting("ImagePullBackOff", "x"))], None, ""),
}


@pytest.mark.parametrize("row", sorted(PODS))
def test_why_deliverer_pods_do_not_run(minimal: dict[str, Any], row: str) -> None:
    pods, reason, fragment = PODS[row]
    found = deliverer_problem({"items": pods}, pipeline(minimal, GLOBAL))
    assert (found.reason if found else None) == reason
    if found:
        assert fragment in found.message and "pod a" in found.message
        assert "starting" not in found.message  # only the last line of the log
