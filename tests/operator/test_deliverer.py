"""spec.webhook as data: the typed model and its errors, the CRD's bounds tied
to the settings', the NAME-deliverer Deployment, the producers' environment,
the NetworkPolicy, and what the ownership plan does with the deliverer."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from imagepipe.config import (
    MAX_WEBHOOK_HORIZON_SECONDS,
    WEBHOOK_QUEUE_SUFFIX,
    load_settings,
    require_webhook_secret,
)
from imagepipe.operator.builders import CONFIG_HASH_ANNOTATION, build_network_policy
from imagepipe.operator.children import build_children, create_only, prunable
from imagepipe.operator.deliverer import IMAGE_GROUP, DelivererChoice, build_deliverer_deployment
from imagepipe.operator.imagepipeline import InvalidPipeline, parse_imagepipeline
from imagepipe.operator.ownership import Key, key, plan
from imagepipe.operator.schema import spec_schema
from imagepipe.operator.workloads import build_consumer_deployment, build_ingest_deployment
from imagepipe.webhooks.events import EVENT_TYPES

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DELIVERER: Key = ("apps/v1", "Deployment", "photos-deliverer")
DELIVERER_POLICY: Key = ("networking.k8s.io/v1", "NetworkPolicy", "photos-deliverer")


def with_webhook(body: dict[str, Any], **webhook: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    changed["spec"]["webhook"] = {
        "url": "https://hooks.example.com/in",
        "secretRef": {"name": "hooks"},
        **webhook,
    }
    return changed


def container_of(deployment: dict[str, Any] | None) -> dict[str, Any]:
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(deployment: dict[str, Any] | None) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_of(deployment)["env"]}


def test_the_crd_bounds_are_the_settings() -> None:
    """One fact, one place: the schema's horizon bound and event list are config's."""
    webhook = spec_schema()["properties"]["webhook"]["properties"]
    assert webhook["horizonSeconds"]["maximum"] == MAX_WEBHOOK_HORIZON_SECONDS
    assert tuple(webhook["events"]["items"]["enum"]) == EVENT_TYPES
    assert webhook["events"]["maxItems"] == len(EVENT_TYPES)
    # No default here: an unset horizon leaves the deliverer's own default in force.
    assert "default" not in webhook["horizonSeconds"] and "default" not in webhook["events"]


def test_defaults(minimal: dict[str, Any]) -> None:
    assert parse_imagepipeline(minimal).webhook is None
    minimal["spec"]["backend"]["serviceAccountName"] = "photos-aws"
    webhook = parse_imagepipeline(with_webhook(minimal)).webhook
    assert webhook is not None
    assert (webhook.secret.name, webhook.secret.key) == ("hooks", "secret")
    assert webhook.events == EVENT_TYPES and webhook.horizon_seconds is None
    assert webhook.service_account_name == "photos-aws"


INVALID = {
    # name: (spec.webhook, the field the error names)
    "no url": ({"secretRef": {"name": "hooks"}}, "spec.webhook.url: required"),
    "no secret": ({"url": "https://hooks.example.com/"}, "spec.webhook.secretRef: required"),
    "secret without a name": (
        {"url": "https://h.example.com/", "secretRef": {"key": "k"}},
        "spec.webhook.secretRef.name: required",
    ),
    "ftp": ({"url": "ftp://hooks.example.com/", "secretRef": {"name": "h"}}, "spec.webhook.url"),
    "no host": (
        {"url": "https:///path", "secretRef": {"name": "h"}},
        "spec.webhook.url: 'https:///path' must name a host",
    ),
    "a user in the URL": (
        {"url": "https://me:pw@hooks.example.com/", "secretRef": {"name": "h"}},
        "spec.webhook.url: 'https://me:pw@hooks.example.com/' must not carry a user name",
    ),
    "unknown event": (
        {"url": "https://h.example.com/", "secretRef": {"name": "h"}, "events": ["image.viewed"]},
        "spec.webhook.events[0]",
    ),
    "no events": (
        {"url": "https://h.example.com/", "secretRef": {"name": "h"}, "events": []},
        "spec.webhook.events",
    ),
    "an event twice": (
        {"url": "https://h.example.com/", "secretRef": {"name": "h"}, "events": ["image.failed"] * 2},
        "spec.webhook.events: image.failed given more than once",
    ),
    "horizon zero": (
        {"url": "https://h.example.com/", "secretRef": {"name": "h"}, "horizonSeconds": 0},
        "spec.webhook.horizonSeconds: must be at least 1",
    ),
    "horizon past the queue's retention": (
        {
            "url": "https://h.example.com/",
            "secretRef": {"name": "h"},
            "horizonSeconds": MAX_WEBHOOK_HORIZON_SECONDS + 1,
        },
        f"spec.webhook.horizonSeconds: must be at most {MAX_WEBHOOK_HORIZON_SECONDS}",
    ),
    "unknown field": (
        {"url": "https://h.example.com/", "secretRef": {"name": "h"}, "secret": SECRET},
        "spec.webhook.secret: unknown field",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_webhooks_name_the_field(minimal: dict[str, Any], case: str) -> None:
    webhook, message = INVALID[case]
    minimal["spec"]["webhook"] = webhook
    with pytest.raises(InvalidPipeline) as caught:
        parse_imagepipeline(minimal)
    assert message in caught.value.message and caught.value.reason == "InvalidSpec"


def test_a_name_too_long_for_the_deliverer_is_refused_only_with_a_webhook(minimal: dict[str, Any]) -> None:
    minimal["metadata"]["name"] = "a" * 54  # fits NAME-consumer, not NAME-deliverer
    assert parse_imagepipeline(minimal).webhook is None
    with pytest.raises(InvalidPipeline) as caught:
        parse_imagepipeline(with_webhook(minimal))
    assert caught.value.reason == "InvalidName" and "-deliverer" in caught.value.message


def test_the_deliverer_pod(minimal: dict[str, Any]) -> None:
    minimal["spec"]["backend"].update(endpointUrl="http://s3.store:9000", serviceAccountName="photos-aws")
    p = parse_imagepipeline(with_webhook(minimal, secretRef={"name": "hooks", "key": "signing"}))
    deliverer = build_deliverer_deployment(p)
    consumer = build_consumer_deployment(p)
    assert deliverer is not None and deliverer["metadata"]["name"] == "photos-deliverer"
    container = container_of(deliverer)
    assert container["args"] == ["deliver"] and container["image"] == container_of(consumer)["image"]
    assert container["securityContext"] == container_of(consumer)["securityContext"]
    pod, consumer_pod = deliverer["spec"]["template"]["spec"], consumer["spec"]["template"]["spec"]
    for field in ("serviceAccountName", "automountServiceAccountToken"):
        assert pod[field] == consumer_pod[field], field
    # The same, and the image's group owns the mounted secret (it reads it as that group).
    assert pod["securityContext"] == {**consumer_pod["securityContext"], "fsGroup": IMAGE_GROUP}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9102, "protocol": "TCP"}]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    # No pipelines file: a change of the variants does not roll the deliverer.
    assert [m["name"] for m in container["volumeMounts"]] == ["tmp", "webhook-secret"]
    assert CONFIG_HASH_ANNOTATION not in deliverer["spec"]["template"]["metadata"]["annotations"]
    labels = deliverer["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "deliverer"
    assert deliverer["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "deliverer"


@pytest.mark.parametrize("key", ["secret", "signing"])
def test_the_secret_reaches_only_the_deliverer_and_only_as_a_mounted_file(
    full: dict[str, Any], key: str
) -> None:
    """A file the kubelet updates in place (rotation without a restart), in no env
    value and no ConfigMap; a missing Secret leaves the file absent (optional), and
    the deliverer's refusal naming the variable tells why."""
    full["spec"]["webhook"]["secretRef"] = {"name": "catalogue-webhook", "key": key}
    p = parse_imagepipeline(full)
    deliverer = build_deliverer_deployment(p)
    assert deliverer is not None
    env, pod = env_of(deliverer), deliverer["spec"]["template"]["spec"]
    assert env["IMAGEPIPE_WEBHOOK_SECRET_FILE"] == "/var/run/imagepipe/webhook/secret"
    assert "IMAGEPIPE_WEBHOOK_SECRET" not in env
    assert not [e for e in container_of(deliverer)["env"] if "valueFrom" in e]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["webhook-secret"] == {
        "name": "webhook-secret",
        "secret": {
            "secretName": "catalogue-webhook",
            "items": [{"key": key, "path": "secret"}],
            "defaultMode": 0o440,
            "optional": True,
        },
    }
    mounts = {m["name"]: m for m in container_of(deliverer)["volumeMounts"]}
    assert mounts["webhook-secret"] == {
        "name": "webhook-secret",
        "mountPath": "/var/run/imagepipe/webhook",
        "readOnly": True,
    }
    for deployment in (build_ingest_deployment(p), build_consumer_deployment(p)):
        assert not {"IMAGEPIPE_WEBHOOK_SECRET", "IMAGEPIPE_WEBHOOK_SECRET_FILE"} & set(env_of(deployment))
        assert "catalogue-webhook" not in json.dumps(deployment)
    for child in build_children(p):
        if child["kind"] == "ConfigMap":
            assert "whsec" not in json.dumps(child) and "catalogue-webhook" not in json.dumps(child)


