"""Real Prometheus (Debian's package) scraping a running `imagepipe dev` stack
and the real operator under a short load of corpus images: the operator's
SLO recording rules (its `NAME-slo` groups) and the chart's installation-wide
rules (the rendered PrometheusRule) evaluate to plausible values.

What runs, all on 127.0.0.1:
- `imagepipe dev` as a subprocess: moto's S3+SQS, the ingest, a consumer and the
  webhook deliverer (`imagepipe deliver`), POSTing every job's event to a real
  receiver on loopback that verifies the signatures and accepts them all;
- the real operator loop (kopf's KopfRunner against kmock, as in
  tests/operator) with an ImagePipeline `default/photos` on the dev stack's
  bucket and queue, and a Pod object that points its autoscaler at the dev
  consumer's metrics port. Its OperatorMetrics are served by the operator's
  own MetricsServer bound to loopback (the operator's startup handler would
  bind 0.0.0.0), so the queue gauges come from the real autoscaler reading
  the real SQS queue;
- `prometheus` with scrape and rule evaluation every second. Each target
  carries the labels the chart's PodMonitor gives a pod in a cluster
  (namespace, pod, container and the podTargetLabels), with pod names shaped
  like a Deployment's (`photos-consumer-<hash>-<id>`), which both rule sets
  select on. The rule groups are the shipped ones with their `interval`
  lowered to 1 s; expressions and `for` are untouched.

A warm-up (one good image, one corrupt, one the ingest refuses) comes first,
and Prometheus collects a few samples of it before the measured load: 13
good images, then 2 corrupt ones that pass the ingest's header probe but fail
in the consumer (`corrupt_image`), and 1 that the ingest refuses (422). Every
job counts, the warm-up's first ones included: the roles create their series
at zero on start-up, because rate() cannot see the event that creates a
series (before they did, each pod's first completion and first failure per
code were lost to the SLI).

The pipeline's SLO target is 90 % (the CRD's minimum; the default is 99 %), so
3 failed jobs in 17 burn the budget at 1.76×: the slow-burn ticket must fire
(3d & 6h > 1×) and the page must not (it needs 6× or 14.4×), nor may any
installation-wide alert be active once the queue has drained. Every finished
job's event reaches the receiver: the webhook rules count each as one delivered
attempt, none failed, delivered within seconds, and no poll error.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from imagepipe.operator.handlers import OperatorRuntime
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.operator.metrics import MetricsServer, OperatorMetrics
from imagepipe.operator.monitoring import rule_groups
from imagepipe.slo import ERROR_RATIO_RECORD, SLO_WINDOWS
from tests.chart.helpers import VALUES_ALL, by_kind, documents, load_values, render
from tests.operator.apiserver import PIPELINES, ApiServer, operator_runner
from tests.support.backend import free_port
from tests.support.webhook_receiver import Receiver, new_secret

pytestmark = pytest.mark.system

T = TypeVar("T")
NAMESPACE, NAME = "default", "photos"
PIPELINE_LABEL = f"{NAMESPACE}/{NAME}"  # the `imagepipeline` label of every series about it
SLO_TARGET = 0.9
BUCKET, QUEUE = "imagepipe-dev", "imagepipe-dev-jobs"
# What a Deployment's pods are called in a cluster: NAME-consumer-<template hash>-<suffix>.
PODS = {
    "ingest": f"{NAME}-ingest-6b7c9d8f5-k2x9q",
    "consumer": f"{NAME}-consumer-5d8c7b9f4-h7m2p",
    "operator": "imagepipe-operator-7f9c8d6b5-r4t8w",
    "deliverer": f"{NAME}-deliverer-6c8d9f7b5-w2x4z",
}
OPERATOR_NAMESPACE = "imagepipe-system"
WARM_UP = ("recurser/Landscape_8.jpg", "sharp/truncated.png")
GOOD = tuple(f"recurser/Landscape_{i}.jpg" for i in range(7)) + tuple(
    f"recurser/Portrait_{i}.jpg" for i in range(6)
)
CORRUPT = ("sharp/truncated.jpg", "sharp/truncated.png")  # pass the header probe, fail to decode
REFUSED = "sharp/corrupt-header.jpg"  # the ingest answers 422
REFUSED_SERIES = f'sum(imagepipe_http_requests_total{{pod="{PODS["ingest"]}",status="422"}})'
MIN_SAMPLES = 6
RATED = ("imagepipe_jobs_total", "imagepipe_job_latency_seconds_bucket", "imagepipe_http_requests_total")
SLO_PAGE, SLO_TICKET = "ImagepipeSLOBurnRateFast", "ImagepipeSLOBurnRateSlow"


# --- waiting ---------------------------------------------------------------------


def eventually(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, ValueError, KeyError) as exc:  # not up yet, or not there yet
            last = exc
        if last and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")
        time.sleep(0.2)


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body


# --- processes -------------------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL to its own process group (the dev stack's roles included)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # any role the dev stack left behind


@contextlib.contextmanager
def started(args: list[str], log: Path, cwd: Path, grace: float, **env: str) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield
            assert process.poll() is None, f"{args[0]} exited early: {log.read_text()[-3000:]}"
        except BaseException:
            print(f"--- {log.name} (last lines) ---\n{log.read_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            stop_process(process, grace)


@contextlib.contextmanager
def operator_metrics_server(metrics: OperatorMetrics, port: int) -> Iterator[None]:
    """The operator's MetricsServer on loopback, in an event loop of its own."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = MetricsServer(metrics, host="127.0.0.1", port=port)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def image_pipeline(backend: str) -> dict[str, Any]:
    return {
        "apiVersion": "imagepipe.io/v1alpha1",
        "kind": "ImagePipeline",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "uid-photos", "generation": 1},
        "spec": {
            "image": "imagepipe:0.1.0",
            "backend": {"bucket": BUCKET, "queue": QUEUE, "endpointUrl": backend},
            "slo": {"latencySeconds": 30, "target": SLO_TARGET},
            "scaling": {"maxReplicas": 10},
        },
    }


