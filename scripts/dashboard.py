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
from typing import Any

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

Panel = dict[str, Any]


class Layout:
    """Panels left to right, rows of height `h`, 24 columns; ids in order."""

    def __init__(self) -> None:
        self.panels: list[Panel] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def _next_id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self.y += self.row_height
        self.x, self.row_height = 0, 0
        self.panels.append(
            {
                "id": self._next_id(),
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def add(self, panel: Panel, w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self.y += self.row_height
            self.x, self.row_height = 0, 0
        panel["id"] = self._next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def target(expr: str, legend: str = "", ref: int = 0) -> dict[str, Any]:
    return {
        "refId": chr(ord("A") + ref),
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": True,
    }


def panel(
    kind: str,
    title: str,
    description: str,
    queries: list[tuple[str, str]],
    unit: str = "short",
    thresholds: list[tuple[str, float | None]] | None = None,
    **options: Any,
) -> Panel:
    steps = [{"color": color, "value": value} for color, value in (thresholds or [("green", None)])]
    field_config: dict[str, Any] = {
        "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
        "overrides": [],
    }
    if kind == "timeseries":
        field_config["defaults"]["custom"] = {"lineWidth": 1, "fillOpacity": 10, "spanNulls": True}
        if thresholds:
            field_config["defaults"]["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    result: Panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [target(expr, legend, i) for i, (expr, legend) in enumerate(queries)],
        "fieldConfig": field_config,
        "options": options,
    }
    return result


def quantiles(metric: str, selector: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le, {by}" if by else "le"
    label = f"{{{{{by}}}}} " if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"{label}p{round(q * 100)}",
        )
        for q in (0.5, 0.9, 0.99)
    ]


def objective_line() -> tuple[str, str]:
    return ("vector($objective)", "objective")


def slo_row(layout: Layout) -> None:
    layout.row("SLO: jobs completed within the objective")
    budget = "(1 - $target)"
    layout.add(
        panel(
            "stat",
            "SLO compliance",
            "Jobs completed within the objective over all finished jobs (failed ones are bad), "
            "from the operator's recording rules.",
            [(f"1 - {ERROR_RATIO_RECORD.format(window=w)}{{{SLO}}}", w) for w in ("1h", "1d", "3d")],
            unit="percentunit",
            thresholds=[("red", None), ("orange", 0.99), ("green", 0.999)],
            reduceOptions={"calcs": ["lastNotNull"]},
            colorMode="value",
        ),
        w=8,
    )
    layout.add(
        panel(
            "gauge",
            "Error budget left (3d)",
            "1 - errors / budget over the longest recorded window (3 days); "
            "target from the `target` variable.",
            [(f"1 - {ERROR_RATIO_RECORD.format(window='3d')}{{{SLO}}} / {budget}", "budget left")],
            unit="percentunit",
            thresholds=[("red", None), ("orange", 0.25), ("green", 0.5)],
            reduceOptions={"calcs": ["lastNotNull"]},
            min=0,
            max=1,
        ),
        w=4,
    )
    layout.add(
        panel(
            "timeseries",
            "Burn rates",
            "Error ratio / error budget per window; the operator pages at 14.4 (1h & 5m) and 6 (6h & 30m), "
            "tickets at 3 (1d & 2h) and 1 (3d & 6h).",
            [(f"{ERROR_RATIO_RECORD.format(window=w)}{{{SLO}}} / {budget}", w) for w in SLO_WINDOWS],
            unit="short",
            thresholds=[("green", None), ("orange", 6), ("red", 14.4)],
        ),
        w=12,
    )
    layout.add(
        panel(
            "timeseries",
            "End-to-end latency (enqueue → completed) vs objective",
            "Percentiles of imagepipe_job_latency_seconds across the consumers; "
            "the dashed line is the objective.",
            [*quantiles("imagepipe_job_latency_seconds", CONSUMER), objective_line()],
            unit="s",
        ),
        w=12,
    )
    layout.add(
        panel(
            "timeseries",
            "Queue wait (sent → received)",
            "How long messages waited in SQS before a consumer received them.",
            [*quantiles("imagepipe_queue_wait_seconds", CONSUMER), objective_line()],
            unit="s",
        ),
        w=12,
    )


def flow_row(layout: Layout) -> None:
    layout.row("Throughput, backlog and dead letters")
    layout.add(
        panel(
            "timeseries",
            "Throughput",
            "Jobs finished per second by outcome, and the arrival rate the autoscaler estimates.",
            [
                (f"sum by (outcome) (rate(imagepipe_jobs_total{{{CONSUMER}}}[{RATE}]))", "{{outcome}}"),
                (f"imagepipe_autoscaler_arrival_rate{{{OPERATOR}}}", "arrivals (autoscaler)"),
            ],
            unit="reqps",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Backlog",
            "Messages in the job queue by state (the operator's SQS gauges).",
            [(f"imagepipe_queue_messages{{{OPERATOR}}}", "{{state}}")],
            unit="short",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Drain time vs objective",
            "Waiting messages / jobs finished per second (5m): how long the backlog takes to drain at the "
            "current completion rate. Above the objective line, waiting jobs miss it.",
            [
                (
                    f'sum(imagepipe_queue_messages{{{OPERATOR}, state="visible"}})'
                    f" / sum(rate(imagepipe_jobs_total{{{CONSUMER}}}[5m]))",
                    "drain time",
                ),
                objective_line(),
            ],
            unit="s",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Dead-letter queue depth",
            "Messages that exhausted their receives; each one is a failed job (retries_exhausted).",
            [(f"imagepipe_dlq_messages{{{OPERATOR}}}", "dead letters")],
            unit="short",
            thresholds=[("green", None), ("red", 1)],
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Failures by code",
            "Failed jobs per second by error code (consumer), and rejected uploads by code (ingest).",
            [
                (
                    f'sum by (code) (rate(imagepipe_jobs_total{{{CONSUMER}, outcome="failed"}}[{RATE}]))',
                    "job: {{code}}",
                ),
                (
                    f"sum by (code) (rate(imagepipe_uploads_rejected_total{{{INGEST}}}[{RATE}]))",
                    "upload: {{code}}",
                ),
            ],
            unit="reqps",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Operator errors",
            "Failed reconciliations and autoscaler loops of this pipeline, by reason.",
            [
                (
                    "sum by (reason) "
                    f"(rate(imagepipe_operator_reconcile_errors_total{{{OPERATOR}}}[{RATE}]))",
                    "{{reason}}",
                )
            ],
            unit="reqps",
        ),
        w=8,
    )


def scaling_row(layout: Layout) -> None:
    layout.row("Consumers and autoscaling")
    deployment = 'namespace="$namespace", deployment="$name-consumer"'
    layout.add(
        panel(
            "timeseries",
            "Consumer replicas: desired vs ready",
            "The autoscaler's decision (by reason), the Deployment's spec and its ready pods "
            "(kube-state-metrics).",
            [
                (f"imagepipe_autoscaler_desired_replicas{{{OPERATOR}}}", "desired ({{reason}})"),
                (f"kube_deployment_spec_replicas{{{deployment}}}", "spec"),
                (f"kube_deployment_status_replicas_ready{{{deployment}}}", "ready"),
            ],
            unit="short",
        ),
        w=10,
    )
    layout.add(
        panel(
            "stat",
            "Autoscaler reason",
            "Why the autoscaler chose its replica count: steady, backlog, burst_headroom, stabilising, "
            "min or max (pinned at maxReplicas).",
            [(f"imagepipe_autoscaler_desired_replicas{{{OPERATOR}}}", "{{reason}}")],
            unit="short",
            reduceOptions={"calcs": ["lastNotNull"]},
            textMode="value_and_name",
            colorMode="none",
        ),
        w=4,
    )
    layout.add(
        panel(
            "timeseries",
            "Service time and utilisation",
            "Per-image service time the autoscaler uses, and busy worker slots over all slots.",
            [
                (f"imagepipe_autoscaler_service_time_seconds{{{OPERATOR}}}", "service time (s)"),
                (
                    f"sum(imagepipe_jobs_in_flight{{{CONSUMER}}})"
                    f" / sum(imagepipe_worker_slots{{{CONSUMER}}})",
                    "slot utilisation",
                ),
            ],
            unit="short",
        ),
        w=10,
    )
    layout.add(
        panel(
            "timeseries",
            "Stage timings (p95)",
            "95th percentile per processing stage: download, decode, resize, encode, upload.",
            [
                (
                    "histogram_quantile(0.95, sum by (le, stage) "
                    f"(rate(imagepipe_stage_duration_seconds_bucket{{{CONSUMER}}}[{RATE}])))",
                    "{{stage}}",
                )
            ],
            unit="s",
        ),
        w=24,
    )


def ingest_row(layout: Layout) -> None:
    layout.row("Ingest")
    requests = f"imagepipe_http_requests_total{{{INGEST}}}"
    layout.add(
        panel(
            "timeseries",
            "Requests by status",
            "Ingest requests per second by HTTP status.",
            [(f"sum by (status) (rate({requests}[{RATE}]))", "{{status}}")],
            unit="reqps",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "5xx ratio",
            "Share of requests answered 5xx (probes and scrapes excluded); "
            "the installation alert fires above 5 %.",
            [
                (
                    f'sum(rate(imagepipe_http_requests_total{{{INGEST}, status=~"5..", '
                    f'route!~"/healthz|/readyz|/metrics"}}[{RATE}]))'
                    f" / sum(rate(imagepipe_http_requests_total{{{INGEST}, "
                    f'route!~"/healthz|/readyz|/metrics"}}[{RATE}]))',
                    "5xx ratio",
                )
            ],
            unit="percentunit",
            thresholds=[("green", None), ("red", 0.05)],
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Request duration (p95) by route",
            "95th percentile of imagepipe_http_request_duration_seconds per route template.",
            [
                (
                    "histogram_quantile(0.95, sum by (le, route) "
                    f"(rate(imagepipe_http_request_duration_seconds_bucket{{{INGEST}}}[{RATE}])))",
                    "{{route}}",
                )
            ],
            unit="s",
        ),
        w=8,
    )


def alert_threshold(name: str) -> float:
    """The number an alert of the chart's rules file compares with (`... > N`): written there only."""
    for group in yaml.safe_load((FILES / "alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                return float(re.findall(r">\s*([0-9.]+)\s*$", rule["expr"].strip())[0])
    raise KeyError(name)


RELOADS = "imagepipe_webhook_secret_reloads_total"


def webhook_row(layout: Layout) -> None:
    layout.row("Webhook delivery")
    deliveries = f"imagepipe_webhook_deliveries_total{{{DELIVERER}}}"
    layout.add(
        panel(
            "timeseries",
            "Webhook deliveries by outcome",
            "Event messages the deliverer settled per second by outcome (delivered, retried, abandoned: "
            "one attempt each; duplicate, unparseable, newer_version, backend_error, handed_back: none), "
            "and the events the ingest and consumers emitted.",
            [
                (f"sum by (outcome) (rate({deliveries}[{RATE}]))", "{{outcome}}"),
                (
                    f"sum by (event) (rate(imagepipe_webhook_events_total{{{CONSUMER}}}[{RATE}]))",
                    "emitted: {{event}}",
                ),
            ],
            unit="reqps",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Webhook attempts failing",
            "Failed attempts (retried, abandoned) over all attempts, the chart's recording rule; "
            "the dashed line is ImagepipeWebhookReceiverFailing's threshold.",
            [(f"imagepipe:webhook_attempts_failed:ratio_rate10m{{{DELIVERER}}}", "failed share")],
            unit="percentunit",
            thresholds=[("green", None), ("red", alert_threshold("ImagepipeWebhookReceiverFailing"))],
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Webhook poll errors",
            "Receives from the delivery queue per second, and the failed ones: a healthy deliverer "
            "has none failed (ImagepipeWebhookDelivererNotPolling pages when most fail for 15 minutes).",
            [
                (f"sum(rate(imagepipe_webhook_polls_total{{{DELIVERER}}}[{RATE}]))", "receives"),
                (f"sum(rate(imagepipe_webhook_poll_errors_total{{{DELIVERER}}}[{RATE}]))", "poll errors"),
            ],
            unit="reqps",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Webhook attempt duration",
            "One POST to the receiver, connection to the last byte read (bounded by "
            "IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS).",
            quantiles("imagepipe_webhook_attempt_duration_seconds", DELIVERER),
            unit="s",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Webhook event age at delivery",
            "State change to the receiver's 2xx: seconds with the receiver up, up to the horizon after an "
            "outage; the dashed line is ImagepipeWebhookDeliveryLate's threshold (on p95).",
            quantiles("imagepipe_webhook_event_age_seconds", DELIVERER),
            unit="s",
            thresholds=[("green", None), ("red", alert_threshold("ImagepipeWebhookDeliveryLate"))],
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Webhook deliveries in flight",
            "Event messages being delivered now against the deliverer's concurrency "
            "(IMAGEPIPE_WEBHOOK_CONCURRENCY): at the line, events wait in the queue.",
            [
                (f"sum(imagepipe_webhook_deliveries_in_flight{{{DELIVERER}}})", "in flight"),
                (f"sum(imagepipe_webhook_concurrency{{{DELIVERER}}})", "concurrency"),
            ],
            unit="short",
        ),
        w=8,
    )
    layout.add(
        panel(
            "timeseries",
            "Webhook secret reloads",
            "Reads of the mounted signing secret after it changed (a rotation): failed means the "
            "Secret holds something unusable and the last good secrets go on signing.",
            [(f"sum by (result) (increase({RELOADS}{{{DELIVERER}}}[{RATE}]))", "{{result}}")],
            unit="short",
        ),
        w=8,
    )


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
    layout = Layout()
    slo_row(layout)
    flow_row(layout)
    scaling_row(layout)
    ingest_row(layout)
    webhook_row(layout)
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
        "panels": layout.panels,
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
