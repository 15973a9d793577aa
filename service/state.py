"""What every handler needs, kept on the aiohttp application under one key."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from imagepipe.aws import Backends
from imagepipe.config import Settings
from imagepipe.context import Limits
from imagepipe.errors import BackendUnavailable
from imagepipe.jobqueue import send_job
from imagepipe.jobs import JobMessage
from imagepipe.jobstore.store import ConditionalWritesUnsupported, JobStore
from imagepipe.jobstore.transitions import StatusDoc
from imagepipe.service.auth import Authenticator
from imagepipe.service.budget import UploadBudget
from imagepipe.service.metrics import IngestMetrics
from imagepipe.service.ratelimit import RateLimiter
from imagepipe.service.readiness import BackendCheck
from imagepipe.service.shutdown import Lifecycle
from imagepipe.spec import VariantList
from imagepipe.webhooks.outbox import Outbox

log = logging.getLogger("imagepipe.service")


@dataclass
class Ingest:
    settings: Settings
    pipelines: dict[str, VariantList]
    limits: Limits
    auth: Authenticator
    metrics: IngestMetrics
    budget: UploadBudget
    limiter: RateLimiter
    backend: BackendCheck
    lifecycle: Lifecycle
    # Set once the backends are open (application startup).
    store: JobStore | None = None
    backends: Backends | None = None
    # Where DELETE puts its `image.deleted` event (a no-op with webhooks off).
    outbox: Outbox | None = None
    # The backend was seen to enforce conditional writes.
    checked: bool = False

    def jobs(self) -> JobStore:
        if self.store is None:  # pragma: no cover - routes run only after startup
            raise RuntimeError("the backends are not open")
        return self.store

    async def enqueue(self, message: JobMessage, trace_id: str) -> None:
        assert self.backends is not None
        b = self.backends
        await self.jobs().objects.call("send message", send_job(b.sqs, b.queue_url, message, trace_id))

    async def open_outbox(self) -> None:
        """Resolve the delivery queue at start-up; DeliveryQueueMissing refuses to start.

        One that cannot be reached now is resolved by the first emission."""
        assert self.outbox is not None
        try:
            await self.outbox.open()
        except BackendUnavailable:
            log.warning("could not reach the webhook delivery queue; the first event will look again")

    async def emit(self, doc: StatusDoc | None) -> None:
        """The durable document's event on the delivery queue; BackendUnavailable (503) when not."""
        assert self.outbox is not None
        await self.outbox.emit(doc)

    async def check_backend(self) -> None:
        """Refuse a backend without conditional writes (ConditionalWritesUnsupported).

        One that cannot be reached now is checked again by readiness.
        """
        try:
            await self.jobs().check_conditional_writes()
        except BackendUnavailable:
            log.warning("could not check that S3 enforces conditional writes; readiness will")
            return
        self.checked = True

    async def ping(self) -> None:
        """S3 and SQS answer, and S3 enforces conditional writes (readiness)."""
        assert self.backends is not None
        b = self.backends
        if not self.checked:
            try:
                await self.check_backend()
            except ConditionalWritesUnsupported as exc:
                raise BackendUnavailable(str(exc)) from exc
        await self.jobs().ping()
        await self.jobs().objects.call(
            "queue attributes", b.sqs.get_queue_attributes(QueueUrl=b.queue_url, AttributeNames=["QueueArn"])
        )


INGEST = web.AppKey("ingest", Ingest)


def ingest(request: web.Request) -> Ingest:
    return request.app[INGEST]
