"""charts/imagepipe rendered by Helm itself (helm-python-sdk) for the default
values and for tests/chart/values-all.yaml (everything on): lint, Kubernetes
schemas, the CRD, the example pipeline, RBAC, security and the schema of
the values."""

from __future__ import annotations

import copy
import json
from typing import Any

import helm_python
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from imagepipe.operator.children import PRUNABLE, build_children
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.kube import PLURALS
from imagepipe.operator.metrics import DEFAULT_PORT as METRICS_DEFAULT_PORT
from imagepipe.operator.schema import openapi_schema

from .helpers import (
    CHART,
    CUSTOM_GROUPS,
    NAMESPACE,
    REPO,
    VALUES_ALL,
    by_kind,
    crd_documents,
    documents,
    grants_of,
    group_of,
    load_values,
    pod_specs,
    render,
)

KUBERNETES_VERSION = "1.33.0"
CASES = {"defaults": {}, "everything-on": load_values(VALUES_ALL)}


@pytest.fixture(scope="module", params=sorted(CASES))
def rendered(request: pytest.FixtureRequest) -> dict[str, str]:
    return render(copy.deepcopy(CASES[request.param]))


@pytest.fixture(scope="module")
def docs(rendered: dict[str, str]) -> list[dict[str, Any]]:
    return documents(rendered)


@pytest.fixture(scope="module")
def all_on() -> list[dict[str, Any]]:
    return documents(render(load_values(VALUES_ALL)))


@pytest.fixture(scope="module")
def defaults() -> list[dict[str, Any]]:
    return documents(render({}))


@pytest.mark.parametrize("case", sorted(CASES))
def test_lint_has_no_errors(case: str) -> None:
    report = helm_python.lint(str(CHART), copy.deepcopy(CASES[case]), namespace=NAMESPACE)
    errors = [m for m in report["messages"] if m["severity"] >= 3] + list(report["errors"] or [])
    assert not errors, errors


def test_builtin_kinds_validate_strictly(docs: list[dict[str, Any]]) -> None:
    checked = 0
    for doc in [*docs, *crd_documents()]:
        if group_of(doc) in CUSTOM_GROUPS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 7


def test_every_object_has_the_recommended_labels(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        labels = doc["metadata"].get("labels") or {}
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "imagepipe", where
        assert labels.get("app.kubernetes.io/instance") == "imagepipe", where
        assert labels.get("app.kubernetes.io/part-of") == "imagepipe", where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("helm.sh/chart") == "imagepipe-0.1.0", where
        assert "app.kubernetes.io/version" in labels, where


def test_defaults_install_no_optional_part(defaults: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in defaults}
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "ClusterRole"} <= kinds
    assert {"PodMonitor", "PrometheusRule", "ImagePipeline", "ConfigMap"}.isdisjoint(kinds)


def test_everything_on_renders_every_part(all_on: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in all_on}
    assert {"PodMonitor", "PrometheusRule", "ImagePipeline", "ConfigMap", "Role", "KopfPeering"} <= kinds


# --- the CRDs ---------------------------------------------------------------


def test_chart_crd_is_byte_identical_to_the_operators() -> None:
    shipped = (REPO / "operator" / "crd" / "imagepipelines.yaml").read_bytes()
    assert (CHART / "files" / "imagepipelines.yaml").read_bytes() == shipped, (
        "copy operator/crd/imagepipelines.yaml to charts/imagepipe/files/imagepipelines.yaml"
    )


def test_rendered_crd_is_the_operators_plus_helm_metadata(defaults: list[dict[str, Any]]) -> None:
    (rendered,) = by_kind(defaults, "CustomResourceDefinition")
    original = yaml.safe_load((REPO / "operator" / "crd" / "imagepipelines.yaml").read_text())
    assert rendered["spec"] == original["spec"]
    assert rendered["metadata"]["name"] == original["metadata"]["name"]
    assert original["metadata"]["labels"].items() <= rendered["metadata"]["labels"].items()
    assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_crd_can_be_left_out_and_deleted_on_uninstall() -> None:
    docs = documents(render({"crds": {"install": False, "keep": True}}))
    assert not by_kind(docs, "CustomResourceDefinition")
    (crd,) = by_kind(
        documents(render({"crds": {"install": True, "keep": False}})), "CustomResourceDefinition"
    )
    assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})


def test_kopf_peering_crds_are_in_crds_folder() -> None:
    names = {d["metadata"]["name"]: d["spec"]["scope"] for d in crd_documents()}
    assert names == {"clusterkopfpeerings.kopf.dev": "Cluster", "kopfpeerings.kopf.dev": "Namespaced"}


# --- the example pipeline -----------------------------------------------------


