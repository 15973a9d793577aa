"""spec.webhook in the real operator loop (KopfRunner) against kmock: the
deliverer appears with its secret by reference only, goes when the webhook
goes, never takes over a foreign NAME-deliverer, is withheld from an unsafe
target or a host outside the operator's allowed URL hosts while the rest
runs, gets private targets only where the operator's policy allows them, and
a deliverer pod the kubelet cannot start for want of its Secret is reported."""

from __future__ import annotations

import json
from typing import Any

from kopf.testing import KopfRunner

from imagepipe.operator.handlers import OperatorRuntime
from imagepipe.operator.trust import TrustPolicy
from imagepipe.operator.webhook_target import NOT_ALLOWED_REASON
from tests.operator.apiserver import (
    DEPLOYMENTS,
    PIPELINES,
    ApiServer,
    backend_ready,
    empty_queue,
    eventually,
    operator_runner,
)
from tests.operator.test_children_owned import CONFIGMAPS, EVENTS, ready_is

SECRETS = "/api/v1/namespaces/default/secrets"
PODS = "/api/v1/namespaces/default/pods"
SECRET_VALUE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GLOBAL = "https://93.184.215.14/hooks"  # global: the operator's check passes without DNS


def runner(api: ApiServer, policy: TrustPolicy | None = None) -> KopfRunner:
    runtime = OperatorRuntime(
        check_backend=backend_ready,
        read_queue_depth=empty_queue,
        metrics_port=None,
        reconcile_interval=1.0,
        policy=policy or TrustPolicy(),
    )
    return operator_runner(api, runtime, autoscale_interval=3600)


def hooked(body: dict[str, Any], url: str = GLOBAL) -> dict[str, Any]:
    body["spec"]["webhook"] = {"url": url, "secretRef": {"name": "hooks", "key": "signing"}}
    return body


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_deliverer_comes_and_goes_with_the_webhook(api: ApiServer, minimal: dict[str, Any]) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hooks", "uid": "s"}}
    api.call("POST", SECRETS, {**secret, "stringData": {"signing": SECRET_VALUE}})
    with runner(api) as running:
        api.call("POST", PIPELINES, hooked(minimal))
        deliverer = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer"))
        assert deliverer["metadata"]["ownerReferences"][0]["uid"] == "uid-photos"
        env = env_of(deliverer)
        assert env["IMAGEPIPE_WEBHOOK_SECRET_FILE"] == "/var/run/imagepipe/webhook/secret"
        volumes = deliverer["spec"]["template"]["spec"]["volumes"]
        assert {"secretName": "hooks", "items": [{"key": "signing", "path": "secret"}]}.items() <= next(
            v["secret"] for v in volumes if v["name"] == "webhook-secret"
        ).items()
        assert env["IMAGEPIPE_WEBHOOK_QUEUE_NAME"] == "photos-jobs-webhooks"
        assert "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE" not in env
        eventually(lambda: ready_is(api, "True"))
        consumer = api.call("GET", f"{DEPLOYMENTS}/photos-consumer")
        assert env_of(consumer)["IMAGEPIPE_WEBHOOK_URL"] == GLOBAL
        # The secret's value is in no object the operator wrote.
        for path in (CONFIGMAPS, DEPLOYMENTS):
            assert SECRET_VALUE not in json.dumps(api.call("GET", path))
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": {"webhook": None}})
        eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer") is None)
        eventually(
            lambda: "IMAGEPIPE_WEBHOOK_URL" not in env_of(api.call("GET", f"{DEPLOYMENTS}/photos-consumer"))
        )
        assert api.call("GET", f"{SECRETS}/hooks") is not None  # never the operator's to touch
    assert running.exception is None


def test_a_foreign_deliverer_is_a_conflict_and_untouched(api: ApiServer, minimal: dict[str, Any]) -> None:
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "photos-deliverer", "namespace": "default", "uid": "team-b"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "b"}}, "template": {}},
    }
    api.call("POST", DEPLOYMENTS, foreign)
    with runner(api) as running:
        api.call("POST", PIPELINES, minimal)  # no webhook: team B's Deployment is not in the way
        eventually(lambda: ready_is(api, "True"))
        api.call(
            "PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": hooked(minimal)["spec"]}
        )
        condition = eventually(lambda: ready_is(api, "False", "ChildConflict"))
        assert "Deployment photos-deliverer" in condition["message"]
        kept = api.call("GET", f"{DEPLOYMENTS}/photos-deliverer")
        assert kept["spec"]["replicas"] == 3 and not kept["metadata"].get("ownerReferences")
        assert "IMAGEPIPE_WEBHOOK_URL" not in env_of(api.call("GET", f"{DEPLOYMENTS}/photos-consumer"))
    assert running.exception is None


