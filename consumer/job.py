"""One message's lifecycle: parse → start (processing) → download → render →
upload → completed → delete. Every status change is a transition of the job
store (compare-and-swap); what a failure leads to is decided by the pure
rules of rules.py.

A refused transition means another party decided first: a job `completed`
by another worker, or `failed`, is left exactly as it is; a job `deleted`
(or never created) loses the variants this worker wrote. Either way the
message is deleted. The job is checked once more just before the uploads, so
a deletion during rendering writes nothing.

Webhook events: once Complete or Fail is durable, its event goes to the
delivery queue before the message is deleted; a job found already
`completed` or `failed` emits its current document's event again (the
worker that made it final may have died before emitting). An event that
cannot be emitted hands the message back instead of deleting it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar

from imagepipe.context import RenderedVariant
from imagepipe.errors import ImagePipeError
from imagepipe.jobs import BadMessage, JobMessage, UnknownVersion, now_iso, parse_message
from imagepipe.jobstore.documents import variant_entries
from imagepipe.jobstore.transitions import (
    COMPLETED,
    DELETED,
    MISSING,
    Complete,
    Fail,
    Refused,
    Start,
    state_of,
)
from imagepipe.logs import job_context

from .emission import FINAL, Emission
from .env import JobEnv
from .heartbeat import Heartbeat
from .messages import Received, set_visibility
from .retry import backoff, is_transient, retrying
from .rules import RETRIES_EXHAUSTED, Action, Trouble

log = logging.getLogger(__name__)
T = TypeVar("T")
GONE = frozenset({DELETED, MISSING})


async def handle(env: JobEnv, message: Received) -> None:
    """Process one received message to its end; never raises."""
    try:
        job = parse_message(message.body)
    except UnknownVersion as exc:
        await _leave(env, message, Trouble.NEWER_VERSION, exc)
        return
    except BadMessage as exc:
        await _leave(env, message, Trouble.BAD_MESSAGE, exc)
        return
    with job_context(job.job_id, message.trace_id):
        if message.sent_at is not None:
            env.metrics.queue_wait.labels(job.pipeline).observe(
                max(0.0, message.received_at - message.sent_at)
            )
        await Job(env, job, message).run()


LEFT_BECAUSE = {
    Trouble.NEWER_VERSION: "message from a newer producer; leaving it for a newer consumer",
    Trouble.BAD_MESSAGE: "unparseable message; the redrive policy will move it to the dead-letter queue",
}


async def _leave(env: JobEnv, message: Received, trouble: Trouble, exc: Exception) -> None:
    """A message that is no job of ours to process: hand it back untouched."""
    action = env.rules(trouble, message, shutting_down=False)
    log.warning(
        LEFT_BECAUSE[trouble],
        extra={
            "message_id": message.message_id,
            "reason": str(exc),
            "receive_count": message.receive_count,
            "visibility": action.visibility,
        },
    )
    env.metrics.retried.labels("unknown_version" if trouble is Trouble.NEWER_VERSION else trouble.value).inc()
    await set_visibility(env.backends.sqs, env.backends.queue_url, message, action.visibility)


class Job:
    def __init__(self, env: JobEnv, job: JobMessage, message: Received) -> None:
        self.env, self.job, self.message = env, job, message
        self.store, self.m = env.store, env.metrics
        self.timings: dict[str, float] = {}
        self.heartbeat = Heartbeat(
            env.backends.sqs, env.backends.queue_url, message, env.settings.visibility_timeout_seconds
        )
        self.events = Emission(env, job.job_id, self.event_unsent)

    async def run(self) -> None:
        async with self.heartbeat:
            try:
                await self.process()
            except asyncio.CancelledError:
                # Cut off by a shutdown: record the failure (on the last receive) and hand the
                # message back, then end cancelled. Until uncancelled, every asyncio.timeout
                # below (ours, aiohttp's) would treat the pending cancellation as its own.
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                await self.carry_out(self.env.rules(Trouble.INTERRUPTED, self.message, True), "shutdown")
                raise
            except Exception as exc:
                await self.settle(exc)

    async def process(self) -> None:
        started = await retrying(
            lambda: self.store.apply(self.job.job_id, Start(self.message.receive_count, now_iso()))
        )
        if isinstance(started, Refused):
            await self.refused(started)
            return
        self.m.in_flight.inc()
        try:
            await self.render_and_store(started.get("source"))
        finally:
            self.m.in_flight.dec()

    async def render_and_store(self, source: dict[str, Any] | None) -> None:
        log.info("job started", extra={"attempt": self.message.receive_count})
        data = await self.timed(
            "download", lambda: retrying(lambda: self.store.get_original(self.job.job_id))
        )
        rendered = await self.env.pool.render(data, self.job, self.env.limits, self.deadline())
        for stage, seconds in rendered.timings.items():
            self.timings[stage] = seconds
            self.m.stage_duration.labels(stage).observe(seconds)
        current = await retrying(lambda: self.store.read(self.job.job_id))
        now = state_of(current.doc)
        if now in GONE:
            await self.refused(Refused(now))
            return
        await self.timed("upload", lambda: self.upload(rendered.variants))
        variants = variant_entries(
            self.job.job_id, self.job.spec, rendered.variants, self.env.settings.variant_base_url()
        )
        placeholder = asdict(rendered.placeholder) if rendered.placeholder else None
        event = Complete(asdict(rendered.source), variants, self.timings, now_iso(), placeholder)
        # Decided on the version read before the uploads: one read fewer per job.
        done = await retrying(lambda: self.store.apply(self.job.job_id, event, current))
        if isinstance(done, Refused):
            await self.refused(done)
            return
        # Enqueue → completed: the moment the client can see the result.
        latency = time.time() - _epoch(self.job.enqueued_at, self.message)
        self.m.job_latency.labels(self.job.pipeline).observe(latency)
        self.m.jobs.labels(self.job.pipeline, "completed", "none").inc()
        late = latency > self.env.settings.objective_seconds
        if late:
            self.m.deadline_misses.labels(self.job.pipeline).inc()
        log.info(
            "job completed",
            extra={"latency_seconds": round(latency, 3), "late": late, "late_at": rendered.late_at},
        )
        if await self.events.emitted(done):
            await self.delete()

    async def refused(self, refusal: Refused) -> None:
        """Another party decided first: stop, clean up only if the job is gone, drop the message."""
        if refusal.reason in GONE:
            log.info("job deleted; removing what this attempt wrote", extra={"state": refusal.reason})
            await retrying(lambda: self.store.remove_variants(self.job.job_id, self.job.spec))
            self.m.jobs.labels(self.job.pipeline, "deleted", "none").inc()
        else:
            log.info("job already finished elsewhere; dropping the message", extra={"state": refusal.reason})
            outcome = "duplicate" if refusal.reason == COMPLETED else "refused"
            self.m.jobs.labels(self.job.pipeline, outcome, "none").inc()
            if refusal.reason in FINAL and not await self.events.reemitted():
                return
        await self.delete()

    # --- failures -----------------------------------------------------------

    async def settle(self, exc: Exception) -> None:
        """Carry out the failure rules for `exc`; never raises."""
        permanent = isinstance(exc, ImagePipeError) and exc.permanent
        code = (
            exc.code
            if isinstance(exc, ImagePipeError)
            else ("backend_unavailable" if is_transient(exc) else "internal")
        )
        action = self.env.rules(
            Trouble.PERMANENT if permanent else Trouble.TRANSIENT, self.message, False, code
        )
        log_failure(action, code, exc, self.message.receive_count)
        try:
            await self.carry_out(action, code, reason=str(exc))
        except Exception as again:
            # Recording the permanent failure failed too: retry the whole job later.
            log.warning("could not record the failure", extra={"error": repr(again)})
            await self.carry_out(self.env.rules(Trouble.TRANSIENT, self.message, False), code)

    async def carry_out(self, action: Action, code: str, reason: str = "") -> None:
        if action.fail_with is not None:
            outcome = await self.record_failure(action.fail_with, reason or code)
            if isinstance(outcome, Refused):
                await self.refused(outcome)
                return
            if outcome is not None:
                self.m.jobs.labels(self.job.pipeline, "failed", action.fail_with).inc()
                if not await self.events.emitted(outcome):
                    return
        if action.delete:
            await self.delete()
            return
        await self.hand_back(code, action.visibility)

    async def record_failure(self, code: str, reason: str) -> dict[str, Any] | Refused | None:
        """Fail the job; a last attempt keeps trying (under the heartbeat) before its message goes.

        None when that could not be recorded in time (the dead-letter sweeper will).
        """
        if code != RETRIES_EXHAUSTED:
            fail = Fail(code, reason, now_iso())
            return await retrying(lambda: self.store.apply(self.job.job_id, fail))
        count = self.message.receive_count
        fail = Fail(code, f"gave up after {count} attempts; last error: {reason}", now_iso())
        give_up, attempt = time.monotonic() + self.env.exhausted_budget_seconds, 0
        while True:
            try:
                return await self.store.apply(self.job.job_id, fail)
            except Exception as exc:
                if time.monotonic() >= give_up:
                    log.error("could not record retries_exhausted", extra={"error": repr(exc)})
                    return None
                await asyncio.sleep(backoff(attempt, 0.5, 5.0))
                attempt += 1

    # --- helpers ------------------------------------------------------------

    async def upload(self, variants: list[RenderedVariant]) -> None:
        put = functools.partial(self.store.put_variant, self.job.job_id, self.job.spec)
        await asyncio.gather(*(retrying(functools.partial(put, v)) for v in variants))

    async def event_unsent(self) -> None:
        """The job is final but its event is not on the delivery queue: hand the message back."""
        action = self.env.rules(Trouble.EVENT_UNSENT, self.message, shutting_down=False)
        await self.hand_back(Trouble.EVENT_UNSENT.value, action.visibility)

    async def hand_back(self, reason: str, visibility: int) -> None:
        await self.heartbeat.stop()
        self.m.retried.labels(reason).inc()
        await set_visibility(self.env.backends.sqs, self.env.backends.queue_url, self.message, visibility)

    async def delete(self) -> None:
        if await self.env.deleter.delete(self.message):
            self.m.deleted.inc()

    async def timed(self, stage: str, operation: Callable[[], Awaitable[T]]) -> T:
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


def log_failure(action: Action, code: str, exc: Exception, attempt: int) -> None:
    fields = {"code": code, "error": repr(exc), "attempt": attempt}
    if action.fail_with == RETRIES_EXHAUSTED:
        log.error("job failed: retries exhausted", extra=fields)
    elif action.fail_with is not None:
        log.warning("job failed", extra={**fields, "reason": str(exc)})
    else:
        log.warning(
            "job attempt failed; handing the message back", extra={**fields, "visibility": action.visibility}
        )


def _epoch(iso: str, message: Received) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return message.sent_at or message.received_at
