"""The `NAME-slo` PrometheusRule: the SLI of this pipeline's objective over
seven windows and the multi-window multi-burn-rate alerts of the SRE
workbook (page: 1h&5m > 14.4 or 6h&30m > 6; ticket: 1d&2h > 3 or 3d&6h > 1).

SLI = jobs completed within the objective / all finished jobs; failed jobs
(`imagepipe_jobs_total{outcome="failed"}`) count as bad. The consumers'
series are selected by their `imagepipeline="NAMESPACE/NAME"` label (the
operator sets IMAGEPIPE_IMAGEPIPELINE on the pods), and the rules carry it.
"""

from __future__ import annotations

from typing import Any

from imagepipe.exposition import RESOURCE_LABEL
from imagepipe.slo import ERROR_RATIO_RECORD, SLO_WINDOWS

from .builders import Manifest, labels
from .imagepipeline import ImagePipeline

# (severity, long window, short window, burn-rate factor)
BURN_ALERTS = (
    ("page", "1h", "5m", 14.4),
    ("page", "6h", "30m", 6.0),
    ("ticket", "1d", "2h", 3.0),
    ("ticket", "3d", "6h", 1.0),
)


def le_matcher(objective: float) -> str:
    """Matches the bucket bound however the client formatted it (`30` or `30.0`)."""
    if float(objective).is_integer():
        return f'le=~"{int(objective)}(\\\\.0)?"'
    return f'le="{objective}"'


def series_selector(p: ImagePipeline) -> str:
    return f'{RESOURCE_LABEL}="{p.key}"'


def error_ratio_expr(p: ImagePipeline, window: str) -> str:
    sel = series_selector(p)
    le = le_matcher(p.slo.latency_seconds)
    good = f"sum(rate(imagepipe_job_latency_seconds_bucket{{{sel},{le}}}[{window}]))"
    completed = f"sum(rate(imagepipe_job_latency_seconds_count{{{sel}}}[{window}]))"
    failed = f'(sum(rate(imagepipe_jobs_total{{{sel},outcome="failed"}}[{window}])) or vector(0))'
    return f"1 - {good} / ({completed} + {failed})"


def rule_labels(p: ImagePipeline) -> dict[str, str]:
    return {"namespace": p.namespace, RESOURCE_LABEL: p.key}


def recording_rules(p: ImagePipeline) -> list[dict[str, Any]]:
    return [
        {
            "record": ERROR_RATIO_RECORD.format(window=w),
            "expr": error_ratio_expr(p, w),
            "labels": rule_labels(p),
        }
        for w in SLO_WINDOWS
    ]


def _burn_condition(p: ImagePipeline, long: str, short: str, factor: float) -> str:
    budget = 1 - p.slo.target
    threshold = f"({factor} * {budget:.6g})"
    match = f"{{{series_selector(p)}}}"
    return (
        f"({ERROR_RATIO_RECORD.format(window=long)}{match} > {threshold}"
        f" and {ERROR_RATIO_RECORD.format(window=short)}{match} > {threshold})"
    )


def alert_rules(p: ImagePipeline) -> list[dict[str, Any]]:
    rules = []
    for severity, name in (("page", "ImagepipeSLOBurnRateFast"), ("ticket", "ImagepipeSLOBurnRateSlow")):
        conditions = [_burn_condition(p, lg, sh, f) for sev, lg, sh, f in BURN_ALERTS if sev == severity]
        rules.append(
            {
                "alert": name,
                "expr": " or ".join(conditions),
                "labels": {"severity": severity, **rule_labels(p)},
                "annotations": {
                    "summary": f"ImagePipeline {p.namespace}/{p.name} is burning its latency error budget",
                    "description": (
                        f"Fewer than {p.slo.target:.3%} of jobs finish within "
                        f"{p.slo.latency_seconds:g} s at this rate ({severity})."
                    ),
                },
            }
        )
    return rules


def rule_groups(p: ImagePipeline) -> list[dict[str, Any]]:
    """The groups as Prometheus rule files hold them (also checked with promtool)."""
    return [
        {"name": f"imagepipe-{p.namespace}-{p.name}-sli", "interval": "30s", "rules": recording_rules(p)},
        {"name": f"imagepipe-{p.namespace}-{p.name}-slo-alerts", "rules": alert_rules(p)},
    ]


def build_prometheus_rule(p: ImagePipeline) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": p.child("slo"), "namespace": p.namespace, "labels": labels(p)},
        "spec": {"groups": rule_groups(p)},
    }