def test_every_role_reads_its_environment(full: dict[str, Any], tmp_path: Path) -> None:
    """The plain values parse with the roles' own loader: the producers emit to the
    delivery queue beside the job queue; the deliverer signs and sends."""
    full["spec"]["webhook"]["events"] = ["image.completed", "image.deleted"]
    p = parse_imagepipeline(full)
    queue = f"{p.backend.queue}{WEBHOOK_QUEUE_SUFFIX}"
    for deployment in (build_ingest_deployment(p), build_consumer_deployment(p)):
        env = env_of(deployment)
        plain = {k: v for k, v in env.items() if isinstance(v, str) and k != "IMAGEPIPE_PIPELINES_FILE"}
        settings = load_settings(plain)
        assert settings.webhook_url == "https://hooks.example.com/imagepipe"
        assert settings.webhook_events == ("image.completed", "image.deleted")
        assert settings.webhook_queue() == (queue, "")
    env = env_of(build_deliverer_deployment(p, DelivererChoice(allow_private=True)))
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    settings = load_settings({**plain, "IMAGEPIPE_WEBHOOK_SECRET_FILE": str(secret_file)})
    require_webhook_secret(settings)
    assert settings.webhook_queue() == (queue, "") and settings.webhook_horizon_seconds == 86400
    assert settings.webhook_allow_private and settings.imagepipeline == "media/catalogue"
    assert settings.bucket == "catalogue-images" and settings.metrics_port == 9102
    assert "IMAGEPIPE_PIPELINES_FILE" not in env and "IMAGEPIPE_WEBHOOK_EVENTS" not in env