def test_an_unsafe_target_gets_no_deliverer_and_the_rest_runs(
    api: ApiServer, minimal: dict[str, Any]
) -> None:
    with runner(api) as running:
        api.call("POST", PIPELINES, hooked(minimal, "http://169.254.169.254/latest/meta-data/"))
        condition = eventually(lambda: ready_is(api, "False", "WebhookTargetUnsafe"))
        assert "link-local" in condition["message"] and "spec.webhook.url" in condition["message"]
        events = eventually(lambda: (api.call("GET", EVENTS) or {}).get("items"))
        assert any(e["reason"] == "WebhookTargetUnsafe" and e["type"] == "Warning" for e in events)
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer") is not None
        assert api.call("GET", f"{DEPLOYMENTS}/photos-ingest") is not None
        assert api.call("GET", f"{DEPLOYMENTS}/photos-deliverer") is None
        # A safe URL: the deliverer comes, and the pipeline is ready.
        spec = hooked(minimal)["spec"]
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": spec})
        eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer"))
        eventually(lambda: ready_is(api, "True"))
    assert running.exception is None


def test_a_host_outside_the_allowed_url_hosts_loses_its_deliverer_and_the_rest_runs(
    api: ApiServer, minimal: dict[str, Any]
) -> None:
    with runner(api, TrustPolicy(url_hosts=("93.184.215.14", "*.example.com"))) as running:
        api.call("POST", PIPELINES, hooked(minimal))
        eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer"))
        eventually(lambda: ready_is(api, "True"))
        # The tenant points the deliverer elsewhere: refused by the operator's list, the
        # deliverer pruned, the images go on.
        spec = hooked(minimal, "https://collector.example.org/in")["spec"]
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": spec})
        condition = eventually(lambda: ready_is(api, "False", NOT_ALLOWED_REASON))
        assert "'https://collector.example.org/in'" in condition["message"]
        assert "IMAGEPIPE_OPERATOR_ALLOWED_URL_HOSTS" in condition["message"]
        eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer") is None)
        events = eventually(lambda: (api.call("GET", EVENTS) or {}).get("items"))
        assert any(e["reason"] == NOT_ALLOWED_REASON and e["type"] == "Warning" for e in events)
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer") is not None
        assert api.call("GET", f"{DEPLOYMENTS}/photos-ingest") is not None
    assert running.exception is None


def test_private_targets_only_where_the_policy_allows(api: ApiServer, minimal: dict[str, Any]) -> None:
    with runner(api, TrustPolicy(allow_private_webhooks=True)) as running:
        api.call("POST", PIPELINES, hooked(minimal, "http://10.1.2.3:8080/in"))
        deliverer = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer"))
        assert env_of(deliverer)["IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE"] == "true"
        eventually(lambda: ready_is(api, "True"))
    assert running.exception is None


def test_a_missing_secret_is_reported(api: ApiServer, minimal: dict[str, Any]) -> None:
    with runner(api) as running:
        api.call("POST", PIPELINES, hooked(minimal))
        deliverer = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer"))
        eventually(lambda: ready_is(api, "True"))
        # Without the Secret the optional volume is empty: the deliverer refuses to start, and
        # the kubelet puts its last line into the status (FallbackToLogsOnError).
        labels = deliverer["spec"]["template"]["metadata"]["labels"]
        refusal = (
            "imagepipe deliver: invalid configuration: IMAGEPIPE_WEBHOOK_SECRET_FILE="
            "'/var/run/imagepipe/webhook/secret': cannot be read (No such file or directory)"
        )
        waiting = {"reason": "CrashLoopBackOff", "message": "back-off"}
        last = {"terminated": {"exitCode": 2, "message": refusal}}
        status = {
            "containerStatuses": [{"name": "deliverer", "state": {"waiting": waiting}, "lastState": last}]
        }
        metadata = {"name": "photos-deliverer-1", "uid": "p", "labels": labels}
        api.call("POST", PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status})
        condition = eventually(lambda: ready_is(api, "False", "WebhookSecretMissing"))
        assert (
            "IMAGEPIPE_WEBHOOK_SECRET_FILE" in condition["message"]
            and "cannot be read" in condition["message"]
            and "spec.webhook.secretRef" in condition["message"]
        )
        api.call("DELETE", f"{PODS}/photos-deliverer-1")
        eventually(lambda: ready_is(api, "True"))
    assert running.exception is None
