"""The Grafana dashboard (charts/imagepipe/files/dashboard.json, made by
scripts/dashboard.py) is a valid model, and every PromQL expression in it and
in the alerts reads only series that the roles export, recording rules that
exist, or documented kube-state-metrics / scrape series."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from imagepipe.slo import ERROR_RATIO_RECORD, SLO_WINDOWS
from imagepipe.webhooks.metrics import DelivererMetrics

from .helpers import (
    ALERTS,
    DASHBOARD,
    KUBE_STATE_METRICS,
    REPO,
    SCRAPE_SERIES,
    SUFFIXES,
    TARGET_LABELS,
    exported_series,
    matched_labels,
    metric_names,
    recording_rules,
)

REQUIRED_TOPICS = [
    "SLO compliance",
    "Error budget",
    "Burn rates",
    "latency",
    "Throughput",
    "Backlog",
    "Drain time",
    "Dead-letter",
    "replicas",
    "Autoscaler reason",
    "Failures by code",
    "Stage timings",
    "Requests by status",
    "5xx",
    "Webhook deliveries by outcome",
    "Webhook attempts failing",
    "attempt duration",
    "Event age at delivery",
    "in flight",
]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    model: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return model


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def alert_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_generator_output_is_committed() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "dashboard.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_dashboard_is_a_valid_model(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
    cells = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))


def test_pipeline_variable_and_every_used_variable_exist(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["imagepipeline"]["type"] == "query"
    assert (
        variables["imagepipeline"]["query"]["query"]
        == "label_values(imagepipe_queue_messages, imagepipeline)"
    )
    used = {name for expr in dashboard_exprs(dashboard) for name in re.findall(r"\$(\w+)", expr)}
    assert used - {"__rate_interval"} <= set(variables), used
    # The hidden variables split "NAMESPACE/NAME" as the imagepipeline label has it.
    for name, sample, want in (("namespace", "media/photos", "media"), ("name", "media/photos", "photos")):
        regex = variables[name]["regex"].strip("/").replace("\\/", "/")
        match = re.match(regex, sample)
        assert match and match.group(1) == want


def test_dashboard_covers_what_an_sre_reads(dashboard: dict[str, Any]) -> None:
    titles = " | ".join(p["title"] for p in panels(dashboard))
    for topic in REQUIRED_TOPICS:
        assert topic.lower() in titles.lower(), topic
    objective = [t for p in panels(dashboard) for t in p["targets"] if t["expr"] == "vector($objective)"]
    assert len(objective) >= 2  # latency and drain time against the objective line


def test_metric_names_the_roles_export_are_collected() -> None:
    series = exported_series()
    for name in (
        "imagepipe_http_requests_total",
        "imagepipe_job_latency_seconds_bucket",
        "imagepipe_jobs_total",
        "imagepipe_queue_messages",
        "imagepipe_autoscaler_desired_replicas",
        "imagepipe_operator_reconcile_errors_total",
    ):
        assert name in series, name
    assert series["imagepipe_jobs_total"] == {"imagepipeline", "pipeline", "outcome", "code"}


def test_metric_extraction() -> None:
    expr = (
        'sum by (le, stage) (rate(a_b_bucket{pod=~"x-.+", c="d"}[5m])) / on (x) b:c:rate5m'
        ' or vector($objective) > 1e3 unless absent(up{job="j"} == 1)'
    )
    assert metric_names(expr) == {"a_b_bucket", "b:c:rate5m", "up"}
    assert matched_labels(expr) == {"a_b_bucket": {"pod", "c"}, "up": {"job"}}


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_series_read_exists(source: str, dashboard: dict[str, Any]) -> None:
    exprs = dashboard_exprs(dashboard) if source == "dashboard" else alert_exprs()
    exported = exported_series()
    known = set(exported) | recording_rules() | KUBE_STATE_METRICS | SCRAPE_SERIES
    used = {name for expr in exprs for name in metric_names(expr)}
    assert used, "no series found: the extraction is broken"
    assert used <= known, f"{source} reads series nobody exports: {sorted(used - known)}"
    # Label matchers on the roles' series name labels those series have (or target labels).
    for expr in exprs:
        for name, labels in matched_labels(expr).items():
            if name in exported:
                unknown = labels - exported[name] - TARGET_LABELS
                assert not unknown, f"{name} has no label {unknown} (in {expr!r})"


def test_every_pipeline_series_is_joined_on_the_imagepipeline_label(dashboard: dict[str, Any]) -> None:
    """The roles' series, the operator's and the SLO rules are all selected by
    `imagepipeline`; only kube-state-metrics' series go by namespace and name."""
    exported = exported_series()
    per_pipeline = set(exported) | {ERROR_RATIO_RECORD.format(window=w) for w in SLO_WINDOWS}
    selected = 0
    for expr in dashboard_exprs(dashboard):
        for name, labels in matched_labels(expr).items():
            if name in per_pipeline:
                assert "imagepipeline" in labels, f"{name} not selected by imagepipeline in {expr!r}"
                selected += 1
    assert selected > 20


def test_every_deliverer_series_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    """Each family the deliverer exports (its own registry) is read by a panel, selected by
    `imagepipeline`; so is the webhook alerts' failed share, with the alert's threshold line."""
    families = {f.name: f.type for f in DelivererMetrics().registry.collect()}
    assert len(families) == 8, families
    used = {name for expr in dashboard_exprs(dashboard) for name in metric_names(expr)}
    for family, kind in families.items():
        assert used & {family + suffix for suffix in SUFFIXES[kind]}, f"no panel reads {family}"
    assert "imagepipe:webhook_attempts_failed:ratio_rate10m" in used
    (failing,) = [p for p in panels(dashboard) if p["title"] == "Webhook attempts failing"]
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    (alert,) = [r for r in rules if r.get("alert") == "ImagepipeWebhookReceiverFailing"]
    threshold = failing["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
    assert alert["expr"].strip().endswith(f"> {threshold:g}")