def consumer_pod(metrics_port: int) -> dict[str, Any]:
    """The dev consumer as the ready Pod the autoscaler scrapes (kmock runs no kubelet)."""
    labels = {
        "app.kubernetes.io/name": "imagepipe",
        "app.kubernetes.io/instance": NAME,
        "app.kubernetes.io/component": "consumer",
    }
    ports = [{"name": "metrics", "containerPort": metrics_port}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PODS["consumer"], "namespace": NAMESPACE, "uid": "pod-1", "labels": labels},
        "spec": {"containers": [{"name": "consumer", "ports": ports}]},
        "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
    }


# --- Prometheus configuration ------------------------------------------------------


def chart_monitoring() -> tuple[list[str], list[dict[str, Any]]]:
    """The PodMonitor's target label names and the PrometheusRule's groups, as the chart renders them."""
    docs = documents(render(load_values(VALUES_ALL)))
    (monitor,) = by_kind(docs, "PodMonitor")
    (rule,) = by_kind(docs, "PrometheusRule")
    names = [re.sub(r"[^A-Za-z0-9_]", "_", label) for label in monitor["spec"]["podTargetLabels"]]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return names, groups


def target_labels(component: str, target_label_names: list[str]) -> dict[str, str]:
    """What the Prometheus operator attaches to a scraped imagepipe pod."""
    pod_labels = {
        "app_kubernetes_io_part_of": "imagepipe",
        "app_kubernetes_io_component": component,
        "app_kubernetes_io_instance": "imagepipe" if component == "operator" else NAME,
    }
    assert set(target_label_names) == set(pod_labels), target_label_names
    return {
        "namespace": OPERATOR_NAMESPACE if component == "operator" else NAMESPACE,
        "pod": PODS[component],
        "container": component,
        **pod_labels,
    }


