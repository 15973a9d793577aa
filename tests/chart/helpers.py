"""Shared by the chart tests: rendering with Helm (helm-python-sdk), the
metric names the roles really export, and the metric names a PromQL
expression uses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import helm_python
import yaml
from prometheus_client import CollectorRegistry

from imagepipe.exposition import RESOURCE_LABEL
from imagepipe.slo import ERROR_RATIO_RECORD, SLO_WINDOWS

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "imagepipe"
ALERTS = CHART / "files" / "alerts.yaml"
DASHBOARD = CHART / "files" / "dashboard.json"
VALUES_ALL = Path(__file__).resolve().parent / "values-all.yaml"
RELEASE = "imagepipe"
NAMESPACE = "imagepipe-system"

# Kinds the Kubernetes schemas do not know: checked otherwise (CRD schema, promtool, structure).
CUSTOM_GROUPS = frozenset({"imagepipe.io", "monitoring.coreos.com", "kopf.dev"})

# kube-state-metrics series (default collectors, v2) used by the alerts and the dashboard:
# https://github.com/kubernetes/kube-state-metrics/tree/main/docs/metrics
KUBE_STATE_METRICS = frozenset(
    {
        "kube_deployment_spec_replicas",
        "kube_deployment_status_replicas_ready",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_status_waiting_reason",
    }
)
# Prometheus' own per-target series.
SCRAPE_SERIES = frozenset({"up"})
# Labels Prometheus attaches to every scraped series through the chart's PodMonitor.
TARGET_LABELS = frozenset(
    {
        "namespace",
        "pod",
        "container",
        "job",
        "instance",
        "endpoint",
        "app_kubernetes_io_part_of",
        "app_kubernetes_io_component",
        "app_kubernetes_io_instance",
    }
)


def load_values(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text())
    return values


def render(values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path → rendered text, as `helm template` makes it."""
    with helm_python.Chart.load(str(CHART)) as chart:
        rendered: dict[str, str] = chart.render(values or {}, name=RELEASE, namespace=namespace)
    return rendered


def documents(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """Every manifest of a render (NOTES.txt and empty documents left out)."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def crd_documents() -> list[dict[str, Any]]:
    """The CRDs of the chart's crds/ folder (Helm applies them before the templates)."""
    docs: list[dict[str, Any]] = []
    for path in sorted((CHART / "crds").glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def by_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def group_of(doc: dict[str, Any]) -> str:
    api_version: str = doc["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


# (API group, resource, verb)
Grant = tuple[str, str, str]


def grants_of(rules: list[dict[str, Any]]) -> set[Grant]:
    """Every (group, resource, verb) that a Role's or ClusterRole's rules allow."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def pod_specs(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] == "Pod":
            yield doc["metadata"]["name"], doc["spec"]
        elif doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


# --- metric names ------------------------------------------------------------

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def role_registries() -> list[CollectorRegistry]:
    """The registries the ingest, the consumer, the deliverer and the operator serve on /metrics."""
    from imagepipe.consumer.metrics import Metrics as ConsumerMetrics
    from imagepipe.operator.metrics import OperatorMetrics
    from imagepipe.service.metrics import IngestMetrics
    from imagepipe.webhooks.metrics import DelivererMetrics

    registries = [IngestMetrics().registry, ConsumerMetrics().registry, OperatorMetrics().registry]
    return [*registries, DelivererMetrics().registry]


def exported_series() -> dict[str, frozenset[str]]:
    """Every series name the roles export → the label names its samples carry
    (each role adds `imagepipeline` to every series when the operator deployed it)."""
    series: dict[str, frozenset[str]] = {}
    for registry in role_registries():
        for collector in list(registry._collector_to_names):
            labels = frozenset(getattr(collector, "_labelnames", ()))
            describe = getattr(collector, "describe", None)
            for family in (describe() if describe else None) or collector.collect():
                for suffix in SUFFIXES[family.type]:
                    extra = {"le"} if suffix == "_bucket" else set()
                    series[family.name + suffix] = labels | extra | {RESOURCE_LABEL}
    return series


def recording_rules() -> set[str]:
    """Recording rules that exist: the operator's per-pipeline SLI and the chart's own."""
    names = {ERROR_RATIO_RECORD.format(window=w) for w in SLO_WINDOWS}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_WORD = re.compile(r"(?<![0-9.A-Za-z_:$])[A-Za-z_:][A-Za-z0-9_:]*")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"inf", "nan", "Inf", "NaN"}
)


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (functions, keywords and labels left out)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)  # Grafana variables
    names = set()
    for match in _WORD.finditer(text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def matched_labels(expr: str) -> dict[str, set[str]]:
    """Series name → label names matched on it in selectors (`name{label=...}`)."""
    found: dict[str, set[str]] = {}
    for name, body in _SELECTOR.findall(_STRING.sub('""', expr).replace('""', "x")):
        found.setdefault(name, set()).update(_MATCHER.findall(body))
    return found
