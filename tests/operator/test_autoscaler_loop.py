"""The autoscaler in the real operator loop (KopfRunner against kmock) with a
real backlog in the loopback SQS (moto's server), consumer metrics from a
loopback HTTP server that a Pod object points at (or a fake Prometheus API):
the consumer Deployment's replicas are patched up, status carries the
decision, and the operator's metrics port exports the gauges."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kopf.testing import KopfRunner

from imagepipe.aws import open_clients
from imagepipe.config import Settings
from imagepipe.operator.handlers import OperatorRuntime
from imagepipe.operator.main import build_registry
from tests.operator.apiserver import DEPLOYMENTS, PIPELINES, ApiServer, eventually, operator_runner
from tests.operator.test_consumer_metrics import consumer_text
from tests.support.backend import MotoServer, free_port, provision

PODS = "/api/v1/namespaces/default/pods"
BACKLOG = 200


@contextmanager
def http_server(respond: Callable[[str], tuple[str, bytes]]) -> Iterator[int]:
    """A loopback HTTP server answering GETs with `respond(path)` → (content type, body)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            kind, body = respond(self.path)
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def growing_consumer() -> Callable[[str], tuple[str, bytes]]:
    """A consumer that finishes 10 more jobs (2 s latency, 0.5 s of stages) per scrape."""
    scrapes = [0]

    def respond(_: str) -> tuple[str, bytes]:
        scrapes[0] += 1
        return "text/plain", consumer_text(completed=10 * scrapes[0], stage_seconds=0.1).encode()

    return respond


def fake_prometheus(path: str) -> tuple[str, bytes]:
    """Prometheus's query API: 20 finished jobs per window, 0.5 s each, all within 2.5 s."""
    query = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)["query"][0]
    if "by (le)" in query:
        result = [{"metric": {"le": le}, "value": [0, "20"]} for le in ("2.5", "30.0", "+Inf")]
        result.append({"metric": {"le": "1.0"}, "value": [0, "0"]})
    elif "_sum" in query:
        result = [{"metric": {}, "value": [0, "10"]}]
    elif "outcome=" in query:
        result = []
    else:
        result = [{"metric": {}, "value": [0, "20"]}]
    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return "application/json", json.dumps(body).encode()


def fill_queue(settings: Settings, count: int) -> None:
    async def go() -> None:
        async with AsyncExitStack() as stack:
            _, sqs = await open_clients(settings, stack)
            url = (await sqs.get_queue_url(QueueName=settings.queue_name))["QueueUrl"]
            for start in range(0, count, 10):
                entries = [
                    {"Id": str(i), "MessageBody": json.dumps({"v": 1, "n": start + i})} for i in range(10)
                ]
                await sqs.send_message_batch(QueueUrl=url, Entries=entries)

    asyncio.run(go())


@pytest.fixture
def backlog(moto: MotoServer) -> Settings:
    """The pipeline's bucket and queues on the loopback S3+SQS, with BACKLOG messages waiting."""
    moto.reset()
    settings = Settings(
        bucket="photos-imagepipe",
        queue_name="photos-jobs",
        s3_endpoint_url=moto.endpoint,
        sqs_endpoint_url=moto.endpoint,
    )
    provision(settings)
    fill_queue(settings, BACKLOG)
    return settings


def consumer_pod(port: int) -> dict[str, Any]:
    """A ready consumer pod (kmock runs no kubelet) whose metrics port is the loopback server."""
    labels = {
        "app.kubernetes.io/name": "imagepipe",
        "app.kubernetes.io/instance": "photos",
        "app.kubernetes.io/component": "consumer",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "photos-consumer-abc12",
            "namespace": "default",
            "uid": "pod-1",
            "labels": labels,
        },
        "spec": {"containers": [{"name": "consumer", "ports": [{"name": "metrics", "containerPort": port}]}]},
        "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def runner(api: ApiServer, metrics_port: int) -> KopfRunner:
    # The real backend check and queue reading.
    return operator_runner(api, OperatorRuntime(metrics_port=metrics_port), autoscale_interval=0.5)


def pipeline(minimal: dict[str, Any], moto: MotoServer, **scaling: Any) -> dict[str, Any]:
    minimal["spec"]["backend"]["endpointUrl"] = moto.endpoint
    minimal["spec"]["scaling"] = {"maxReplicas": 50, **scaling}
    return minimal


def status_where(api: ApiServer, condition: Callable[[dict[str, Any]], bool]) -> Callable[[], Any]:
    def check() -> Any:
        status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
        return status if condition(status) else None

    return check


def status_with(api: ApiServer, *keys: str) -> Callable[[], Any]:
    return status_where(api, lambda status: all(k in status for k in keys))