def write_prometheus_files(
    directory: Path, ports: dict[str, int], target_names: list[str], groups: list[dict[str, Any]]
) -> Path:
    rules = directory / "rules.yaml"
    fast = []
    for group in copy.deepcopy(groups):
        group["interval"] = "1s"  # shipped: 30 s; the expressions and `for` stay as shipped
        fast.append(group)
    rules.write_text(yaml.safe_dump({"groups": fast}, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {
                "job_name": "imagepipe",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{ports[c]}"], "labels": target_labels(c, target_names)}
                    for c in PODS
                ],
            }
        ],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- Prometheus' HTTP API ------------------------------------------------------------


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = json.loads(http_get(f"{self.base}/api/v1/{path}{query}"))
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single sample of an instant query; None when there is none."""
        result = self.query(expr)
        assert len(result) <= 1, (expr, result)
        return float(result[0]["value"][1]) if result else None

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def targets_up(self) -> bool:
        targets = self.api("targets")["activeTargets"]
        return len(targets) == len(PODS) and all(t["health"] == "up" for t in targets)


# --- load ------------------------------------------------------------------------------


async def upload(
    session: aiohttp.ClientSession, api: str, name: str, data: bytes
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name)
    async with session.post(f"{api}/v1/images", data=form) as response:
        return response.status, await response.json()


def upload_all(api: str, paths: list[Path]) -> list[tuple[int, dict[str, Any]]]:
    files = [(p, p.read_bytes()) for p in paths]

    async def go() -> list[tuple[int, dict[str, Any]]]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            return list(await asyncio.gather(*(upload(session, api, p.name, data) for p, data in files)))

    return asyncio.run(go())


def accepted(answers: list[tuple[int, dict[str, Any]]]) -> list[str]:
    assert all(status == 202 for status, _ in answers), answers
    return [body["job_id"] for _, body in answers]


def finished_jobs(api: str, job_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """Every job's status document once none is queued or processing any more."""
    docs = {j: json.loads(http_get(f"{api}/v1/images/{j}")) for j in job_ids}
    return docs if all(d["status"] in ("completed", "failed") for d in docs.values()) else None


def consumer_counts(metrics_url: str) -> dict[str, float]:
    """The consumer's own counters (pipeline `default`): the ground truth of the SLI."""
    counts = {"completed": 0.0, "failed": 0.0, "good": 0.0}
    for family in text_string_to_metric_families(http_get(metrics_url).decode()):
        for sample in family.samples:
            if sample.name == "imagepipe_jobs_total" and sample.labels["outcome"] in ("completed", "failed"):
                counts[sample.labels["outcome"]] += sample.value
            elif sample.name == "imagepipe_job_latency_seconds_bucket" and float(sample.labels["le"]) == 30:
                counts["good"] += sample.value
    return counts


# --- the test --------------------------------------------------------------------------


