"""S3 and SQS clients through aiobotocore: one of each per process.

Region and credentials come the standard AWS way (environment, profile, web
identity, instance role); endpoints from the IMAGEPIPE_* settings, so that
any server that does what docs/backends.md lists works the same.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore import UNSIGNED

from imagepipe.config import Settings

# Short timeouts: a stalled backend must surface as an error we can answer
# (503) or retry, not hang a request. Retries are ours, not botocore's.
CLIENT_CONFIG = AioConfig(
    connect_timeout=3,
    read_timeout=10,
    retries={"max_attempts": 2, "mode": "standard"},
    max_pool_connections=50,
)
# Bodies are not SHA-256 signed: their integrity is carried by the CRC32
# checksum botocore sends with every upload. Over https (AWS) that is
# botocore's default already; over plain http (an in-cluster server, loopback) it
# saves hashing every original and variant twice (2-3 ms of CPU per MB).
S3_CONFIG = CLIENT_CONFIG.merge(AioConfig(s3={"payload_signing_enabled": False}))
# Long polls hold the connection for up to 20 s.
SQS_CONFIG = CLIENT_CONFIG.merge(AioConfig(read_timeout=30))


@dataclass
class Backends:
    s3: Any
    sqs: Any
    queue_url: str
    bucket: str


async def open_clients(settings: Settings, stack: AsyncExitStack) -> tuple[Any, Any]:
    """The S3 and SQS clients for these settings, closed with `stack`."""
    session = get_session()
    s3 = await stack.enter_async_context(
        session.create_client(
            "s3", region_name=settings.region, endpoint_url=settings.s3_endpoint_url, config=S3_CONFIG
        )
    )
    sqs = await stack.enter_async_context(
        session.create_client(
            "sqs", region_name=settings.region, endpoint_url=settings.sqs_endpoint_url, config=SQS_CONFIG
        )
    )
    return s3, sqs


async def open_anonymous_s3(settings: Settings, stack: AsyncExitStack) -> Any:
    """An S3 client that signs nothing: what anyone on the internet can do."""
    config = S3_CONFIG.merge(AioConfig(signature_version=UNSIGNED))
    return await stack.enter_async_context(
        get_session().create_client(
            "s3", region_name=settings.region, endpoint_url=settings.s3_endpoint_url, config=config
        )
    )


async def open_backends(settings: Settings, stack: AsyncExitStack) -> Backends:
    """Open the clients (closed with `stack`) and resolve the queue URL."""
    s3, sqs = await open_clients(settings, stack)
    queue_url = settings.queue_url
    if not queue_url:
        queue_url = (await sqs.get_queue_url(QueueName=settings.queue_name))["QueueUrl"]
    return Backends(s3=s3, sqs=sqs, queue_url=queue_url, bucket=settings.bucket)
