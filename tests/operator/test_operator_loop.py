"""The real operator loop (kopf.testing.KopfRunner) against kmock, an API
server on loopback in a background thread (TESTING.md's notes): apply an
ImagePipeline → children with content, labels and owner references; change
the variants → new ConfigMap and config hash, replicas untouched; invalid
spec → Ready=False condition and a Warning event."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import kmock
import kopf
import pytest
from kopf.testing import KopfRunner

from imagepipe.operator.backend import BackendState
from imagepipe.operator.builders import CONFIG_HASH_ANNOTATION
from imagepipe.operator.defaults import Pipeline
from imagepipe.operator.handlers import Context
from imagepipe.operator.main import build_registry

PIPELINES = "/apis/imagepipe.io/v1alpha1/namespaces/default/imagepipelines"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


class ApiServer(threading.Thread):
    """kmock's Kubernetes emulator served on a loopback port from its own event loop."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.url = ""
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        self.loop, self.stopping = asyncio.get_running_loop(), asyncio.Event()
        emulator = kmock.KubernetesEmulator()
        emulator.resources.load_bundled()
        emulator.resources["imagepipe.io/v1alpha1/imagepipelines"] = kmock.ResourceInfo(
            kind="ImagePipeline",
            namespaced=True,
            subresources={"status"},
            verbs={"list", "watch", "get", "patch"},
        )
        emulator.objects["v1/namespaces", None, "default"] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "default", "uid": "ns-default"},
        }
        async with emulator, kmock.Server(emulator, host="127.0.0.1") as server:
            self.url = str(server.url).rstrip("/")
            self.ready.set()
            await self.stopping.wait()

    def stop(self) -> None:
        if self.loop and self.stopping:
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.join(timeout=10)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": kind}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise


@pytest.fixture
def api() -> Iterator[ApiServer]:
    server = ApiServer()
    server.start()
    assert server.ready.wait(10)
    yield server
    server.stop()


async def backend_ready(p: Pipeline) -> BackendState:
    return BackendState(True, "BackendReady", "checked by the test")


def eventually(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def runner(api: ApiServer) -> KopfRunner:
    ctx = Context(check_backend=backend_ready)
    registry = build_registry(ctx, login=lambda **_: kopf.ConnectionInfo(server=api.url))
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.watching.server_timeout = 10
    args = ["run", "--standalone", "--namespace", "default"]
    return KopfRunner(args, registry=registry, settings=settings, timeout=60)


def test_children_and_variants_change(api: ApiServer, minimal: dict[str, Any]) -> None:
    with runner(api):
        api.call("POST", PIPELINES, minimal)
        consumer = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-consumer"))
        ingest = api.call("GET", f"{DEPLOYMENTS}/photos-ingest")
        service = api.call("GET", "/api/v1/namespaces/default/services/photos-ingest")
        configmap = api.call("GET", "/api/v1/namespaces/default/configmaps/photos-config")
        pdb = api.call("GET", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/photos-consumer")
        for child in (consumer, ingest, service, configmap, pdb):
            assert child is not None
            (ref,) = child["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"]) == ("ImagePipeline", "photos", "uid-photos")
            assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "imagepipe-operator"
        assert consumer["spec"]["template"]["spec"]["containers"][0]["args"] == ["consume"]
        status = eventually(
            lambda: (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {}).get("phase")
        )
        assert status == "Ready"

        # The autoscaler scales; the operator must not undo it.
        api.call("PATCH", f"{DEPLOYMENTS}/photos-consumer", {"spec": {"replicas": 7}})
        old_hash = consumer["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        variants = [{"name": "tiny", "width": 64, "height": 64, "method": "cover"}]
        api.call(
            "PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": {"variants": variants}}
        )

        def rolled() -> Any:
            found = api.call("GET", f"{DEPLOYMENTS}/photos-consumer")
            annotations = found["spec"]["template"]["metadata"]["annotations"]
            return found if annotations[CONFIG_HASH_ANNOTATION] != old_hash else None

        consumer = eventually(rolled)
        assert consumer["spec"]["replicas"] == 7
        configmap = api.call("GET", "/api/v1/namespaces/default/configmaps/photos-config")
        assert "tiny" in configmap["data"]["pipelines.yaml"]


def test_invalid_spec_sets_condition_and_event(api: ApiServer, minimal: dict[str, Any]) -> None:
    minimal["spec"]["slo"] = {"latencySeconds": 31}
    with runner(api) as running:
        api.call("POST", PIPELINES, minimal)

        def condition() -> Any:
            status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
            return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)

        ready = eventually(condition)
        assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
        assert "latencySeconds" in ready["message"]
        events = eventually(lambda: (api.call("GET", "/api/v1/namespaces/default/events") or {}).get("items"))
        assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in events)
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer") is None
    assert running.exception is None
