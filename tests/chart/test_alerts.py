"""The installation-wide rules (charts/imagepipe/files/alerts.yaml): promtool
checks them as a file and as the rendered PrometheusRule's groups, and its
unit tests (alerts_test.yaml) show every alert firing on a scenario that
should page or ticket and silent on one that should not."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagepipe.webhooks.deliverer import Options
from imagepipe.webhooks.reloadpolicy import RETRY_MAX_SECONDS

from .helpers import ALERTS, by_kind, documents, render

UNIT_TESTS = Path(__file__).resolve().parent / "alerts_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus (scripts/bootstrap does)"
    return path


def run(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_rules_file_passes_promtool_check(promtool: str) -> None:
    assert "SUCCESS" in run(promtool, "check", "rules", str(ALERTS))


def test_rendered_prometheus_rule_passes_promtool_check(promtool: str, tmp_path: Path) -> None:
    values = {"monitoring": {"prometheusRule": {"enabled": True, "additionalAlertLabels": {"team": "x"}}}}
    (rule,) = by_kind(documents(render(values)), "PrometheusRule")
    rules_file = tmp_path / "rendered.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    assert "SUCCESS" in run(promtool, "check", "rules", str(rules_file))


def test_alert_unit_tests_pass(promtool: str) -> None:
    run(promtool, "test", "rules", str(UNIT_TESTS))


def test_every_alert_is_shown_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            expected = check.get("exp_alerts") or []
            (fired if expected else silent).add(check["alertname"])
            # A firing check that lists fewer alerts than the input's pipelines is also a silent one.
            series = " ".join(s["series"] for s in case["input_series"])
            if expected and series.count("pipeline=") + series.count("pod=") > len(expected):
                silent.add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names == fired, f"alerts never shown firing: {names - fired}"
    assert names == silent, f"alerts never shown silent: {names - silent}"


def test_alerts_are_actionable() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)) == 14
    for rule in alerts():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert rule.get("for"), f"{rule['alert']} must not fire on a single evaluation"


def test_a_stuck_secret_file_fails_in_every_window_of_its_alert() -> None:
    """ImagepipeWebhookSecretReloadFailing needs a failed read in every window of its rule: the
    longest retry delay plus one long poll (the idle deliverer's stat) must fit in the window
    twice, so a deliverer that cannot use its file shows an increase in each one."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    (expr,) = [
        r["expr"]
        for g in groups
        for r in g["rules"]
        if r.get("record") == "imagepipe:webhook_secret_reloads:rate10m"
    ]
    (minutes,) = re.findall(r"\[(\d+)m\]", expr)
    assert RETRY_MAX_SECONDS + Options().wait_seconds < int(minutes) * 60 / 2