@pytest.mark.parametrize(
    ("queue", "variable", "value"),
    [
        ("photos-jobs", "IMAGEPIPE_WEBHOOK_QUEUE_NAME", "photos-jobs-webhooks"),
        (
            "https://sqs.eu-west-1.amazonaws.com/1/jobs",
            "IMAGEPIPE_WEBHOOK_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/jobs-webhooks",
        ),
    ],
)
def test_the_delivery_queue_sits_beside_the_job_queue(
    minimal: dict[str, Any], queue: str, variable: str, value: str
) -> None:
    minimal["spec"]["backend"]["queue"] = queue
    p = parse_imagepipeline(with_webhook(minimal))
    for deployment in (
        build_ingest_deployment(p),
        build_consumer_deployment(p),
        build_deliverer_deployment(p),
    ):
        assert env_of(deployment)[variable] == value


@pytest.mark.parametrize(("allow", "horizon"), [(False, None), (True, 3600)])
def test_policy_and_horizon_reach_only_the_deliverer(
    minimal: dict[str, Any], allow: bool, horizon: int | None
) -> None:
    webhook = {"horizonSeconds": horizon} if horizon else {}
    p = parse_imagepipeline(with_webhook(minimal, **webhook))
    env = env_of(build_deliverer_deployment(p, DelivererChoice(allow_private=allow)))
    assert env.get("IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE") == ("true" if allow else None)
    assert env.get("IMAGEPIPE_WEBHOOK_HORIZON_SECONDS") == (str(horizon) if horizon else None)
    for deployment in (build_ingest_deployment(p), build_consumer_deployment(p)):
        assert not {"IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE", "IMAGEPIPE_WEBHOOK_HORIZON_SECONDS"} & set(
            env_of(deployment)
        )


