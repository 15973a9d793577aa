"""`imagepipe operator render FILE`: the children as a YAML stream, no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imagepipe.cli import main

from .conftest import EXAMPLES


def test_render_prints_the_children(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["operator", "render", str(EXAMPLES / "minimal.yaml")]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [d["kind"] for d in docs]
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "PrometheusRule",
    ]
    pipelines = yaml.safe_load(docs[0]["data"]["pipelines.yaml"])
    assert [v["name"] for v in pipelines["default"]] == ["thumbnail", "medium", "large"]


def test_render_rejects_an_invalid_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    body["spec"]["slo"] = {"latencySeconds": 31}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(body))
    assert main(["operator", "render", str(tmp_path / "bad.yaml")]) == 2
    assert "spec.slo.latencySeconds" in capsys.readouterr().err


def test_operator_without_action_means_run() -> None:
    import argparse

    from imagepipe.operator import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert parser.parse_args([]).action is None
    args = parser.parse_args(["-n", "media", "run", "--standalone"])
    assert (args.action, args.namespace, args.standalone) == ("run", ["media"], True)
