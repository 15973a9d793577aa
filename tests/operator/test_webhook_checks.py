"""What the operator concludes about a webhook, as tables: the target check
under its policy (refused, warned, allowed; real resolution of address
literals and an unresolvable name; the allowed URL hosts, checked before
any resolution), and why deliverer pods do not run."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from imagepipe.operator.deliverer_pods import deliverer_problem
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.trust import TrustPolicy, policy_from_env
from imagepipe.operator.webhook_target import NOT_ALLOWED_REASON, UNSAFE_REASON, judge_target

GLOBAL = "https://93.184.215.14/hooks"  # a global address: no DNS, no connection needed

TARGETS = {
    # name: (url, allow private?, deliverer built?, refused?, warned?, in the message)
    "global address": (GLOBAL, False, True, False, False, ""),
    "loopback": ("http://127.0.0.1:8080/in", False, False, True, False, "loopback"),
    "loopback, private allowed": ("http://127.0.0.1:8080/in", True, True, False, False, ""),
    "metadata service": ("http://169.254.169.254/latest/", False, False, True, False, "link-local"),
    "private network": ("http://10.0.0.7/in", False, False, True, False, "private"),
    "IPv4-mapped loopback": ("http://[::ffff:127.0.0.1]/in", False, False, True, False, "IPv4-mapped"),
    "multicast, even with private allowed": ("http://224.0.0.1/in", True, False, True, False, "multicast"),
    "a name that does not resolve now": ("https://hooks.invalid/in", False, True, False, True, "resolve"),
}


def pipeline(minimal: dict[str, Any], url: str) -> Any:
    body = copy.deepcopy(minimal)
    body["spec"]["webhook"] = {"url": url, "secretRef": {"name": "hooks"}}
    return parse_imagepipeline(body)


@pytest.mark.parametrize("row", sorted(TARGETS))
def test_the_target_check(minimal: dict[str, Any], row: str) -> None:
    url, allow, built, refused, warned, fragment = TARGETS[row]
    got = asyncio.run(judge_target(pipeline(minimal, url), TrustPolicy(allow_private_webhooks=allow)))
    assert (got.choice.build, got.choice.allow_private) == (built, allow)
    assert (got.refused is not None, bool(got.warning)) == (refused, warned)
    said = got.refused.message if got.refused else got.warning
    assert fragment in said
    if got.refused:
        assert got.refused.reason == UNSAFE_REASON and "spec.webhook.url" in got.refused.message
        # The operator's own setting is named, not the deliverer's variable.
        if not allow and fragment in ("loopback", "private", "link-local", "IPv4-mapped"):
            assert "operator.policy.allowPrivateWebhooks" in said
        assert "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE=" not in said


HOSTS = ("hooks.example.com", "*.receivers.example.net")
ALLOWED_HOSTS = {
    # name: (url, allowed URL hosts, allow private?, the refusal's reason or None)
    "no list: any host": ("https://93.184.215.14/in", (), False, None),
    "an exact host": ("https://hooks.example.com/in", HOSTS, False, None),
    "an exact host, another case and a port": ("https://HOOKS.Example.com:8443/in", HOSTS, False, None),
    "under an allowed suffix": ("https://a.b.receivers.example.net/in", HOSTS, False, None),
    "the suffix's own name is not under it": (
        "https://receivers.example.net/in",
        HOSTS,
        False,
        NOT_ALLOWED_REASON,
    ),
    "a name that only ends like an allowed one": (
        "https://evilhooks.example.com/in",
        HOSTS,
        False,
        NOT_ALLOWED_REASON,
    ),
    "an address literal not listed": ("https://93.184.215.14/in", HOSTS, False, NOT_ALLOWED_REASON),
    "the metadata service not listed: not allowed, before unsafe": (
        "http://169.254.169.254/latest/",
        HOSTS,
        True,
        NOT_ALLOWED_REASON,
    ),
    "a name not listed: refused without resolving it": (
        "https://hooks.invalid/in",
        HOSTS,
        False,
        NOT_ALLOWED_REASON,
    ),
    "listed, yet private: still unsafe": ("http://10.0.0.7/in", ("10.0.0.7",), False, UNSAFE_REASON),
    "listed and private, private allowed": ("http://10.0.0.7/in", ("10.0.0.7",), True, None),
    "a listed name that does not resolve: built, with a warning": (
        "https://hooks.invalid/in",
        ("hooks.invalid",),
        False,
        None,
    ),
}


@pytest.mark.parametrize("row", sorted(ALLOWED_HOSTS))
def test_the_allowed_url_hosts(minimal: dict[str, Any], row: str) -> None:
    url, hosts, allow, reason = ALLOWED_HOSTS[row]
    policy = TrustPolicy(url_hosts=hosts, allow_private_webhooks=allow)
    got = asyncio.run(judge_target(pipeline(minimal, url), policy))
    assert (got.refused.reason if got.refused else None) == reason
    assert got.choice.build is (reason is None) and got.choice.allow_private is allow
    if reason == NOT_ALLOWED_REASON:
        assert got.refused is not None and not got.warning
        message = got.refused.message
        assert f"spec.webhook.url {url!r}" in message and str(list(hosts)) in message
        assert "IMAGEPIPE_OPERATOR_ALLOWED_URL_HOSTS" in message and "no deliverer is running" in message


def test_the_allowed_url_hosts_setting() -> None:
    env = {"IMAGEPIPE_OPERATOR_ALLOWED_URL_HOSTS": " hooks.example.com, *.receivers.example.net ,"}
    assert policy_from_env(env).url_hosts == HOSTS


def test_no_webhook_no_check(minimal: dict[str, Any]) -> None:
    got = asyncio.run(judge_target(parse_imagepipeline(minimal), TrustPolicy()))
    assert got.refused is None and not got.warning


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
SECRET_FILE_ABSENT = (
    "imagepipe deliver: invalid configuration: IMAGEPIPE_WEBHOOK_SECRET_FILE="
    "'/var/run/imagepipe/webhook/secret': cannot be read (No such file or directory)\n"
)
SECRET_FILE_INVALID = (
    "imagepipe deliver: invalid configuration: IMAGEPIPE_WEBHOOK_SECRET_FILE="
    "'/var/run/imagepipe/webhook/secret': secret 1 of 1: must start with 'whsec_'\n"
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
    "the mounted secret absent (its Secret or key missing)": (
        [
            pod(
                "a",
                waiting("CrashLoopBackOff", "back-off"),
                {"terminated": {"exitCode": 2, "message": SECRET_FILE_ABSENT}},
            )
        ],
        "WebhookSecretMissing",
        "Secret 'hooks', key 'secret'",
    ),
    "the mounted secret present but invalid": (
        [
            pod(
                "a",
                waiting("CrashLoopBackOff", "back-off"),
                {"terminated": {"exitCode": 2, "message": SECRET_FILE_INVALID}},
            )
        ],
        "DelivererRefused",
        "must start with 'whsec_'",
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
