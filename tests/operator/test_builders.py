"""The children as data: names, labels, environment, config hash, replicas,
owner references, and every built-in kind against the Kubernetes schemas."""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from imagepipe.capacity import DEFAULT_UPLOAD_BUDGET_BYTES, INGEST_BASE_BYTES
from imagepipe.config import load_settings
from imagepipe.operator.builders import CONFIG_HASH_ANNOTATION, REPLICAS_OWNER_ANNOTATION, build_ingress
from imagepipe.operator.children import build_children
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.keda import build_scaled_object, queue_length
from imagepipe.operator.workloads import build_consumer_deployment, build_ingest_deployment

# Kinds defined by CRDs that kubernetes-validate has no schema for.
CUSTOM_KINDS = {"PrometheusRule", "ScaledObject", "TriggerAuthentication"}
LABELS = {
    "app.kubernetes.io/name": "imagepipe",
    "app.kubernetes.io/part-of": "imagepipe",
    "app.kubernetes.io/managed-by": "imagepipe-operator",
}


def by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in children}


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_children_names_and_labels(full: dict[str, Any]) -> None:
    children = build_children(parse_imagepipeline(full))
    names = {(c["kind"], c["metadata"]["name"]) for c in children}
    assert names == {
        ("ConfigMap", "catalogue-config"),
        ("Deployment", "catalogue-ingest"),
        ("Service", "catalogue-ingest"),
        ("Ingress", "catalogue-ingest"),
        ("Deployment", "catalogue-consumer"),
        ("PodDisruptionBudget", "catalogue-consumer"),
        ("PodDisruptionBudget", "catalogue-ingest"),
        ("PrometheusRule", "catalogue-slo"),
        ("NetworkPolicy", "catalogue-ingest"),
        ("NetworkPolicy", "catalogue-consumer"),
        ("Deployment", "catalogue-deliverer"),
        ("NetworkPolicy", "catalogue-deliverer"),
    }
    for child in children:
        assert child["metadata"]["namespace"] == "media"
        assert LABELS.items() <= child["metadata"]["labels"].items()
        assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == "catalogue"
    for role in ("ingest", "consumer", "deliverer"):
        deployment = next(c for c in children if c["metadata"]["name"] == f"catalogue-{role}")
        assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == role
        assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == role


