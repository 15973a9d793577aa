"""kmock's Kubernetes emulator on a loopback port in a background thread
(docs/testing.md), and helpers for tests that run the real operator loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import kmock
import kopf
from kmock._internal import parsing as kmock_parsing
from kopf.testing import KopfRunner

from imagepipe.operator.backend import BackendState, QueueDepth
from imagepipe.operator.handlers import OperatorRuntime
from imagepipe.operator.imagepipeline import ImagePipeline
from imagepipe.operator.main import build_registry

PIPELINES = "/apis/imagepipe.io/v1alpha1/namespaces/default/imagepipelines"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def _parse_path_with_namespaces(path: str) -> kmock_parsing.ParsedPath:
    """kmock 0.8 reads `/api/v1/namespaces[/NAME]` as a namespaced path with no
    resource (and answers 500), while kopf lists namespaces at start-up: route
    it to the cluster-scoped `namespaces` resource, as a real API server does."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) in (3, 4):
        name = parts[3] if len(parts) == 4 else None
        return kmock_parsing.ParsedPath("", "v1", "namespaces", None, name, None)
    return _KMOCK_PARSE_PATH(path)


_KMOCK_PARSE_PATH = kmock_parsing.parse_path
kmock_parsing.parse_path = _parse_path_with_namespaces


class ApiServer(threading.Thread):
    """kmock's Kubernetes emulator served on a loopback port from its own event loop."""

    def __init__(self, keda: bool = False) -> None:
        super().__init__(daemon=True)
        self.keda = keda  # serve KEDA's ScaledObject API as if KEDA were installed
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
        if self.keda:
            for plural, kind in (
                ("scaledobjects", "ScaledObject"),
                ("triggerauthentications", "TriggerAuthentication"),
            ):
                emulator.resources[f"keda.sh/v1alpha1/{plural}"] = kmock.ResourceInfo(
                    kind=kind, namespaced=True
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


async def empty_queue(p: ImagePipeline) -> QueueDepth:
    return QueueDepth(0, 0, 0, 0)


async def backend_ready(p: ImagePipeline) -> BackendState:
    return BackendState(True, "BackendReady", "checked by the test")


def eventually(check: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def operator_runner(
    api: ApiServer, runtime: OperatorRuntime, autoscale_interval: float, namespace: str = "default"
) -> KopfRunner:
    """The real operator loop (its own registry) against the emulator, one namespace."""
    login = lambda **_: kopf.ConnectionInfo(server=api.url)  # noqa: E731
    registry = build_registry(runtime, login=login, autoscale_interval=autoscale_interval)
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True  # kmock cannot list namespaces
    settings.watching.server_timeout = 10
    args = ["run", "--standalone", "--namespace", namespace]
    return KopfRunner(args, registry=registry, settings=settings, timeout=60)
