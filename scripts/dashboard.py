#!/usr/bin/env python3
"""Generate the imagepipe Grafana dashboard (charts/imagepipe/files/dashboard.json).

    python scripts/dashboard.py            # rewrite the JSON
    python scripts/dashboard.py --check    # exit 1 if the JSON is not what this script makes

One dashboard per ImagePipeline, chosen by the `imagepipeline` variable: the
`imagepipeline="NAMESPACE/NAME"` label that the operator's series, the
consumer, ingest and deliverer pods' series and the per-pipeline SLO recording
rules all carry. Hidden variables split it, so that kube-state-metrics' Deployment
series (which know only namespace and name) can be selected too. Every metric
name used here is checked by tests/chart against what the roles export.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from imagepipe.exposition import RESOURCE_LABEL
from imagepipe.slo import ERROR_RATIO_RECORD, LATENCY_BUCKETS, SLO_WINDOWS

FILES = Path(__file__).resolve().parent.parent / "charts" / "imagepipe" / "files"
OUTPUT = FILES / "dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Every role's series of this ImagePipeline (each metric name belongs to one role).
THIS = f'{RESOURCE_LABEL}="${RESOURCE_LABEL}"'
CONSUMER = INGEST = OPERATOR = SLO = DELIVERER = THIS
RATE = "$__rate_interval"
HEIGHT = 8  # every panel's, in grid rows

Panel = dict[str, Any]


class Spec(NamedTuple):
    """One panel of a row: its width and what `panel` makes of the rest."""

    w: int
    kind: str
    title: str
    description: str
    queries: list[tuple[str, str]]
    unit: str = "short"
    thresholds: list[tuple[str, float | None]] | None = None
    options: dict[str, Any] | None = None


Row = tuple[str, list[Spec]]


def layout(rows: list[Row]) -> list[Panel]:
    """Each row's title bar, then its panels left to right in lines of 24
    columns; ids in order."""
    panels: list[Panel] = []
    y = 0
    for title, specs in rows:
        bar = {"type": "row", "title": title, "collapsed": False}
        panels.append(
            {"id": len(panels) + 1, **bar, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []}
        )
        x, y = 0, y + 1
        for spec in specs:
            if x + spec.w > 24:
                x, y = 0, y + HEIGHT
            grid = {"h": HEIGHT, "w": spec.w, "x": x, "y": y}
            panels.append({**panel(spec), "id": len(panels) + 1, "gridPos": grid})
            x += spec.w
        y += HEIGHT
    return panels


def target(expr: str, legend: str = "", ref: int = 0) -> dict[str, Any]:
    return {
        "refId": chr(ord("A") + ref),
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": True,
    }


def panel(spec: Spec) -> Panel:
    steps = [{"color": color, "value": value} for color, value in (spec.thresholds or [("green", None)])]
    field_config: dict[str, Any] = {
        "defaults": {"unit": spec.unit, "thresholds": {"mode": "absolute", "steps": steps}},
        "overrides": [],
    }
    if spec.kind == "timeseries":
        field_config["defaults"]["custom"] = {"lineWidth": 1, "fillOpacity": 10, "spanNulls": True}
        if spec.thresholds:
            field_config["defaults"]["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    return {
        "type": spec.kind,
        "title": spec.title,
        "description": spec.description,
        "datasource": DATASOURCE,
        "targets": [target(expr, legend, i) for i, (expr, legend) in enumerate(spec.queries)],
        "fieldConfig": field_config,
        "options": spec.options or {},
    }


def quantiles(metric: str, selector: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def p95(metric: str, selector: str, by: str) -> list[tuple[str, str]]:
    expr = f"histogram_quantile(0.95, sum by (le, {by}) (rate({metric}_bucket{{{selector}}}[{RATE}])))"
    return [(expr, f"{{{{{by}}}}}")]


def rate_by(by: str, series: str, legend: str = "") -> tuple[str, str]:
    return (f"sum by ({by}) (rate({series}[{RATE}]))", legend or f"{{{{{by}}}}}")


OBJECTIVE = ("vector($objective)", "objective")
LAST = {"reduceOptions": {"calcs": ["lastNotNull"]}}


def slo_row() -> Row:
    budget = "(1 - $target)"
    ratio = ERROR_RATIO_RECORD.format
    return (
        "SLO: jobs completed within the objective",
        [
            Spec(8, "stat", "SLO compliance",
                 "Jobs completed within the objective over all finished jobs (failed ones are bad), "
                 "from the operator's recording rules.",
                 [(f"1 - {ratio(window=w)}{{{SLO}}}", w) for w in ("1h", "1d", "3d")],
                 "percentunit", [("red", None), ("orange", 0.99), ("green", 0.999)],
                 {**LAST, "colorMode": "value"}),
            Spec(4, "gauge", "Error budget left (3d)",
                 "1 - errors / budget over the longest recorded window (3 days); "
                 "target from the `target` variable.",
                 [(f"1 - {ratio(window='3d')}{{{SLO}}} / {budget}", "budget left")],
                 "percentunit", [("red", None), ("orange", 0.25), ("green", 0.5)],
                 {**LAST, "min": 0, "max": 1}),
            Spec(12, "timeseries", "Burn rates",
                 "Error ratio / error budget per window; the operator pages at 14.4 (1h & 5m) "
                 "and 6 (6h & 30m), tickets at 3 (1d & 2h) and 1 (3d & 6h).",
                 [(f"{ratio(window=w)}{{{SLO}}} / {budget}", w) for w in SLO_WINDOWS],
                 "short", [("green", None), ("orange", 6), ("red", 14.4)]),
            Spec(12, "timeseries", "End-to-end latency (enqueue → completed) vs objective",
                 "Percentiles of imagepipe_job_latency_seconds across the consumers; "
                 "the dashed line is the objective.",
                 [*quantiles("imagepipe_job_latency_seconds", CONSUMER), OBJECTIVE], "s"),
            Spec(12, "timeseries", "Queue wait (sent → received)",
                 "How long messages waited in SQS before a consumer received them.",
                 [*quantiles("imagepipe_queue_wait_seconds", CONSUMER), OBJECTIVE], "s"),
        ],
    )  # fmt: skip


def flow_row() -> Row:
    jobs = f"imagepipe_jobs_total{{{CONSUMER}}}"
    return (
        "Throughput, backlog and dead letters",
        [
            Spec(8, "timeseries", "Throughput",
                 "Jobs finished per second by outcome, and the arrival rate the autoscaler estimates.",
                 [rate_by("outcome", jobs),
                  (f"imagepipe_autoscaler_arrival_rate{{{OPERATOR}}}", "arrivals (autoscaler)")],
                 "reqps"),
            Spec(8, "timeseries", "Backlog",
                 "Messages in the job queue by state (the operator's SQS gauges).",
                 [(f"imagepipe_queue_messages{{{OPERATOR}}}", "{{state}}")]),
            Spec(8, "timeseries", "Drain time vs objective",
                 "Waiting messages / jobs finished per second (5m): how long the backlog takes to drain "
                 "at the current completion rate. Above the objective line, waiting jobs miss it.",
                 [(f'sum(imagepipe_queue_messages{{{OPERATOR}, state="visible"}}) / sum(rate({jobs}[5m]))',
                   "drain time"),
                  OBJECTIVE],
                 "s"),
            Spec(8, "timeseries", "Dead-letter queue depth",
                 "Messages that exhausted their receives; each one is a failed job (retries_exhausted).",
                 [(f"imagepipe_dlq_messages{{{OPERATOR}}}", "dead letters")],
                 "short", [("green", None), ("red", 1)]),
            Spec(8, "timeseries", "Failures by code",
                 "Failed jobs per second by error code (consumer), and rejected uploads by code (ingest).",
                 [rate_by("code", f'imagepipe_jobs_total{{{CONSUMER}, outcome="failed"}}', "job: {{code}}"),
                  rate_by("code", f"imagepipe_uploads_rejected_total{{{INGEST}}}", "upload: {{code}}")],
                 "reqps"),
            Spec(8, "timeseries", "Operator errors",
                 "Failed reconciliations and autoscaler loops of this pipeline, by reason.",
                 [rate_by("reason", f"imagepipe_operator_reconcile_errors_total{{{OPERATOR}}}")],
                 "reqps"),
        ],
    )  # fmt: skip


def scaling_row() -> Row:
    deployment = 'namespace="$namespace", deployment="$name-consumer"'
    desired = f"imagepipe_autoscaler_desired_replicas{{{OPERATOR}}}"
    return (
        "Consumers and autoscaling",
        [
            Spec(10, "timeseries", "Consumer replicas: desired vs ready",
                 "The autoscaler's decision (by reason), the Deployment's spec and its ready pods "
                 "(kube-state-metrics).",
                 [(desired, "desired ({{reason}})"),
                  (f"kube_deployment_spec_replicas{{{deployment}}}", "spec"),
                  (f"kube_deployment_status_replicas_ready{{{deployment}}}", "ready")]),
            Spec(4, "stat", "Autoscaler reason",
                 "Why the autoscaler chose its replica count: steady, backlog, burst_headroom, stabilising, "
                 "min or max (pinned at maxReplicas).",
                 [(desired, "{{reason}}")],
                 options={**LAST, "textMode": "value_and_name", "colorMode": "none"}),
            Spec(10, "timeseries", "Service time and utilisation",
                 "Per-image service time the autoscaler uses, and busy worker slots over all slots.",
                 [(f"imagepipe_autoscaler_service_time_seconds{{{OPERATOR}}}", "service time (s)"),
                  (f"sum(imagepipe_jobs_in_flight{{{CONSUMER}}}) / sum(imagepipe_worker_slots{{{CONSUMER}}})",
                   "slot utilisation")]),
            Spec(24, "timeseries", "Stage timings (p95)",
                 "95th percentile per processing stage: download, decode, resize, encode, upload.",
                 p95("imagepipe_stage_duration_seconds", CONSUMER, "stage"), "s"),
        ],
    )  # fmt: skip


def ingest_row() -> Row:
    requests = "imagepipe_http_requests_total"
    served = 'route!~"/healthz|/readyz|/metrics"'
    return (
        "Ingest",
        [
            Spec(8, "timeseries", "Requests by status", "Ingest requests per second by HTTP status.",
                 [rate_by("status", f"{requests}{{{INGEST}}}")], "reqps"),
            Spec(8, "timeseries", "5xx ratio",
                 "Share of requests answered 5xx (probes and scrapes excluded); "
                 "the installation alert fires above 5 %.",
                 [(f'sum(rate({requests}{{{INGEST}, status=~"5..", {served}}}[{RATE}]))'
                   f" / sum(rate({requests}{{{INGEST}, {served}}}[{RATE}]))",
                   "5xx ratio")],
                 "percentunit", [("green", None), ("red", 0.05)]),
            Spec(8, "timeseries", "Request duration (p95) by route",
                 "95th percentile of imagepipe_http_request_duration_seconds per route template.",
                 p95("imagepipe_http_request_duration_seconds", INGEST, "route"), "s"),
        ],
    )  # fmt: skip


def alert_threshold(name: str) -> float:
    """The number an alert of the chart's rules file compares with (`... > N`): written there only."""
    for group in yaml.safe_load((FILES / "alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                return float(re.findall(r">\s*([0-9.]+)\s*$", rule["expr"].strip())[0])
    raise KeyError(name)


def alert_line(name: str) -> list[tuple[str, float | None]]:
    """A panel's dashed red line at the alert's threshold."""
    return [("green", None), ("red", alert_threshold(name))]


def webhook_row() -> Row:
    reloads = "imagepipe_webhook_secret_reloads_total"

    def sum_rate(metric: str) -> str:
        return f"sum(rate({metric}{{{DELIVERER}}}[{RATE}]))"

    return (
        "Webhook delivery",
        [
            Spec(8, "timeseries", "Webhook deliveries by outcome",
                 "Event messages the deliverer settled per second by outcome (delivered, retried, "
                 "abandoned: one attempt each; duplicate, unparseable, newer_version, backend_error, "
                 "handed_back: none), and the events the ingest and consumers emitted.",
                 [rate_by("outcome", f"imagepipe_webhook_deliveries_total{{{DELIVERER}}}"),
                  rate_by("event", f"imagepipe_webhook_events_total{{{CONSUMER}}}", "emitted: {{event}}")],
                 "reqps"),
            Spec(8, "timeseries", "Webhook attempts failing",
                 "Failed attempts (retried, abandoned) over all attempts, the chart's recording rule; "
                 "the dashed line is ImagepipeWebhookReceiverFailing's threshold.",
                 [(f"imagepipe:webhook_attempts_failed:ratio_rate10m{{{DELIVERER}}}", "failed share")],
                 "percentunit", alert_line("ImagepipeWebhookReceiverFailing")),
            Spec(8, "timeseries", "Webhook poll errors",
                 "Receives from the delivery queue per second, and the failed ones: a healthy deliverer "
                 "has none failed (ImagepipeWebhookDelivererNotPolling pages when most fail for 15 minutes).",
                 [(sum_rate("imagepipe_webhook_polls_total"), "receives"),
                  (sum_rate("imagepipe_webhook_poll_errors_total"), "poll errors")],
                 "reqps"),
            Spec(8, "timeseries", "Webhook attempt duration",
                 "One POST to the receiver, connection to the last byte read (bounded by "
                 "IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS).",
                 quantiles("imagepipe_webhook_attempt_duration_seconds", DELIVERER), "s"),
            Spec(8, "timeseries", "Webhook event age at delivery",
                 "State change to the receiver's 2xx: seconds with the receiver up, up to the horizon "
                 "after an outage; the dashed line is ImagepipeWebhookDeliveryLate's threshold (on p95).",
                 quantiles("imagepipe_webhook_event_age_seconds", DELIVERER),
                 "s", alert_line("ImagepipeWebhookDeliveryLate")),
            Spec(8, "timeseries", "Webhook deliveries in flight",
                 "Event messages being delivered now against the deliverer's concurrency "
                 "(IMAGEPIPE_WEBHOOK_CONCURRENCY): at the line, events wait in the queue.",
                 [(f"sum(imagepipe_webhook_deliveries_in_flight{{{DELIVERER}}})", "in flight"),
                  (f"sum(imagepipe_webhook_concurrency{{{DELIVERER}}})", "concurrency")]),
            Spec(8, "timeseries", "Webhook secret reloads",
                 "Reads of the mounted signing secret after it changed (a rotation), and again every "
                 "minute at most while they fail: failed means the file cannot be used (its mode or owner, "
                 "or not whsec_ secrets) and the last good secrets go on signing; failed reads without a "
                 "loaded one for 15 minutes raise ImagepipeWebhookSecretReloadFailing.",
                 [(f"sum by (pod, result) (increase({reloads}{{{DELIVERER}}}[{RATE}]))",
                   "{{pod}}: {{result}}")]),
        ],
    )  # fmt: skip


def query_variable(name: str, label: str, query: str, regex: str = "", hide: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "regex": regex,
        "refresh": 2,
        "sort": 1,
        "hide": hide,
        "includeAll": False,
        "multi": False,
    }


def custom_variable(name: str, label: str, values: tuple[str, ...], current: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "current": {"text": current, "value": current, "selected": True},
        "options": [{"text": v, "value": v, "selected": v == current} for v in values],
        "hide": 0,
        "includeAll": False,
        "multi": False,
    }


def variables() -> list[dict[str, Any]]:
    pipelines = f"label_values(imagepipe_queue_messages, {RESOURCE_LABEL})"
    this = f"label_values(imagepipe_queue_messages{{{THIS}}}, {RESOURCE_LABEL})"
    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "hide": 0,
            "current": {},
        },
        query_variable(RESOURCE_LABEL, "ImagePipeline", pipelines),
        query_variable("namespace", "namespace", this, regex=r"/^([^\/]+)\/.*$/", hide=2),
        query_variable("name", "name", this, regex=r"/^[^\/]+\/(.+)$/", hide=2),
        custom_variable("objective", "objective (s)", tuple(f"{b:g}" for b in LATENCY_BUCKETS), "30"),
        custom_variable("target", "SLO target", ("0.9", "0.95", "0.99", "0.995", "0.999", "0.9999"), "0.99"),
    ]


def dashboard() -> dict[str, Any]:
    return {
        "uid": "imagepipe-pipeline",
        "title": "imagepipe / ImagePipeline",
        "description": (
            "One ImagePipeline at a glance: SLO, latency, throughput, backlog, scaling, failures, ingest, "
            "webhook delivery."
        ),
        "tags": ["imagepipe"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": variables()},
        "annotations": {"list": []},
        "links": [],
        "panels": layout([slo_row(), flow_row(), scaling_row(), ingest_row(), webhook_row()]),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run python scripts/dashboard.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
