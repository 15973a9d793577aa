"""docs/design.md stays the design of record: every variable the repository
reads, every error code and every metric the roles export is in it, from
lists derived from the code, never typed here."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

import yaml

from imagepipe import errors
from imagepipe.consumer.metrics import FAILURE_CODES
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.monitoring import rule_groups
from imagepipe.service.errors import _HTTP_CODES
from imagepipe.service.metrics import REJECTION_CODES
from tests.chart.helpers import ALERTS, role_registries

from .repo import DESIGN, REPO, first_cells, repo_files, section, text_of

VARIABLE = re.compile(r"\bIMAGEPIPE_[A-Z0-9_]*[A-Z0-9]\b")
# Tests set made-up variables of their own; the one test file that reads a
# real one (the corpus location) is included.
READERS = re.compile(r"^(?!tests/|docs/)|^tests/conftest\.py$")
# An error code handed to an HTTP error: `ApiError(409, "idempotency_conflict", ...)`.
HTTP_CODE = re.compile(r"\(\s*\d{3},\s*\"([a-z_]+)\"")
DICT_CODE = re.compile(r"\"code\": \"([a-z_]+)\"")


def design() -> str:
    return DESIGN.read_text()


def table_names(heading: str) -> set[str]:
    """Every backticked name in the first cells of the tables under `heading`."""
    cells = first_cells(section(design(), heading))
    return {name for cell in cells for name in re.findall(r"`([^`]+)`", cell)}


def variables_read() -> set[str]:
    found = set()
    for name in repo_files():
        if READERS.search(name) and not name.endswith(".md"):
            found.update(VARIABLE.findall(text_of(name) or ""))
    return found


def test_every_variable_is_in_the_configuration_table() -> None:
    read = variables_read()
    # The scan sees the roles, the scripts and the tests' corpus location.
    assert {"IMAGEPIPE_BUCKET", "IMAGEPIPE_AVX2", "IMAGEPIPE_CORPUS"} <= read
    missing = read - table_names("Configuration")
    assert not missing, f"add to docs/design.md, Configuration: {sorted(missing)}"


def test_the_configuration_table_names_only_variables_something_reads() -> None:
    stale = {n for n in table_names("Configuration") if n.startswith("IMAGEPIPE_")} - variables_read()
    assert not stale, f"nothing reads {sorted(stale)}: remove them from docs/design.md"


def _error_classes(cls: type[errors.ImagePipeError]) -> Iterator[type[errors.ImagePipeError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _error_classes(sub)


def error_codes() -> set[str]:
    codes = {cls.code for cls in _error_classes(errors.ImagePipeError)}
    codes |= {*_HTTP_CODES.values(), *REJECTION_CODES, *FAILURE_CODES}
    for name in repo_files():
        if name.endswith(".py") and not name.startswith(("tests/", "bench/")):
            text = text_of(name) or ""
            codes |= set(HTTP_CODE.findall(text)) | set(DICT_CODE.findall(text))
    return codes


def test_every_error_code_is_in_the_error_table() -> None:
    codes = error_codes()
    assert {"too_complex", "unauthorized", "backend_unavailable", "unreadable"} <= codes
    missing = codes - table_names("Error codes")
    assert not missing, f"add to docs/design.md, Error codes: {sorted(missing)}"


def exported_metrics() -> set[str]:
    """`name{label,...}` of every family the roles register, as exposed (counters end in _total)."""
    found = set()
    for registry in role_registries():
        for collector in list(registry._collector_to_names):
            labels = ",".join(getattr(collector, "_labelnames", ()))
            # Every collector of prometheus_client's own metric classes describes itself.
            for family in collector.describe():  # type: ignore[attr-defined]
                name = family.name + ("_total" if family.type == "counter" else "")
                found.add(f"{name}{{{labels}}}" if labels else name)
    return found


def test_every_metric_is_in_the_metrics_table_with_its_labels() -> None:
    exported = exported_metrics()
    assert "imagepipe_jobs_total{pipeline,outcome,code}" in exported
    listed = table_names("Metrics")
    assert not exported - listed, f"add to docs/design.md, Metrics: {sorted(exported - listed)}"
    assert not listed - exported, f"no role exports {sorted(listed - exported)}"


def test_every_test_the_design_cites_exists() -> None:
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", design())
    assert len(cited) > 10
    for path, function in cited:
        assert (REPO / path).is_file(), path
        if function:
            tree = ast.parse((REPO / path).read_text())
            functions = (ast.FunctionDef, ast.AsyncFunctionDef)
            defined = {n.name for n in ast.walk(tree) if isinstance(n, functions)}
            assert function in defined, f"{path}::{function}"


def test_every_alert_is_in_the_alerts_table() -> None:
    """The chart's alerts and the operator's burn-rate alerts, with their severity, and no other."""
    example = yaml.safe_load((REPO / "examples" / "minimal.yaml").read_text())
    example["metadata"]["uid"] = "u"
    groups = yaml.safe_load(ALERTS.read_text())["groups"] + rule_groups(parse_imagepipeline(example))
    rules = {r["alert"]: r["labels"]["severity"] for g in groups for r in g["rules"] if "alert" in r}
    assert {"ImagepipeSLOBurnRateFast", "ImagepipeWebhookEventsAbandoned"} <= set(rules)
    lines = section(design(), "Alerts").splitlines()
    rows = [line.split("|")[1:3] for line in lines if line.startswith("| `")]
    table = {name.strip().strip("`"): severity.strip() for name, severity in rows}
    assert table == rules


def test_every_chart_recording_rule_is_in_the_metrics_section() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    records = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    assert "imagepipe:webhook_attempts_failed:ratio_rate10m" in records
    text = section(design(), "Metrics")
    missing = {r for r in records if f"`{r}" not in text}
    assert not missing, f"add to docs/design.md, Metrics: {sorted(missing)}"
