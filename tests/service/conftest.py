"""Fixtures for the ingest tests: a real moto S3+SQS server, provisioned per
test, and the ingest application served on a loopback port from a thread."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from aiohttp import web

from imagepipe.config import Settings, load_settings
from imagepipe.service.app import create_app
from tests.support.backend import CREDENTIALS, MotoServer, free_port, provision

BUCKET = "imagepipe-ingest-test"
QUEUE = "imagepipe-ingest-jobs"
KEYS = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-0123456789abcdef0"}


def backend_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {
        **CREDENTIALS,
        "IMAGEPIPE_AWS_ENDPOINT_URL": endpoint,
        "IMAGEPIPE_BUCKET": BUCKET,
        "IMAGEPIPE_QUEUE_NAME": QUEUE,
        "IMAGEPIPE_PUBLIC_URL": "https://cdn.example.test",
        **extra,
    }


@pytest.fixture
def settings(moto: MotoServer) -> Settings:
    """Fresh bucket and queues on the moto server; settings with the queue URL resolved."""
    moto.reset()
    base = load_settings(backend_env(moto.endpoint))
    queues = provision(base)
    return dataclasses.replace(base, queue_url=queues.queue_url)


class Served:
    """An aiohttp application on a loopback port, run by a thread's own loop."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(app, shutdown_timeout=5)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> Served:
        self.thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


ServiceFactory = Callable[..., Served]


@pytest.fixture
def make_service(settings: Settings) -> Iterator[ServiceFactory]:
    """Build and serve an ingest app; keyword arguments override settings fields."""
    served: list[Served] = []

    def make(backend_timeout: float = 5.0, **overrides: Any) -> Served:
        app = create_app(dataclasses.replace(settings, **overrides), backend_timeout=backend_timeout)
        service = Served(app).start()
        served.append(service)
        return service

    yield make
    for service in served:
        service.stop()


@pytest.fixture
def service(make_service: ServiceFactory) -> Served:
    """The ingest with authentication off and no CORS origins."""
    return make_service()


@pytest.fixture
def s3(settings: Settings) -> Any:
    return boto3.client("s3", region_name=settings.region, endpoint_url=settings.s3_endpoint_url)


@pytest.fixture
def sqs(settings: Settings) -> Any:
    return boto3.client("sqs", region_name=settings.region, endpoint_url=settings.sqs_endpoint_url)


@pytest.fixture(scope="session")
def images(corpus_dir: Path) -> dict[str, bytes]:
    """One image of each accepted format from the shared corpus."""
    return {
        "jpeg": (corpus_dir / "sharp" / "320x240.jpg").read_bytes(),
        "png": (corpus_dir / "libvips" / "sample.png").read_bytes(),
        "webp": (corpus_dir / "sharp" / "4.webp").read_bytes(),
    }


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every visible message on the queue (short polls until empty)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
