"""A real S3+SQS server (moto's server mode) on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

from imagepipe.aws import open_clients
from imagepipe.config import Settings
from imagepipe.provision import Queues, ensure_bucket, ensure_queues

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    endpoint: str

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield MotoServer(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def provision(settings: Settings, max_receives: int = 5, visibility_timeout: int = 30) -> Queues:
    """Create the bucket and queues the settings name (synchronously, for fixtures)."""

    async def go() -> Queues:
        async with AsyncExitStack() as stack:
            s3, sqs = await open_clients(settings, stack)
            await ensure_bucket(s3, settings.bucket, settings.region)
            return await ensure_queues(
                sqs, settings.queue_name, f"{settings.queue_name}-dlq", max_receives, visibility_timeout
            )

    return asyncio.run(go())