def test_example_pipeline_validates_against_the_crd(all_on: list[dict[str, Any]]) -> None:
    (example,) = by_kind(all_on, "ImagePipeline")
    jsonschema.Draft4Validator(openapi_schema()).validate(example)
    pipeline = parse_imagepipeline({**example, "metadata": {**example["metadata"], "uid": "u"}})
    assert pipeline.image == "registry.example.com/imagepipe:0.1.0-rc1"
    annotations = example["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install,post-upgrade"


def test_default_example_spec_validates_too() -> None:
    (example,) = by_kind(documents(render({"example": {"enabled": True}})), "ImagePipeline")
    jsonschema.Draft4Validator(openapi_schema()).validate(example)
    assert "endpointUrl" not in example["spec"]["backend"]  # empty values are left out
    parse_imagepipeline({**example, "metadata": {**example["metadata"], "uid": "u"}})


# --- operator Deployment, security, helm test ------------------------------------


def test_operator_deployment_runs_the_operator(all_on: list[dict[str, Any]]) -> None:
    (deployment,) = by_kind(all_on, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["operator", "run"]
    assert "--namespace=media" in container["args"] and "--namespace=photos" in container["args"]
    assert "--peering=imagepipe-operator" in container["args"]
    assert any(a.startswith("--liveness=http://0.0.0.0:8080/healthz") for a in container["args"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["IMAGEPIPE_METRICS_PORT"] == "9102"
    assert {p["name"] for p in container["ports"]} == {"health", "metrics"}
    assert container["livenessProbe"]["httpGet"]["port"] == "health"


def test_every_pod_is_locked_down(docs: list[dict[str, Any]]) -> None:
    specs = list(pod_specs(docs))
    assert len(specs) >= 2  # the operator and the helm test pod
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], name


def test_helm_test_checks_operator_health_and_example_readiness(all_on: list[dict[str, Any]]) -> None:
    (pod,) = by_kind(all_on, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    urls = env["URLS"].split()
    assert urls == [
        f"http://imagepipe-operator.{NAMESPACE}.svc:8080/healthz",
        f"http://demo-ingest.{NAMESPACE}.svc:8080/readyz",
    ]
    (service,) = by_kind(all_on, "Service")
    assert {p["port"] for p in service["spec"]["ports"]} == {8080, 9102}


def test_helm_test_without_example_checks_only_the_operator(defaults: list[dict[str, Any]]) -> None:
    (pod,) = by_kind(defaults, "Pod")
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["URLS"].split() == [f"http://imagepipe-operator.{NAMESPACE}.svc:8080/healthz"]


# --- RBAC (exact coverage of the operator's calls: test_rbac.py) -------------------


def test_rbac_is_least_privilege(docs: list[dict[str, Any]]) -> None:
    for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        for group, resource, verb in grants_of(role["rules"]):
            assert "*" not in (group, resource, verb)
            assert verb not in {"deletecollection", "escalate", "bind", "impersonate"}
            assert resource not in {"secrets", "clusterroles", "roles", "rolebindings"}
            # Only the optional children the operator prunes may be deleted (the deliverer
            # makes that Deployments too: the code deletes only its own, by uid).
            optional = {PLURALS[kind] for _, kind, _ in PRUNABLE}
            assert optional == {
                "ingresses",
                "networkpolicies",
                "prometheusrules",
                "scaledobjects",
                "triggerauthentications",
                "deployments",
            }
            assert verb != "delete" or resource in optional


def test_namespaced_rbac_grants_only_watched_namespaces(all_on: list[dict[str, Any]]) -> None:
    (cluster_role,) = by_kind(all_on, "ClusterRole")
    assert {r for _, r, _ in grants_of(cluster_role["rules"])} == {"customresourcedefinitions", "namespaces"}
    roles = by_kind(all_on, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["media", "photos"]
    for role in roles:
        grants = grants_of(role["rules"])
        assert ("kopf.dev", "kopfpeerings", "patch") in grants
        assert ("imagepipe.io", "imagepipelines", "watch") in grants
    bindings = by_kind(all_on, "RoleBinding")
    assert {b["subjects"][0]["namespace"] for b in bindings} == {NAMESPACE}


# --- monitoring --------------------------------------------------------------------


def test_pod_monitor_selects_every_imagepipe_pod(all_on: list[dict[str, Any]]) -> None:
    (monitor,) = by_kind(all_on, "PodMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/part-of": "imagepipe"}}
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    ports = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    assert ports == {"http", "metrics"}  # ingest; consumer, deliverer and operator
    assert "app.kubernetes.io/component" in monitor["spec"]["podTargetLabels"]
    assert "app.kubernetes.io/part-of" in monitor["spec"]["podTargetLabels"]


def test_pod_monitor_scrapes_the_operators_metrics_port(all_on: list[dict[str, Any]]) -> None:
    """The operator serves /metrics on IMAGEPIPE_METRICS_PORT (operator/main.py, metrics.py):
    its pod exposes that port under the name the PodMonitor scrapes, and carries its selector."""
    (monitor,) = by_kind(all_on, "PodMonitor")
    (deployment,) = by_kind(all_on, "Deployment")
    template = deployment["spec"]["template"]
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert template["metadata"]["labels"][key] == value
    assert template["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert ports["metrics"] == int(env["IMAGEPIPE_METRICS_PORT"]) == METRICS_DEFAULT_PORT == 9102
    endpoints = {e["port"]: e for e in monitor["spec"]["podMetricsEndpoints"]}
    assert endpoints["metrics"]["path"] == "/metrics"


def test_pod_monitor_scrapes_every_role_an_imagepipeline_deploys(all_on: list[dict[str, Any]]) -> None:
    """The ingest, consumer and deliverer pods the operator builds (examples/full.yaml has
    spec.webhook): selected by the PodMonitor, with its target labels, a port of a name it
    scrapes where the role serves /metrics (IMAGEPIPE_PORT or IMAGEPIPE_METRICS_PORT), and
    IMAGEPIPE_IMAGEPIPELINE=NAMESPACE/NAME, the label every series they export then carries."""
    (monitor,) = by_kind(all_on, "PodMonitor")
    scraped = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    example = yaml.safe_load((REPO / "examples" / "full.yaml").read_text())
    pipeline = parse_imagepipeline({**example, "metadata": {**example["metadata"], "uid": "u"}})
    deployments = [d for d in build_children(pipeline) if d["kind"] == "Deployment"]
    roles = set()
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        role = labels["app.kubernetes.io/component"]
        roles.add(role)
        assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items(), role
        assert set(monitor["spec"]["podTargetLabels"]) <= set(labels), role
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["IMAGEPIPE_IMAGEPIPELINE"] == pipeline.key == "media/catalogue", role
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        (name,) = set(ports) & scraped
        variable = "IMAGEPIPE_PORT" if name == "http" else "IMAGEPIPE_METRICS_PORT"
        assert ports[name] == int(env[variable]), role
    assert roles == {"ingest", "consumer", "deliverer"}


def test_dashboard_configmap_carries_the_dashboard(all_on: list[dict[str, Any]]) -> None:
    (configmap,) = by_kind(all_on, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "imagepipe"}
    shipped = json.loads((CHART / "files" / "dashboard.json").read_text())
    assert json.loads(configmap["data"]["imagepipe.json"]) == shipped


def test_prometheus_rule_is_the_rules_file_with_extra_labels(all_on: list[dict[str, Any]]) -> None:
    (rule,) = by_kind(all_on, "PrometheusRule")
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for got, want in zip(rule["spec"]["groups"], source["groups"], strict=True):
        for g, w in zip(got["rules"], want["rules"], strict=True):
            if "alert" in w:
                assert g["labels"] == {**w["labels"], "team": "media"}
                g = {**g, "labels": w["labels"]}
            assert g == w


# --- values.schema.json ---------------------------------------------------------------

BAD_VALUES = [
    ({"operator": {"replicas": "two"}}, "replicas"),
    ({"operator": {"logLevel": "verbose"}}, "logLevel"),
    ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "watchNamespaces"),
    ({"operator": {"metricsPort": 70000}}, "metricsPort"),
    ({"operator": {"resources": {"requests": {"cpu": "lots"}}}}, "cpu"),
    ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
    ({"monitoring": {"podMonitor": {"enabled": "yes"}}}, "enabled"),
    ({"monitoring": {"podMonitor": {"interval": "30 seconds"}}}, "interval"),
    ({"monitoring": {"promethusRule": {"enabled": True}}}, "promethusRule"),
    ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
    ({"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
    ({"example": {"enabled": True, "name": "Bad_Name"}}, "name"),
    ({"example": {"spec": {"image": "x"}}}, "example"),
    ({"crds": {"install": "true"}}, "install"),
]


@pytest.mark.parametrize(("values", "path"), BAD_VALUES, ids=[p for _, p in BAD_VALUES])
def test_schema_rejects_bad_values(values: dict[str, Any], path: str) -> None:
    with pytest.raises(helm_python.HelmError) as caught:
        render(values)
    assert path in str(caught.value)


def test_schema_accepts_the_documented_values() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    for values in (load_values(CHART / "values.yaml"), load_values(VALUES_ALL)):
        merged = copy.deepcopy(load_values(CHART / "values.yaml"))
        _merge(merged, values)
        jsonschema.Draft7Validator(schema).validate(merged)


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
