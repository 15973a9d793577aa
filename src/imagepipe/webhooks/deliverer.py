"""`imagepipe deliver`: the deliverer's main loop, poll → start → (deliver) →
finish, and the drain.

It long-polls the delivery queue for as many messages as it has free
delivery slots (IMAGEPIPE_WEBHOOK_CONCURRENCY, at most ten per receive),
each hidden for longer than one attempt, and delivers each in a task of its
own (delivery.py). It never renders: a slow or failing receiver holds only
these slots, never a consumer's. On SIGTERM it stops receiving, lets the
attempts in flight finish within IMAGEPIPE_SHUTDOWN_GRACE_SECONDS, hands
back (visibility 0) what it received but did not start or finish, and
exits 0."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import signal
import time
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass

from imagepipe.aws import open_clients
from imagepipe.config import Settings
from imagepipe.exposition import exposed
from imagepipe.health import Liveness, build_app, serve
from imagepipe.jobstore.store import ConditionalWritesUnsupported, JobStore
from imagepipe.webhooks.delivery import DeliveryEnv, deliver
from imagepipe.webhooks.deliveryqueue import DeliveryQueueMissing, Received, hide, receive, resolve
from imagepipe.webhooks.metrics import DelivererMetrics
from imagepipe.webhooks.outcome import HANDED_BACK
from imagepipe.webhooks.schedule import Backoff
from imagepipe.webhooks.sender import Sender
from imagepipe.webhooks.signingkeys import SigningKeys

log = logging.getLogger(__name__)
# Unless IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS says otherwise, beyond the
# attempt's own timeout a received message stays hidden this long: the record's
# read and compare-and-swap write (15 s per S3 call) and settling.
RECEIVE_MARGIN_SECONDS = 60


def receive_visibility(settings: Settings) -> int:
    """How long a received message stays hidden: longer than one whole delivery, and
    how late the events of a deliverer killed mid-delivery come back."""
    if settings.webhook_visibility_seconds is not None:
        return settings.webhook_visibility_seconds
    return math.ceil(settings.webhook_timeout_seconds) + RECEIVE_MARGIN_SECONDS


@dataclass(frozen=True)
class Options:
    """Deliverer knobs beyond the shared settings (CLI flags; defaults suit production)."""

    metrics_host: str = "0.0.0.0"
    # Long-poll wait; SQS allows up to 20 s.
    wait_seconds: int = 20
    # /healthz fails after the poll loop has not come round for this long.
    stall_seconds: float = 90.0


class Deliverer:
    def __init__(self, settings: Settings, options: Options | None = None) -> None:
        self.settings = settings
        self.options = options or Options()
        self.metrics = DelivererMetrics()
        self.liveness = Liveness(self.options.stall_seconds)
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.slots = settings.webhook_concurrency
        self.metrics_port: int | None = None

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info(
                "stopping: no new events; finishing attempts in flight", extra={"in_flight": len(self.tasks)}
            )
        self.stopping.set()
        self.liveness.stopping = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        async with AsyncExitStack() as stack:
            s3, sqs = await open_clients(self.settings, stack)
            store = JobStore(s3, self.settings.bucket)
            try:
                queue_url = await self.preflight(store, sqs)
            except (ConditionalWritesUnsupported, DeliveryQueueMissing) as exc:
                log.error("refusing to start: %s", exc)
                return 2
            if queue_url is None:
                return 0
            try:
                keys = SigningKeys.from_settings(self.settings, self.metrics.secret_reload)
            except ValueError as exc:
                log.error("refusing to start: IMAGEPIPE_WEBHOOK_SECRET_FILE: %s", exc)
                return 2
            sender = await stack.enter_async_context(Sender.from_settings(self.settings))
            runner, self.metrics_port = await serve(
                build_app(self.liveness, exposed(self.metrics.registry, self.settings.imagepipeline)),
                self.options.metrics_host,
                self.settings.metrics_port,
            )
            stack.push_async_callback(runner.cleanup)
            self.metrics.concurrency.set(self.slots)
            env = DeliveryEnv(
                sqs=sqs,
                queue_url=queue_url,
                store=store,
                sender=sender,
                target_url=self.settings.webhook_url,
                keys=keys,
                backoff=Backoff.from_settings(self.settings),
                metrics=self.metrics,
                backend_retry_seconds=math.ceil(self.settings.webhook_backoff_seconds),
                variant_base_url=self.settings.variant_base_url(),
            )
            log.info(
                "deliverer started",
                extra={"queue_url": queue_url, "concurrency": self.slots, "metrics_port": self.metrics_port},
            )
            await self.poll(env)
            await self.drain()
        log.info("deliverer stopped")
        return 0

    async def preflight(self, store: JobStore, sqs: object) -> str | None:
        """Conditional writes checked and the queue found before taking work. Waits out an
        unreachable backend (None if stopped meanwhile); one that answers but cannot be used raises."""
        failures = 0
        while not self.stopping.is_set():
            try:
                await store.check_conditional_writes()
                return await resolve(sqs, self.settings)
            except (ConditionalWritesUnsupported, DeliveryQueueMissing):
                raise
            except Exception as exc:
                delay = _backoff(failures)
                log.warning(
                    "backends not reachable at start-up", extra={"error": repr(exc), "retry_in": delay}
                )
                await self.sleep_unless_stopping(delay)
                failures += 1
        return None

    async def poll(self, env: DeliveryEnv) -> None:
        failures = 0
        while not self.stopping.is_set():
            self.liveness.tick()
            free = self.slots - len(self.tasks)
            if free <= 0:
                await self.wait_for_a_slot()
                continue
            # Idle too, the file is followed (a rotation, a failed read's retry), so the
            # reloads counted say what the file holds, not how much traffic there is.
            env.keys.current()
            self.metrics.polls.inc()
            try:
                messages = await self.receive(env, free)
                failures = 0
            except Exception as exc:
                self.metrics.poll_errors.inc()
                delay = _backoff(failures)
                failures += 1
                log.warning("receive failed", extra={"error": repr(exc), "retry_in": round(delay, 2)})
                await self.sleep_unless_stopping(delay)
                continue
            for message in messages:
                self.start(env, message)

    async def receive(self, env: DeliveryEnv, count: int) -> list[Received]:
        """One long poll, abandoned at once when a stop is requested."""
        visibility = receive_visibility(self.settings)
        polling = asyncio.create_task(
            receive(env.sqs, env.queue_url, count, visibility, self.options.wait_seconds)
        )
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({polling, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not polling.done():
            # Anything SQS hands to the abandoned poll reappears after its visibility.
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            return []
        return polling.result()

    def start(self, env: DeliveryEnv, message: Received) -> None:
        task = asyncio.create_task(
            self.hand_back(env, message) if self.stopping.is_set() else self.run_one(env, message)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run_one(self, env: DeliveryEnv, message: Received) -> None:
        self.metrics.in_flight.inc()
        try:
            await deliver(env, message)
        except asyncio.CancelledError:
            # Cut off at the end of the grace period: another deliverer takes it at once.
            await self.hand_back(env, message)
            raise
        except Exception:
            # A bug: the message reappears after its receive visibility and is tried again.
            log.exception("delivery task crashed", extra={"message_id": message.message_id})
        finally:
            self.metrics.in_flight.dec()

    async def hand_back(self, env: DeliveryEnv, message: Received) -> None:
        await hide(env.sqs, env.queue_url, message, 0)
        self.metrics.deliveries.labels(HANDED_BACK).inc()

    async def wait_for_a_slot(self) -> None:
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({stop, *self.tasks}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()

    async def sleep_unless_stopping(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def drain(self) -> None:
        """Let attempts in flight finish within the grace period; cancel (and hand back) the rest."""
        if not self.tasks:
            return
        started = time.monotonic()
        _, late = await asyncio.wait(set(self.tasks), timeout=self.settings.shutdown_grace_seconds)
        if late:
            log.warning(
                "grace period over; handing back unfinished deliveries", extra={"unfinished": len(late)}
            )
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=5)
        log.info("drained", extra={"seconds": round(time.monotonic() - started, 2)})


def _backoff(failures: int) -> float:
    """Full jitter, 0.5 s doubling to 10 s: deliverers hit by one outage do not return in lockstep."""
    return float(random.random() * min(10.0, 0.5 * 2**failures))
