"""One message's lifecycle: parse → skip if done → processing → download →
render → upload → completed → delete, and what each failure leads to.

- A bad image (a permanent core error) or a missing original fails the job
  at once and the message is deleted: retrying cannot help.
- Anything else is retried: each S3 call in-process with backoff (under the
  heartbeat), then the message is handed back with a growing visibility.
  On the last receive the job is marked failed (`retries_exhausted`) first,
  and the redrive policy moves the message to the dead-letter queue.
- An unparseable message is handed back untouched until the redrive policy
  moves it to the dead-letter queue; an unknown version waits for a newer
  consumer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from imagepipe.aws import Backends
from imagepipe.config import Settings
from imagepipe.context import Limits, RenderedVariant
from imagepipe.errors import ImagePipeError
from imagepipe.jobs import (
    COMPLETED,
    BadMessage,
    JobMessage,
    StatusDoc,
    UnknownVersion,
    completed_status,
    failed_status,
    parse_message,
    processing_status,
)
from imagepipe.logs import job_context

from . import store
from .heartbeat import Heartbeat
from .messages import Deleter, Received, set_visibility
from .metrics import Metrics
from .pool import RenderPool
from .retry import backoff, is_last_receive, is_transient, release_visibility, retrying

log = logging.getLogger(__name__)


@dataclass
class JobEnv:
    """What every job of one consumer shares."""

    backends: Backends
    settings: Settings
    pool: RenderPool
    metrics: Metrics
    deleter: Deleter
    # First visibility of a handed-back message; doubles with each receive.
    release_base_seconds: int
    # How long the last attempt keeps trying to record `retries_exhausted`.
    exhausted_budget_seconds: float = 60.0

    @property
    def limits(self) -> Limits:
        return Limits(self.settings.max_pixels, self.settings.max_decoded_pixels)


async def handle(env: JobEnv, message: Received) -> None:
    """Process one received message to its end; never raises."""
    try:
        job = parse_message(message.body)
    except UnknownVersion as exc:
        await _leave_for_newer_consumer(env, message, exc)
        return
    except BadMessage as exc:
        await _leave_for_dead_letters(env, message, exc)
        return
    with job_context(job.job_id, message.trace_id):
        if message.sent_at is not None:
            env.metrics.queue_wait.labels(job.pipeline).observe(
                max(0.0, message.received_at - message.sent_at)
            )
        await Job(env, job, message).run()


async def _leave_for_newer_consumer(env: JobEnv, message: Received, exc: UnknownVersion) -> None:
    seconds = release_visibility(message.receive_count, max(60, env.release_base_seconds))
    log.warning(
        "message from a newer producer; leaving it for a newer consumer",
        extra={"message_id": message.message_id, "reason": str(exc), "visibility": seconds},
    )
    env.metrics.retried.labels("unknown_version").inc()
    await set_visibility(env.backends.sqs, env.backends.queue_url, message, seconds)


async def _leave_for_dead_letters(env: JobEnv, message: Received, exc: BadMessage) -> None:
    seconds = release_visibility(message.receive_count, 1)
    log.error(
        "unparseable message; the redrive policy will move it to the dead-letter queue",
        extra={"message_id": message.message_id, "reason": str(exc), "receive_count": message.receive_count},
    )
    env.metrics.retried.labels("bad_message").inc()
    await set_visibility(env.backends.sqs, env.backends.queue_url, message, seconds)


class Job:
    def __init__(self, env: JobEnv, job: JobMessage, message: Received) -> None:
        self.env, self.job, self.message = env, job, message
        self.b, self.m = env.backends, env.metrics
        self.doc: StatusDoc | None = None
        self.timings: dict[str, float] = {}
        self.heartbeat = Heartbeat(
            self.b.sqs, self.b.queue_url, message, env.settings.visibility_timeout_seconds
        )

    async def run(self) -> None:
        async with self.heartbeat:
            try:
                await self.process()
            except asyncio.CancelledError:
                await self.release(0, "shutdown")
                raise
            except Exception as exc:
                await self.settle(exc)

    async def settle(self, exc: Exception) -> None:
        """Decide what a failure leads to; never raises."""
        if isinstance(exc, ImagePipeError) and exc.permanent:
            try:
                await self.fail(exc.code, exc.message)
                return
            except Exception as again:
                exc = again
        await self.retry_later(exc)

    async def process(self) -> None:
        self.doc = await retrying(self.read_status)
        if self.doc.get("status") == COMPLETED:
            log.info("job already completed; dropping the duplicate message")
            await self.delete()
            self.m.jobs.labels(self.job.pipeline, "duplicate", "none").inc()
            return
        self.m.in_flight.inc()
        try:
            await self.render_and_store()
        finally:
            self.m.in_flight.dec()

    async def render_and_store(self) -> None:
        assert self.doc is not None
        await retrying(lambda: self.put_status(processing_status(self.doc or {}, self.message.receive_count)))
        log.info("job started", extra={"attempt": self.message.receive_count})
        data = await self.timed("download", lambda: retrying(self.download))
        rendered = await self.env.pool.render(data, self.job, self.env.limits, self.deadline())
        for stage, seconds in rendered.timings.items():
            self.timings[stage] = seconds
            self.m.stage_duration.labels(stage).observe(seconds)
        await self.timed("upload", lambda: self.upload(rendered.variants))
        doc = completed_status(
            {**self.doc, "source": asdict(rendered.source)},
            rendered.variants,
            self.job.spec,
            self.env.settings.variant_base_url(),
            self.timings,
            rendered.placeholder,
        )
        await retrying(lambda: self.put_status(doc))
        # Enqueue → completed: the moment the client can see the result.
        latency = time.time() - _epoch(self.job.enqueued_at, self.message)
        await self.delete()
        self.m.job_latency.labels(self.job.pipeline).observe(latency)
        self.m.jobs.labels(self.job.pipeline, "completed", "none").inc()
        late = latency > self.env.settings.objective_seconds
        if late:
            self.m.deadline_misses.labels(self.job.pipeline).inc()
        log.info(
            "job completed",
            extra={"latency_seconds": round(latency, 3), "late": late, "late_at": rendered.late_at},
        )

    # --- failures -----------------------------------------------------------

    async def fail(self, code: str, reason: str) -> None:
        """A failure that retrying cannot mend: record it and drop the message."""
        log.warning("job failed", extra={"code": code, "reason": reason})
        await retrying(lambda: self.write_failed(code, reason))
        await self.delete()
        self.m.jobs.labels(self.job.pipeline, "failed", code).inc()

    async def retry_later(self, exc: BaseException) -> None:
        code = (
            exc.code
            if isinstance(exc, ImagePipeError)
            else ("backend_unavailable" if is_transient(exc) else "internal")
        )
        count, limit = self.message.receive_count, self.env.settings.max_receives
        if not is_last_receive(count, limit):
            seconds = release_visibility(count, self.env.release_base_seconds)
            log.warning(
                "job attempt failed; handing the message back",
                extra={"code": code, "error": repr(exc), "attempt": count, "visibility": seconds},
            )
            await self.release(seconds, code)
            return
        reason = f"gave up after {count} attempts; last error: {exc!r}"
        log.error("job failed: retries exhausted", extra={"code": code, "error": repr(exc), "attempt": count})
        if await self.record_exhausted(reason):
            self.m.jobs.labels(self.job.pipeline, "failed", "retries_exhausted").inc()
        # The next receive moves the message to the dead-letter queue.
        await self.release(0, "retries_exhausted")

    async def record_exhausted(self, reason: str) -> bool:
        """Keep trying (under the heartbeat) to record the failure before the message goes."""
        give_up = time.monotonic() + self.env.exhausted_budget_seconds
        attempt = 0
        while True:
            try:
                await self.write_failed("retries_exhausted", reason)
                return True
            except Exception as exc:
                if time.monotonic() >= give_up:
                    log.error("could not record retries_exhausted", extra={"error": repr(exc)})
                    return False
                await asyncio.sleep(backoff(attempt, 0.5, 5.0))
                attempt += 1

    async def release(self, seconds: int, reason: str) -> None:
        await self.heartbeat.stop()
        self.m.retried.labels(reason).inc()
        await set_visibility(self.b.sqs, self.b.queue_url, self.message, seconds)

    async def write_failed(self, code: str, reason: str) -> None:
        doc = self.doc if self.doc is not None else await self.read_status()
        if doc.get("status") == COMPLETED:
            return
        await self.put_status(failed_status(doc, code, reason))

    # --- backend calls ------------------------------------------------------

    async def read_status(self) -> StatusDoc:
        return await store.read_status(self.b, self.job)

    async def put_status(self, doc: StatusDoc) -> None:
        await store.put_status(self.b, self.job.job_id, doc)
        self.doc = doc

    async def download(self) -> bytes:
        return await store.download(self.b, self.job)

    async def upload(self, variants: list[RenderedVariant]) -> None:
        await asyncio.gather(
            *(retrying(functools.partial(store.put_variant, self.b, self.job, v)) for v in variants)
        )

    async def delete(self) -> None:
        if await self.env.deleter.delete(self.message):
            self.m.deleted.inc()

    # --- helpers ------------------------------------------------------------

    async def timed(self, stage: str, operation: Any) -> Any:
        started = time.perf_counter()
        result = await operation()
        seconds = time.perf_counter() - started
        self.timings[stage] = seconds
        self.m.stage_duration.labels(stage).observe(seconds)
        return result

    def deadline(self) -> float:
        """time.monotonic() by which the job meets its objective, counted from enqueue."""
        age = time.time() - _epoch(self.job.enqueued_at, self.message)
        return time.monotonic() + self.env.settings.objective_seconds - age


def _epoch(iso: str, message: Received) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return message.sent_at or message.received_at