def test_prometheus_evaluates_the_rules_on_a_live_stack(
    tmp_path: Path, corpus_dir: Path, aws_credentials: None
) -> None:
    prometheus_binary = shutil.which("prometheus")
    assert prometheus_binary, "prometheus is missing: apt-get install prometheus (scripts/bootstrap does)"
    ports = {c: free_port() for c in ("ingest", "backend", "consumer", "operator", "deliverer", "prometheus")}
    backend = f"http://127.0.0.1:{ports['backend']}"
    ingest = f"http://127.0.0.1:{ports['ingest']}"
    consumer_metrics = f"http://127.0.0.1:{ports['consumer']}/metrics"
    body = image_pipeline(backend)
    target_names, chart_groups = chart_monitoring()
    # The operator's NAME-slo groups (build_prometheus_rule's spec.groups), then the chart's.
    groups = rule_groups(parse_imagepipeline(body)) + chart_groups
    config = write_prometheus_files(tmp_path, ports, target_names, groups)
    installation_alerts = {r["alert"] for g in chart_groups for r in g["rules"] if "alert" in r}
    dev = [sys.executable, "-m", "imagepipe.cli", "dev", "--slots", "2", "--bucket", BUCKET, "--queue", QUEUE]
    dev += ["--port", str(ports["ingest"]), "--backend-port", str(ports["backend"])]
    dev += ["--metrics-port", str(ports["consumer"]), "--deliverer-metrics-port", str(ports["deliverer"])]
    prometheus_args = [
        prometheus_binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
        "--log.level=warn",
    ]
    prom = Prometheus(ports["prometheus"])
    runtime = OperatorRuntime(metrics_port=None)  # served on loopback below
    api = ApiServer()
    api.start()
    try:
        assert api.ready.wait(10)
        with (
            Receiver(new_secret()) as receiver,
            started(
                dev,
                tmp_path / "dev.log",
                tmp_path,
                grace=15,
                IMAGEPIPE_SHUTDOWN_GRACE_SECONDS="2",
                IMAGEPIPE_IMAGEPIPELINE=PIPELINE_LABEL,  # as the operator sets it on the pods
                IMAGEPIPE_WEBHOOK_URL=receiver.url,
                IMAGEPIPE_WEBHOOK_SECRET=receiver.secret,
                IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on loopback
            ),
            started(prometheus_args, tmp_path / "prometheus.log", tmp_path, grace=10),
            operator_metrics_server(runtime.metrics, ports["operator"]),
            operator_runner(api, runtime, autoscale_interval=1.0, namespace=NAMESPACE) as operator,
        ):
            eventually(lambda: http_get(f"{ingest}/readyz"), 30, "the dev stack's ingest")
            api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", consumer_pod(ports["consumer"]))
            api.call("POST", PIPELINES, body)
            eventually(prom.targets_up, 20, "Prometheus scraping ingest, consumer, deliverer and operator")

            # Warm-up: scraped for a while before the measured load, so rate()'s extrapolation
            # at the edges of the series stays small.
            # Good before bad, each phase finished before the next: the page fires above 60 %
            # bad (6x the 10 % budget on 6h and 30m), so bad jobs must never lead the count.
            # The cumulative ratio peaks at 1/2, after the warm-up's failure.
            warm = run_to_completion(ingest, corpus_dir, WARM_UP[:1])
            warm |= run_to_completion(ingest, corpus_dir, WARM_UP[1:])
            assert [d["status"] for d in warm.values()] == ["completed", "failed"]
            refuse(ingest, corpus_dir / REFUSED)
            before = eventually(
                lambda: counted(consumer_metrics, completed=1, failed=1),
                10,
                "the consumer counting the warm-up",
            )
            assert before["good"] == 1, before
            # Scraped, and for long enough (≥ 6 samples) that rate()'s extrapolation at the
            # edges of the series stays small against the span of the measured load.
            eventually(
                lambda: (
                    scraped(prom, before)
                    and prom.value(REFUSED_SERIES) == 1
                    and min(prom.value(f"min(count_over_time({m}[5m]))") or 0 for m in RATED) >= MIN_SAMPLES
                ),
                20,
                "Prometheus scraping the warm-up's counters",
            )

            # The measured load: good images first, then the corrupt ones, and one the ingest refuses.
            jobs = run_to_completion(ingest, corpus_dir, GOOD)
            jobs |= run_to_completion(ingest, corpus_dir, CORRUPT)
            refuse(ingest, corpus_dir / REFUSED)
            outcomes = [(d["status"], (d.get("error") or {}).get("code")) for d in jobs.values()]
            assert sorted(outcomes, key=str) == sorted(
                [("completed", None)] * len(GOOD) + [("failed", "corrupt_image")] * len(CORRUPT), key=str
            )

            # Ground truth from the consumer itself: good = done within 30 s, bad = failed.
            want = {"completed": len(GOOD), "failed": len(CORRUPT), "good": len(GOOD)}
            after = eventually(
                lambda: counted(
                    consumer_metrics,
                    completed=before["completed"] + len(GOOD),
                    failed=before["failed"] + len(CORRUPT),
                ),
                10,
                "the consumer counting the load",
            )
            delta = {k: after[k] - before[k] for k in after}
            assert delta == want, delta
            # Over every finished job, the warm-up's included: 3/17.
            expected_error = 1 - after["good"] / (after["completed"] + after["failed"])
            eventually(lambda: scraped(prom, after), 15, "Prometheus scraping the final counters")

            check_slo_rules(prom, expected_error)
            finished = int(after["completed"] + after["failed"])
            check_installation_rules(prom, finished=finished, accepted=len(warm) + len(jobs))
            check_webhook_rules(prom, receiver, events=finished)
            check_alerts(prom, installation_alerts)
        assert operator.exception is None
    finally:
        api.stop()