def without_webhook_parts(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = [copy.deepcopy(c) for c in children if not c["metadata"]["name"].endswith("-deliverer")]
    for child in kept:
        for container in child.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            container["env"] = [e for e in container["env"] if not e["name"].startswith("IMAGEPIPE_WEBHOOK_")]
    return kept


@pytest.mark.parametrize("example", ["minimal", "full"])
def test_a_webhook_only_adds(example: str, request: pytest.FixtureRequest) -> None:
    """Without spec.webhook the children are what they were: the webhook adds its
    variables at the end of the producers' env and the deliverer's children, nothing else."""
    body = copy.deepcopy(request.getfixturevalue(example))
    body["spec"].pop("webhook", None)
    plain = build_children(parse_imagepipeline(body))
    assert "WEBHOOK" not in json.dumps(plain) and "deliverer" not in json.dumps(plain)
    hooked = build_children(parse_imagepipeline(with_webhook(body)))
    assert without_webhook_parts(hooked) == plain
    extra = {(c["kind"], c["metadata"]["name"]) for c in hooked} - {
        (c["kind"], c["metadata"]["name"]) for c in plain
    }
    name = body["metadata"]["name"]
    policy = {("NetworkPolicy", f"{name}-deliverer")} if example == "full" else set()
    assert extra == {("Deployment", f"{name}-deliverer")} | policy


def test_the_network_policy_admits_only_metrics_and_leaves_the_receiver_reachable(
    full: dict[str, Any],
) -> None:
    p = parse_imagepipeline(full)
    policy = build_network_policy(p, "deliverer")
    assert policy is not None
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "deliverer"
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "metrics", "protocol": "TCP"}], "from": [{"namespaceSelector": {}}]}
    ]
    # Egress is not restricted (no "Egress" policy type): the receiver, S3, SQS and DNS stay reachable.
    assert policy["spec"]["policyTypes"] == ["Ingress"] and "egress" not in policy["spec"]


def held(children: list[dict[str, Any]], owner: str | None) -> dict[Key, dict[str, Any]]:
    """The API server holding `children` as built, controlled by `owner` (None: no owner)."""
    refs = [{"uid": owner, "controller": True}] if owner else []
    found = {}
    for child in children:
        seen = copy.deepcopy(child)
        seen["metadata"].update(uid=f"obj-{key(child)[2]}", ownerReferences=refs)
        found[key(child)] = seen
    return found


OWNERS = {"ours": "uid-photos", "foreign": None, "another pipeline's": "uid-another"}
DELIVERER_ROWS = {
    # name: (spec.webhook set?, its target refused?, who holds NAME-deliverer (None: nobody),
    #        (what happens to it: create / prune / None), conflicts)
    "asked for, missing: created": (True, False, None, "create", []),
    "asked for, ours: left as it is": (True, False, "ours", None, []),
    "asked for, foreign: a conflict, untouched": (
        True,
        False,
        "foreign",
        None,
        [DELIVERER, DELIVERER_POLICY],
    ),
    "asked for, another pipeline's: a conflict": (
        True,
        False,
        "another pipeline's",
        None,
        [DELIVERER, DELIVERER_POLICY],
    ),
    "no longer asked for, ours: deleted": (False, False, "ours", "prune", []),
    "never asked for, foreign: left alone, no conflict": (False, False, "foreign", None, []),
    "target refused, ours: deleted": (True, True, "ours", "prune", []),
    "target refused, missing: not created": (True, True, None, None, []),
    "target refused, foreign: left alone": (True, True, "foreign", None, []),
}


@pytest.mark.parametrize("row", sorted(DELIVERER_ROWS))
def test_the_ownership_plan_of_the_deliverer(minimal: dict[str, Any], row: str) -> None:
    webhook, refused, holder, action, conflicts = DELIVERER_ROWS[row]
    minimal["spec"]["networkPolicy"] = {"enabled": True}
    hooked = parse_imagepipeline(with_webhook(minimal))
    p = hooked if webhook else parse_imagepipeline(minimal)
    desired = build_children(p, deliverer=DelivererChoice(build=not refused))
    theirs = (DELIVERER, DELIVERER_POLICY)
    # Every other child is there and ours; the deliverer's are held by `holder`.
    seen = held([c for c in desired if key(c) not in theirs], p.uid)
    if holder:
        seen |= held([c for c in build_children(hooked) if key(c) in theirs], OWNERS[holder])
    got = plan([(c, create_only(c)) for c in desired], seen, prunable(p), p.uid)
    assert sorted(got.conflicts) == sorted(conflicts)
    assert [key(c) for c in got.create] == ([DELIVERER, DELIVERER_POLICY] if action == "create" else [])
    assert [k for k, _ in got.prune] == ([DELIVERER, DELIVERER_POLICY] if action == "prune" else [])
    assert got.patch == []


def test_the_secret_files_group_is_the_images() -> None:
    """The Dockerfile's USER is the one the mounted secret's group must match."""
    dockerfile = Path(__file__).resolve().parents[2] / "Dockerfile"
    users = [line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("USER ")]
    assert users == [f"{IMAGE_GROUP}:{IMAGE_GROUP}"]
