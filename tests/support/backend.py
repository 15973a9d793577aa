"""The core's loopback S3+SQS server (imagepipe.loopback) for tests: one per
session, reset between tests, and provisioning with test-sized queues."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from imagepipe.config import Settings
from imagepipe.localprovision import provision as provision_backends
from imagepipe.loopback import BackendServer, free_port, reset_moto
from imagepipe.provision import Queues

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
__all__ = ["CREDENTIALS", "MotoServer", "free_port", "moto_server", "provision"]


@dataclass
class MotoServer:
    endpoint: str

    def reset(self) -> None:
        reset_moto(self.endpoint)


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    server = BackendServer().start()
    try:
        yield MotoServer(server.endpoint)
    finally:
        server.stop()


def provision(settings: Settings, max_receives: int = 5, visibility_timeout: int = 30) -> Queues:
    """Create the bucket and queues the settings name, with these queue limits."""
    sized = dataclasses.replace(settings, visibility_timeout_seconds=visibility_timeout)
    return provision_backends(sized, CREDENTIALS, max_receives)
