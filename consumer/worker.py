"""The consumer's main loop: poll → start → (job runs) → finish, and the drain.

It asks SQS only for as many messages as it has free slots (at most ten),
with a 20 s long poll; each message becomes one task (see job.py) whose
image work runs in the process pool. On SIGTERM it stops receiving, lets the
running jobs finish within the grace period, hands back any message it has
not started (visibility 0, so another consumer takes it at once) and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass

from imagepipe.aws import Backends, open_backends
from imagepipe.config import Settings
from imagepipe.exposition import exposed
from imagepipe.health import Liveness, build_app, serve
from imagepipe.jobqueue import NoRedrivePolicy
from imagepipe.jobstore.store import ConditionalWritesUnsupported, JobStore
from imagepipe.spec import load_pipelines
from imagepipe.webhooks.outbox import DeliveryQueueMissing, Outbox

from .env import JobEnv
from .job import handle
from .messages import Deleter, Received, receive, set_visibility
from .metrics import Metrics
from .pool import RenderPool
from .redrive import Redrive
from .retry import backoff
from .sweeper import SWEEP_SECONDS, Sweeper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    """Consumer knobs beyond the shared settings (CLI flags; defaults suit production)."""

    metrics_host: str = "0.0.0.0"
    # Long-poll wait; SQS allows up to 20 s.
    wait_seconds: int = 20
    # First visibility of a handed-back message (doubles per receive); None: the visibility timeout.
    release_base_seconds: int | None = None
    # /healthz fails after the poll loop has not come round for this long.
    stall_seconds: float = 90.0
    # Between sweeps of the dead-letter queue.
    sweep_seconds: float = SWEEP_SECONDS


class Consumer:
    def __init__(self, settings: Settings, options: Options | None = None) -> None:
        self.settings = settings
        self.options = options or Options()
        self.metrics = Metrics()
        self.metrics.prepare(load_pipelines(settings.pipelines_file))
        self.liveness = Liveness(self.options.stall_seconds)
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.slots = settings.worker_slots
        self.metrics_port: int | None = None
        # Jobs were cut off at the end of the grace period.
        self.abandoned = False

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info(
                "stopping: no new messages; draining jobs in flight", extra={"in_flight": len(self.tasks)}
            )
        self.stopping.set()
        self.liveness.stopping = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        async with AsyncExitStack() as stack:
            backends = await open_backends(self.settings, stack)
            store = JobStore(
                backends.s3,
                backends.bucket,
                on_refused=lambda reason: self.metrics.status_conflicts.labels(reason).inc(),
            )
            outbox = Outbox(backends.sqs, self.settings, self.metrics.webhook_events)
            try:
                redrive = await self.preflight(store, backends, outbox)
            except (ConditionalWritesUnsupported, NoRedrivePolicy, DeliveryQueueMissing) as exc:
                log.error("refusing to start: %s", exc)
                return 2
            if redrive is None:
                return 0
            pool = RenderPool(self.slots)
            stack.callback(lambda: pool.close(abandon=self.abandoned))
            await pool.start()
            runner, self.metrics_port = await serve(
                build_app(self.liveness, exposed(self.metrics.registry, self.settings.imagepipeline)),
                self.options.metrics_host,
                self.settings.metrics_port,
            )
            stack.push_async_callback(runner.cleanup)
            self.metrics.slots.set(self.slots)
            env = JobEnv(
                backends=backends,
                store=store,
                redrive=redrive,
                outbox=outbox,
                settings=self.settings,
                pool=pool,
                metrics=self.metrics,
                deleter=Deleter(backends.sqs, backends.queue_url),
                release_base_seconds=self.options.release_base_seconds
                or self.settings.visibility_timeout_seconds,
            )
            log.info(
                "consumer started",
                extra={
                    "queue_url": backends.queue_url,
                    "slots": self.slots,
                    "metrics_port": self.metrics_port,
                    "max_receives": redrive.max_receives,
                },
            )
            chores = [
                asyncio.create_task(redrive.refresh_forever()),
                asyncio.create_task(Sweeper(env).run_forever(self.options.sweep_seconds)),
            ]
            try:
                await self.poll(env)
                await self.drain()
            finally:
                for chore in chores:
                    chore.cancel()
                await asyncio.gather(*chores, return_exceptions=True)
        log.info("consumer stopped")
        return 0

    async def preflight(self, store: JobStore, backends: Backends, outbox: Outbox) -> Redrive | None:
        """Check the backends before taking work: conditional writes, a redrive policy,
        the delivery queue when webhooks are on.

        Waits out an unreachable backend (None if stopped meanwhile); a backend
        that answers but cannot be used raises.
        """
        attempt = 0
        while not self.stopping.is_set():
            try:
                await store.check_conditional_writes()
                await outbox.open()
                return await Redrive.load(backends.sqs, backends.queue_url)
            except (ConditionalWritesUnsupported, NoRedrivePolicy, DeliveryQueueMissing):
                raise
            except Exception as exc:
                delay = backoff(attempt, 0.5, 10.0)
                log.warning(
                    "backends not reachable at start-up", extra={"error": repr(exc), "retry_in": delay}
                )
                await self.sleep_unless_stopping(delay)
                attempt += 1
        return None

    async def poll(self, env: JobEnv) -> None:
        failures = 0
        while not self.stopping.is_set():
            self.liveness.tick()
            free = self.slots - len(self.tasks)
            if free <= 0:
                await self.wait_for_a_slot()
                continue
            try:
                messages = await self.receive(env, free)
                failures = 0
            except Exception as exc:
                self.metrics.poll_errors.inc()
                delay = backoff(failures, 0.5, 10.0)
                failures += 1
                log.warning("receive failed", extra={"error": repr(exc), "retry_in": round(delay, 2)})
                await self.sleep_unless_stopping(delay)
                continue
            self.metrics.received.inc(len(messages))
            for message in messages:
                self.start(env, message)

    async def receive(self, env: JobEnv, count: int) -> list[Received]:
        """One long poll, abandoned at once when a stop is requested."""
        b = env.backends
        polling = asyncio.create_task(
            receive(
                b.sqs, b.queue_url, count, self.settings.visibility_timeout_seconds, self.options.wait_seconds
            )
        )
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not polling.done():
            # Anything SQS hands to the abandoned poll reappears after one visibility timeout.
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            return []
        return polling.result()

    def start(self, env: JobEnv, message: Received) -> None:
        if self.stopping.is_set():
            # Received but not started: hand it straight back.
            task = asyncio.create_task(self.hand_back(env, message))
        else:
            task = asyncio.create_task(handle(env, message))
        self.tasks.add(task)
        task.add_done_callback(self.finished)

    def finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A bug: the message reappears after its visibility timeout and is retried.
            log.error("job task crashed", exc_info=task.exception())

    async def hand_back(self, env: JobEnv, message: Received) -> None:
        self.metrics.retried.labels("shutdown").inc()
        await set_visibility(env.backends.sqs, env.backends.queue_url, message, 0)

    async def wait_for_a_slot(self) -> None:
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({stop, *self.tasks}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()

    async def sleep_unless_stopping(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def drain(self) -> None:
        """Let running jobs finish within the grace period; cancel (and hand back) the rest."""
        if not self.tasks:
            return
        started = time.monotonic()
        grace = self.settings.shutdown_grace_seconds
        _, late = await asyncio.wait(set(self.tasks), timeout=grace)
        if late:
            log.warning("grace period over; handing back unfinished jobs", extra={"unfinished": len(late)})
            self.abandoned = True
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=5)
        log.info("drained", extra={"seconds": round(time.monotonic() - started, 2)})
