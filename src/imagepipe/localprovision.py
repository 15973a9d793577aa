"""Provisioning for a stack on this machine (`imagepipe dev`, the benchmarks,
the tests): the bucket and queues the settings name, created where missing
by the same code the operator uses (imagepipe.provision), once, before any
role starts. Unlike the operator, which reports problems in status and
retries, a local stack refuses to start on the first one (originals public,
a refused or unstored write)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore import UNSIGNED

from imagepipe.aws import S3_CONFIG
from imagepipe.config import Settings
from imagepipe.privacy import originals_problem
from imagepipe.problems import Problem
from imagepipe.provision import Queues, ensure_bucket, ensure_delivery_queue, ensure_queues
from imagepipe.queue_contract import queue_name


class BackendRefused(Exception):
    """Provisioning found a problem the stack must not run with."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"{problem.reason}: {problem.message}")
        self.problem = problem


# A local queue's maxReceiveCount (consumers read it from the redrive policy).
LOCAL_MAX_RECEIVES = 5


def provision(
    settings: Settings, credentials: Mapping[str, str], max_receives: int = LOCAL_MAX_RECEIVES
) -> Queues:
    """Create what `settings` name (the dead-letter queue is QUEUE-dlq) with its
    visibility and `max_receives`, and the webhook delivery queue when webhooks
    are enabled; BackendRefused on the first problem.
    `credentials` holds AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the
    stack's own, never this process's AWS identity."""
    return asyncio.run(provision_backend(settings, credentials, max_receives))


async def provision_backend(settings: Settings, credentials: Mapping[str, str], max_receives: int) -> Queues:
    client: dict[str, Any] = {
        "region_name": settings.region,
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
    }
    # The given keys are the whole identity: the caller's AWS_PROFILE (which may
    # not exist in this machine's config) is not read (no variable for "profile").
    session = get_session({"profile": (None, None, None, None)})
    async with AsyncExitStack() as stack:
        s3 = await stack.enter_async_context(
            session.create_client("s3", endpoint_url=settings.s3_endpoint_url, **client)
        )
        sqs = await stack.enter_async_context(
            session.create_client("sqs", endpoint_url=settings.sqs_endpoint_url, **client)
        )
        anonymous = await stack.enter_async_context(
            session.create_client(
                "s3",
                region_name=settings.region,
                endpoint_url=settings.s3_endpoint_url,
                config=S3_CONFIG.merge(AioConfig(signature_version=UNSIGNED)),
            )
        )
        report = await ensure_bucket(s3, settings.bucket, settings.region, cors_origins=settings.cors_origins)
        public = await originals_problem(s3, anonymous, settings.bucket)
        problems = [*report.problems, *([public] if public else [])]
        if problems:
            raise BackendRefused(problems[0])
        queues = await ensure_queues(
            sqs,
            settings.queue_name,
            f"{settings.queue_name}-dlq",
            max_receives,
            settings.visibility_timeout_seconds,
        )
        if not settings.webhooks_enabled:
            return queues
        return dataclasses.replace(queues, webhook_queue_url=await _delivery_queue(sqs, settings))


async def _delivery_queue(sqs: Any, settings: Settings) -> str:
    url, name = settings.webhook_queue()
    found = await ensure_delivery_queue(sqs, queue_name(name or url), settings.webhook_horizon_seconds)
    if found.problems:
        raise BackendRefused(found.problems[0])
    assert found.url is not None
    return found.url