def scrape(port: int) -> str:
    """The operator's metrics page; empty while its server is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text
    except urllib.error.URLError:
        return ""


def test_backlog_scales_the_consumers_up(
    api: ApiServer, moto: MotoServer, backlog: Settings, minimal: dict[str, Any]
) -> None:
    metrics_port = free_port()
    with http_server(growing_consumer()) as consumer_port, runner(api, metrics_port) as running:
        api.call("POST", PODS, consumer_pod(consumer_port))
        api.call("POST", PIPELINES, pipeline(minimal, moto))

        def scaled() -> Any:
            found = api.call("GET", f"{DEPLOYMENTS}/photos-consumer") or {}
            return found if found.get("spec", {}).get("replicas", 1) > 1 else None

        eventually(scaled)
        status = eventually(status_with(api, "lastScaling", "p95LatencySeconds", "withinObjective"))
        assert status["backlog"] == BACKLOG
        last = status["lastScaling"]
        assert last["reason"] == "backlog" and 1 <= last["from"] < last["to"] == status["desiredReplicas"]
        # Measured from the pod's metrics: 5 stages of 0.1 s (smoothed from the spec's 0.25 s
        # prior), every job done in 2 s.
        status = eventually(status_where(api, lambda s: s.get("serviceTimeSeconds", 0) > 0.4))
        assert status["withinObjective"] == 1.0 and 1.0 < status["p95LatencySeconds"] <= 2.5
        assert status["autoscaler"]["backlog"] == BACKLOG and status["autoscaler"]["history"]

        text = scrape(metrics_port)
        assert (
            f'imagepipe_queue_messages{{imagepipeline="default/photos",state="visible"}} {BACKLOG}.0' in text
        )
        assert 'imagepipe_dlq_messages{imagepipeline="default/photos"} 0.0' in text
        assert 'imagepipe_autoscaler_desired_replicas{imagepipeline="default/photos",reason=' in text
        assert 'imagepipe_autoscaler_service_time_seconds{imagepipeline="default/photos"}' in text
        assert 'imagepipe_autoscaler_arrival_rate{imagepipeline="default/photos"}' in text
        pipeline_object = api.call("GET", f"{PIPELINES}/photos")
        assert not pipeline_object["metadata"].get("finalizers")
        events = api.call("GET", "/api/v1/namespaces/default/events") or {}
        assert not [e for e in events.get("items", []) if "Timer" in e.get("message", "")]
    assert running.exception is None


def test_prometheus_as_the_source(
    api: ApiServer, moto: MotoServer, backlog: Settings, minimal: dict[str, Any]
) -> None:
    metrics_port = free_port()
    with http_server(fake_prometheus) as prometheus_port, runner(api, metrics_port) as running:
        url = f"http://127.0.0.1:{prometheus_port}"
        api.call("POST", PIPELINES, pipeline(minimal, moto, prometheusUrl=url))
        status = eventually(status_with(api, "desiredReplicas", "withinObjective"))
        assert status["backlog"] == BACKLOG and status["desiredReplicas"] > 1
        assert status["serviceTimeSeconds"] == 0.5 and status["withinObjective"] == 1.0
        assert eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-consumer")["spec"]["replicas"] > 1)
    assert running.exception is None


@pytest.mark.parametrize("api", [True], indirect=True)
def test_keda_engine_reports_but_leaves_replicas(
    api: ApiServer, moto: MotoServer, backlog: Settings, minimal: dict[str, Any]
) -> None:
    with runner(api, free_port()) as running:
        api.call("POST", PIPELINES, pipeline(minimal, moto, engine="keda"))
        status = eventually(status_where(api, lambda s: s.get("desiredReplicas", 1) > 1))
        assert status["backlog"] == BACKLOG and "lastScaling" not in status
        scaled_object = "/apis/keda.sh/v1alpha1/namespaces/default/scaledobjects/photos-consumer"
        assert api.call("GET", scaled_object) is not None
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer")["spec"]["replicas"] == 1
    assert running.exception is None


def test_invalid_spec_counts_a_reconcile_error(api: ApiServer, minimal: dict[str, Any]) -> None:
    metrics_port = free_port()
    minimal["spec"]["scaling"] = {"minReplicas": 5, "maxReplicas": 2}
    with runner(api, metrics_port):
        api.call("POST", PIPELINES, minimal)
        # (kmock replays the object after the LIST: the handler may fail twice)
        line = re.compile(
            r'reconcile_errors_total\{imagepipeline="default/photos",reason="InvalidSpec"\} [1-9]'
        )
        eventually(lambda: line.search(scrape(metrics_port)))


def test_no_handler_adds_a_finalizer() -> None:
    registry = build_registry(OperatorRuntime(metrics_port=None))
    spawning = registry._spawning.get_all_handlers()
    changing = registry._changing.get_all_handlers()
    handlers: list[Any] = [*spawning, *changing]
    assert spawning and not any(h.requires_finalizer for h in handlers)