@pytest.mark.parametrize("example", ["minimal", "full"])
def test_builtin_children_validate_against_kubernetes(example: str, request: pytest.FixtureRequest) -> None:
    body = request.getfixturevalue(example)
    for child in build_children(parse_imagepipeline(body)):
        kopf.adopt(child, owner=kopf.Body(cast(kopf.RawBody, body)))
        if child["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(child, "1.33.0", strict=True)


def test_owner_references(minimal: dict[str, Any]) -> None:
    for child in build_children(parse_imagepipeline(minimal)):
        kopf.adopt(child, owner=kopf.Body(cast(kopf.RawBody, minimal)))
        (ref,) = child["metadata"]["ownerReferences"]
        assert ref["uid"] == "uid-photos" and ref["kind"] == "ImagePipeline" and ref["controller"] is True
        assert ref["apiVersion"] == "imagepipe.io/v1alpha1" and ref["blockOwnerDeletion"] is True


def test_environment_is_the_config_contract(full: dict[str, Any]) -> None:
    children = build_children(parse_imagepipeline(full))
    ingest = env_of(next(c for c in children if c["metadata"]["name"] == "catalogue-ingest"))
    consumer = env_of(next(c for c in children if c["metadata"]["name"] == "catalogue-consumer"))
    assert ingest["IMAGEPIPE_QUEUE_URL"].endswith("/catalogue-jobs")
    assert ingest["IMAGEPIPE_PUBLIC_URL"] == "https://img.example.com"
    assert ingest["IMAGEPIPE_PIPELINES_FILE"] == "/etc/imagepipe/pipelines.yaml"
    assert ingest["IMAGEPIPE_MAX_UPLOAD_BYTES"] == "20971520"
    assert ingest["IMAGEPIPE_UPLOAD_TIMEOUT_SECONDS"] == "120"
    assert ingest["IMAGEPIPE_CORS_ORIGINS"] == "https://www.example.com,https://admin.example.com"
    assert ingest["IMAGEPIPE_API_KEYS"] == {"secretKeyRef": {"name": "catalogue-api-keys", "key": "api-keys"}}
    assert consumer["IMAGEPIPE_WORKER_SLOTS"] == "2" and consumer["IMAGEPIPE_METRICS_PORT"] == "9102"
    assert consumer["IMAGEPIPE_SHUTDOWN_GRACE_SECONDS"] == "25"
    # Every plain value parses with the roles' own settings loader (the file is checked separately).
    for env in (ingest, consumer):
        plain = {k: v for k, v in env.items() if isinstance(v, str) and k != "IMAGEPIPE_PIPELINES_FILE"}
        settings = load_settings(plain)
        assert settings.bucket == "catalogue-images" and settings.region == "eu-west-1"


def test_consumer_pod(full: dict[str, Any]) -> None:
    deployment = build_consumer_deployment(parse_imagepipeline(full))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["consume"]
    assert pod["terminationGracePeriodSeconds"] > 25
    assert container["ports"] == [{"name": "metrics", "containerPort": 9102, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"] == "catalogue-imagepipe"
    assert deployment["spec"]["replicas"] == 2  # minReplicas, at creation only
    assert deployment["metadata"]["annotations"][REPLICAS_OWNER_ANNOTATION] == "builtin"
    assert build_ingest_deployment(parse_imagepipeline(full))["spec"]["template"]["spec"]["containers"][0][
        "args"
    ] == ["serve"]


def hash_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])


def test_variants_change_rolls_pods_and_nothing_else(minimal: dict[str, Any]) -> None:
    before = build_consumer_deployment(parse_imagepipeline(minimal))
    changed = copy.deepcopy(minimal)
    changed["spec"]["variants"] = [{"name": "tiny", "width": 64, "height": 64, "method": "cover"}]
    after = build_consumer_deployment(parse_imagepipeline(changed))
    assert hash_of(before) != hash_of(after)
    assert hash_of(before) == hash_of(build_consumer_deployment(parse_imagepipeline(minimal)))
    assert before["spec"]["replicas"] == after["spec"]["replicas"]


def test_ingress_only_when_a_host_is_given(minimal: dict[str, Any], full: dict[str, Any]) -> None:
    assert build_ingress(parse_imagepipeline(minimal)) is None
    ingress = build_ingress(parse_imagepipeline(full))
    assert ingress is not None and ingress["spec"]["tls"][0]["secretName"] == "img-upload-tls"
    # The API only: health, readiness and metrics are not reachable from outside.
    (rule,) = ingress["spec"]["rules"]
    paths = {(p["path"], p["pathType"]) for p in rule["http"]["paths"]}
    assert paths == {("/v1/", "Prefix"), ("/images/", "Prefix"), ("/openapi.json", "Exact")}


def test_ingest_pod_fits_its_budget_drain_and_disruptions(minimal: dict[str, Any]) -> None:
    p = parse_imagepipeline(minimal)
    pod = build_ingest_deployment(p)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    budget = int(env["IMAGEPIPE_UPLOAD_BUDGET_BYTES"])
    assert budget == DEFAULT_UPLOAD_BUDGET_BYTES
    assert container["resources"]["limits"]["memory"] == str(INGEST_BASE_BYTES + budget)
    # Delay 5 s + drain (upload timeout 60 s + 15 s) + 5 s margin.
    assert pod["terminationGracePeriodSeconds"] == 85
    assert env["IMAGEPIPE_SHUTDOWN_DELAY_SECONDS"] == "5"
    assert (env["IMAGEPIPE_RATE_LIMIT_PER_SECOND"], env["IMAGEPIPE_RATE_LIMIT_BURST"]) == ("10.0", "20")
    assert container["readinessProbe"]["timeoutSeconds"] == 2
    pdbs = [c for c in build_children(p) if c["kind"] == "PodDisruptionBudget"]
    ingest_pdb = next(c for c in pdbs if c["metadata"]["name"] == "photos-ingest")
    assert ingest_pdb["spec"]["maxUnavailable"] == 1
    assert ingest_pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "ingest"


def test_keda_scaled_object(full: dict[str, Any]) -> None:
    assert build_scaled_object(parse_imagepipeline(full)) is None
    full["spec"]["scaling"]["engine"] = "keda"
    pipeline = parse_imagepipeline(full)
    scaled = build_scaled_object(pipeline)
    assert scaled is not None
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"]["scaleOnInFlight"] == "true"
    assert trigger["metadata"]["queueLength"] == str(queue_length(pipeline))
    assert scaled["spec"]["minReplicaCount"] == 2 and scaled["spec"]["maxReplicaCount"] == 200
    consumer = build_consumer_deployment(pipeline)
    assert consumer["metadata"]["annotations"][REPLICAS_OWNER_ANNOTATION] == "keda"


def test_queue_length_grows_with_the_time_left(minimal: dict[str, Any]) -> None:
    short = queue_length(parse_imagepipeline(minimal))
    minimal["spec"]["slo"] = {"latencySeconds": 120}
    assert queue_length(parse_imagepipeline(minimal)) > short >= 1


def test_every_optional_child_is_prunable(full: dict[str, Any]) -> None:
    """Whatever the spec can switch off, the operator can take back."""
    from imagepipe.operator.children import prunable
    from imagepipe.operator.ownership import key

    required = {"ConfigMap", "Service", "Deployment", "PodDisruptionBudget"}  # always built
    for engine in ("builtin", "keda"):
        full["spec"]["scaling"]["engine"] = engine
        full["spec"]["backend"]["credentialsSecret"] = "aws"
        p = parse_imagepipeline(full)
        optional = {key(c) for c in build_children(p) if c["kind"] not in required}
        assert optional <= set(prunable(p)), optional - set(prunable(p))


def test_each_role_has_its_own_service_account_and_no_api_token(minimal: dict[str, Any]) -> None:
    from imagepipe.operator.workloads import build_consumer_deployment, build_ingest_deployment

    minimal["spec"]["backend"]["serviceAccountName"] = "photos-shared"
    minimal["spec"]["ingest"] = {"serviceAccountName": "photos-ingest"}
    p = parse_imagepipeline(minimal)
    ingest = build_ingest_deployment(p)["spec"]["template"]["spec"]
    consumer = build_consumer_deployment(p)["spec"]["template"]["spec"]
    assert ingest["serviceAccountName"] == "photos-ingest"
    assert consumer["serviceAccountName"] == "photos-shared"  # falls back to spec.backend's
    assert ingest["automountServiceAccountToken"] is False
    assert consumer["automountServiceAccountToken"] is False


def test_network_policies_admit_only_each_role_s_port(full: dict[str, Any], minimal: dict[str, Any]) -> None:
    from imagepipe.operator.builders import build_network_policy

    p = parse_imagepipeline(full)
    ingest, consumer = build_network_policy(p, "ingest"), build_network_policy(p, "consumer")
    assert ingest is not None and consumer is not None
    assert ingest["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    assert consumer["spec"]["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert consumer["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "consumer"
    assert ingest["spec"]["policyTypes"] == ["Ingress"]
    assert build_network_policy(parse_imagepipeline(minimal), "ingest") is None  # off by default


def test_placeholders_off_reaches_the_pipelines_file(minimal: dict[str, Any]) -> None:
    from imagepipe.operator.builders import pipelines_file
    from imagepipe.spec import parse_pipelines

    default = parse_imagepipeline(minimal)
    assert isinstance(yaml.safe_load(pipelines_file(default))["default"], list), "the list form, as before"
    off = copy.deepcopy(minimal)
    off["spec"]["placeholders"] = False
    written = yaml.safe_load(pipelines_file(parse_imagepipeline(off)))
    spec = parse_pipelines(written, "file")["default"]
    assert spec.placeholder is False
    assert spec.spec_hash == parse_imagepipeline(minimal).pipelines["default"].spec_hash
