"""What a webhook event costs its producer: building it (event_for +
to_message, CPU) and putting it on the delivery queue (Outbox.emit, wall
time of the SendMessage round trip), against moto's server on loopback.

    .venv/bin/python bench/outbox_emit.py [--builds 2000] [--emits 300]

moto runs in a thread of this process (as in the tests), so the emit figure
includes moto's own handling: an upper bound of what a consumer waits per
job with webhooks on, never asserted."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

import boto3  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry

from imagepipe.aws import open_clients
from imagepipe.config import Settings, load_settings
from imagepipe.loopback import DUMMY_CREDENTIALS, BackendServer
from imagepipe.webhooks.events import event_for, to_message
from imagepipe.webhooks.outbox import Outbox, events_counter

SIZES = (("thumbnail", 150), ("medium", 800), ("large", 1920))


def completed_doc() -> dict[str, Any]:
    """A completed job of the default pipeline's three variants."""
    job = str(uuid.uuid4())

    def variant(name: str, width: int) -> dict[str, Any]:
        url = f"http://s3.test/bucket/variants/{job}/abc123def456/{name}.webp"
        crop = {"x": 0, "y": 0, "width": width, "height": width}
        return {"url": url, "width": width, "height": width, "format": "webp", "bytes": 40_000, "crop": crop}

    return {
        "job_id": job,
        "status": "completed",
        "completed_at": "2026-12-02T08:00:00.000000+00:00",
        "owner": None,
        "source": {"format": "jpeg", "width": 4000, "height": 3000, "bytes": 3_000_000},
        "variants": {name: {**variant(name, width), "method": "fit"} for name, width in SIZES},
        "timings": {"download": 0.01, "decode": 0.1, "resize": 0.05, "encode": 0.2, "upload": 0.02},
    }


async def emit_times(settings: Settings, doc: dict[str, Any], count: int) -> list[float]:
    async with AsyncExitStack() as stack:
        _, sqs = await open_clients(settings, stack)
        outbox = Outbox(sqs, settings, events_counter(CollectorRegistry()))
        await outbox.open()
        times = []
        for _ in range(count):
            started = time.perf_counter()
            await outbox.emit(doc)
            times.append(time.perf_counter() - started)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=2000)
    parser.add_argument("--emits", type=int, default=300)
    args = parser.parse_args()
    server = BackendServer().start()
    try:
        os.environ.update({**DUMMY_CREDENTIALS, "AWS_REGION": "us-east-1"})
        env = {
            "IMAGEPIPE_AWS_ENDPOINT_URL": server.endpoint,
            "IMAGEPIPE_BUCKET": "bench",
            "IMAGEPIPE_QUEUE_NAME": "bench-jobs",
            "IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.test/imagepipe",
        }
        settings = load_settings(env)
        boto3.client("sqs", region_name=settings.region, endpoint_url=server.endpoint).create_queue(
            QueueName="bench-jobs-webhooks"
        )
        doc = completed_doc()
        builds = []
        for _ in range(args.builds):
            started = time.process_time()
            event = event_for(doc, settings.variant_base_url())
            assert event is not None
            message = to_message(event)
            builds.append(time.process_time() - started)
        emits = sorted(asyncio.run(emit_times(settings, doc, args.emits)))
    finally:
        server.stop()
    per_build = statistics.mean(builds) * 1e6
    print(f"build: {per_build:.0f} us CPU per event ({len(message)} bytes), {args.builds} runs")
    median, p90 = statistics.median(emits) * 1e3, emits[int(0.9 * len(emits))] * 1e3
    print(f"emit: median {median:.2f} ms, p90 {p90:.2f} ms wall, {args.emits} runs")


if __name__ == "__main__":
    main()