def run_to_completion(api: str, corpus_dir: Path, paths: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Uploads the files at once; their status documents once every job has finished."""
    ids = accepted(upload_all(api, [corpus_dir / p for p in paths]))
    return eventually(lambda: finished_jobs(api, ids), 40, f"{len(ids)} jobs to finish")


def counted(metrics_url: str, **want: float) -> dict[str, float] | None:
    """The consumer's counts once they reach `want` (a job's status is written before its counter moves)."""
    counts = consumer_counts(metrics_url)
    return counts if all(counts[k] == v for k, v in want.items()) else None


def refuse(api: str, path: Path) -> None:
    ((status, error),) = upload_all(api, [path])
    assert status == 422 and error["error"]["code"] == "corrupt_image", error


def scraped(prom: Prometheus, counts: dict[str, float]) -> bool:
    """Whether Prometheus' latest samples of the consumer's counters equal `counts`."""
    sel = f'namespace="{NAMESPACE}",pod="{PODS["consumer"]}"'
    got = {
        "completed": prom.value(f'sum(imagepipe_jobs_total{{{sel},outcome="completed"}})'),
        "failed": prom.value(f'sum(imagepipe_jobs_total{{{sel},outcome="failed"}})'),
        "good": prom.value(f'sum(imagepipe_job_latency_seconds_bucket{{{sel},le=~"30(\\\\.0)?"}})'),
    }
    return got == counts


def sli_values(prom: Prometheus) -> dict[str, float | None]:
    match = f'{{imagepipeline="{PIPELINE_LABEL}"}}'
    return {w: prom.value(f"{ERROR_RATIO_RECORD.format(window=w)}{match}") for w in SLO_WINDOWS}


def check_slo_rules(prom: Prometheus, expected_error: float) -> None:
    """Every window's error ratio (1 − SLI) is the consumer's: all the data is in the last minute."""

    def converged() -> dict[str, float | None] | None:
        values = sli_values(prom)
        ok = all(v is not None and abs(v - expected_error) < 0.01 for v in values.values())
        return values if ok else None

    try:
        values = eventually(converged, 15, f"the SLI error ratios to reach {expected_error:.4f}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; SLI rules now: {sli_values(prom)}") from None
    budget = 1 - SLO_TARGET
    for window, ratio in values.items():
        assert ratio is not None and 0 <= ratio <= 1, (window, ratio)
        burn_rate = ratio / budget
        assert math.isfinite(burn_rate) and burn_rate >= 0, (window, burn_rate)
        assert abs(burn_rate - expected_error / budget) < 0.1, (window, burn_rate)


def check_installation_rules(prom: Prometheus, finished: int, accepted: int) -> None:
    pipeline = f'{{imagepipeline="{PIPELINE_LABEL}"}}'
    # The rules' [5m] holds the whole load. rate() extrapolates a series' sampled span S (≥ 7 s
    # here) by at most half a scrape interval at its start and the time since its last sample
    # at the end: rate × 300 s lies in [N, N × (S + 1.5) / S].
    window, most = 300, 1.35
    # Jobs finished per second of this ImagePipeline (the consumer's own imagepipeline label).
    # (Each group evaluates once a second at its own offset: poll until it has seen the last scrape.)
    eventually(
        lambda: (
            finished * 0.99
            <= (prom.value(f"imagepipe:jobs_finished:rate5m{pipeline}") or 0) * window
            <= finished * most
        ),
        5,
        f"imagepipe:jobs_finished:rate5m × 300 s ≈ {finished} jobs",
    )
    # Ingest requests: uploads (202), the refused one (422), status polls (200); no 5xx at all.
    # The last uploads can be a second old: poll until the rule has seen them scraped.
    uploads = f'imagepipe:ingest_requests:rate5m{{imagepipeline="{PIPELINE_LABEL}",status="202"}}'
    eventually(
        lambda: accepted * 0.99 <= (prom.value(uploads) or 0) * window <= accepted * most,
        5,
        f"imagepipe:ingest_requests:rate5m{{status=202}} × 300 s ≈ {accepted} uploads",
    )
    by_status = {
        r["metric"]["status"]: float(r["value"][1])
        for r in prom.query(f"imagepipe:ingest_requests:rate5m{pipeline}")
    }
    # Statuses nothing was answered with yet exist at zero.
    assert all(by_status.get(status, 0) > 0 for status in ("200", "202", "422")), by_status
    assert not [s for s, rate in by_status.items() if s.startswith("5") and rate > 0], by_status
    assert accepted * 0.99 <= by_status["202"] * window <= accepted * most, by_status
    assert prom.value(f"imagepipe:ingest_5xx:ratio_rate5m{pipeline}") == 0
    assert prom.value('sum(rate(imagepipe_http_requests_total{app_kubernetes_io_component="ingest"}[1m]))')
    # The operator read the real queue: drained, and nothing in the dead-letter queue.
    eventually(
        lambda: prom.value(f"imagepipe:queue_waiting:messages{pipeline}") == 0,
        10,
        "the operator's queue gauge of the drained queue",
    )
    assert prom.value(f"imagepipe_dlq_messages{pipeline}") == 0
    assert prom.query(f"imagepipe_autoscaler_desired_replicas{pipeline}")
    assert prom.value("count(up == 1)") == len(PODS)


def check_webhook_rules(prom: Prometheus, receiver: Receiver, events: int) -> None:
    """One event per finished job, each accepted at its first attempt: the deliverer's
    series, scraped with the imagepipeline label, give the chart's webhook rules."""
    eventually(lambda: len(receiver.accepted()) == events, 30, f"the receiver accepting {events} events")
    assert all(seen.verified for seen in receiver.requests())
    pipeline = f'imagepipeline="{PIPELINE_LABEL}"'
    delivered = f'imagepipe:webhook_attempts:rate10m{{{pipeline},outcome="delivered"}}'
    # As in check_installation_rules, rate() over a series seconds old extrapolates by at most
    # half a scrape interval at its start and the time since its last sample at the end.
    window, most = 600, 1.35
    eventually(
        lambda: events * 0.99 <= (prom.value(delivered) or 0) * window <= events * most,
        15,
        f"{delivered} × 600 s ≈ {events} deliveries",
    )
    assert prom.value(f"imagepipe:webhook_attempts_failed:ratio_rate10m{{{pipeline}}}") == 0
    age = prom.value(f"imagepipe:webhook_event_age:p95_rate10m{{{pipeline}}}")
    assert age is not None and 0 < age < 60, age  # seconds, with the receiver up
    assert prom.value(f"imagepipe:webhook_poll_errors:ratio_rate10m{{{pipeline}}}") == 0
    # A fixed secret is never re-read: the reloads rule is there, per pod, with nothing failed.
    reloads = (
        f'imagepipe:webhook_secret_reloads:rate10m{{{pipeline},pod="{PODS["deliverer"]}",result="failed"}}'
    )
    assert prom.value(reloads) == 0


