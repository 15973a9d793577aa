"""The built PrometheusRule's groups pass `promtool check rules`, and
`promtool test rules` shows the burn-rate alerts doing their job: a 20 % slow
hour after six good hours pages; 0.5 % slow does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.monitoring import build_prometheus_rule, rule_groups

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
pytestmark = pytest.mark.skipif(not Path(PROMTOOL).exists(), reason="promtool is not installed")

GOOD_PER_MINUTE = 600


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def write_rules(body: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    groups = rule_groups(parse_imagepipeline(body))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def test_check_rules(full: dict[str, Any], tmp_path: Path) -> None:
    write_rules(full, tmp_path)
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rule = build_prometheus_rule(parse_imagepipeline(full))
    assert rule["metadata"]["name"] == "catalogue-slo"
    records = [r["record"] for r in rule["spec"]["groups"][0]["rules"]]
    windows = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
    assert records == [f"imagepipe:slo_errors:ratio_rate{w}" for w in windows]


def series(body: dict[str, Any], slow_per_minute: int) -> list[dict[str, str]]:
    """Six good hours, then one hour with `slow_per_minute` of 600 jobs a minute over the objective;
    meanwhile another ImagePipeline's consumer (same namespace, same variant list) misses every job."""
    name = body["metadata"]["name"]
    pod = (
        f'namespace="default",pod="{name}-consumer-7d9f-x2",imagepipeline="default/{name}",pipeline="default"'
    )
    other = (
        'namespace="default",pod="other-consumer-5c4b-q7",imagepipeline="default/other",pipeline="default"'
    )
    good_last = GOOD_PER_MINUTE * 360
    good_after = GOOD_PER_MINUTE - slow_per_minute
    return [
        {"series": f'imagepipe_job_latency_seconds_bucket{{{other},le="30.0"}}', "values": "0x420"},
        {"series": f"imagepipe_job_latency_seconds_count{{{other}}}", "values": f"0+{GOOD_PER_MINUTE}x420"},
        {
            "series": f'imagepipe_job_latency_seconds_bucket{{{pod},le="30.0"}}',
            "values": f"0+{GOOD_PER_MINUTE}x360 {good_last + good_after}+{good_after}x59",
        },
        {"series": f"imagepipe_job_latency_seconds_count{{{pod}}}", "values": f"0+{GOOD_PER_MINUTE}x420"},
        {"series": f'imagepipe_jobs_total{{{pod},outcome="failed",code="corrupt_image"}}', "values": "0x420"},
    ]


def expected(alert: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"exp_labels": alert["labels"], "exp_annotations": alert["annotations"]}]


@pytest.mark.parametrize(("slow_per_minute", "pages"), [(120, True), (3, False)])
def test_burn_rate_alerts(minimal: dict[str, Any], tmp_path: Path, slow_per_minute: int, pages: bool) -> None:
    alerts = write_rules(minimal, tmp_path)
    page = alerts["ImagepipeSLOBurnRateFast"]
    assert page["labels"]["severity"] == "page"
    # The 20 % hour burns enough of the 3-day budget to ticket too; 0.5 % burns none of it.
    quiet_ticket = (
        [] if pages else [{"eval_time": "6h50m", "alertname": "ImagepipeSLOBurnRateSlow", "exp_alerts": []}]
    )
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series(minimal, slow_per_minute),
                "alert_rule_test": [
                    {"eval_time": "5h", "alertname": "ImagepipeSLOBurnRateFast", "exp_alerts": []},
                    {
                        "eval_time": "6h50m",
                        "alertname": "ImagepipeSLOBurnRateFast",
                        "exp_alerts": expected(page) if pages else [],
                    },
                    *quiet_ticket,
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