def check_alerts(prom: Prometheus, installation_alerts: set[str]) -> None:
    """All rules evaluate without errors; with the queue drained, the 1.76× burn keeps the
    ticket open and nothing else is active. (During the burst the backlog alert may go
    pending: rate5m over a series seconds old divides by 300 s. Its `for: 5m` covers that.)"""

    def settled() -> list[dict[str, Any]] | None:
        rules = prom.rules()
        states = {r["name"]: r["state"] for r in rules if r["type"] == "alerting"}
        calm = all(states[a] == "inactive" for a in installation_alerts)
        return rules if calm and states[SLO_TICKET] == "firing" else None

    try:
        rules = eventually(settled, 10, f"only {SLO_TICKET} (> 1× budget on 3d and 6h) to be active")
    except AssertionError as exc:
        active = {r["name"]: r["alerts"] for r in prom.rules() if r.get("alerts")}
        raise AssertionError(f"{exc}; active alerts: {active}") from None
    problems = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not problems, problems
    names = {r["name"] for r in rules}
    assert installation_alerts | {SLO_PAGE, SLO_TICKET} <= names
    states = {r["name"]: r["state"] for r in rules if r["type"] == "alerting"}
    assert states[SLO_PAGE] == "inactive", states
    # Over the whole run: the page never became active, no installation-wide alert ever fired.
    assert not prom.query(f'ALERTS{{alertname="{SLO_PAGE}"}}[10m]'.join(("count_over_time(", ")")))
    fired = prom.query('count by (alertname) (count_over_time(ALERTS{alertstate="firing"}[10m]))')
    assert {r["metric"]["alertname"] for r in fired} == {SLO_TICKET}, fired
    (ticket,) = prom.query(f'ALERTS{{alertname="{SLO_TICKET}",alertstate="firing"}}')
    labels = ticket["metric"]
    assert (labels["namespace"], labels["imagepipeline"], labels["severity"]) == (
        NAMESPACE,
        PIPELINE_LABEL,
        "ticket",
    )
