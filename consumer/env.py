"""What every job of one consumer shares, and the failure rules applied to
this consumer's queue (its redrive policy's maxReceiveCount)."""

from __future__ import annotations

from dataclasses import dataclass

from imagepipe.aws import Backends
from imagepipe.config import Settings
from imagepipe.context import Limits
from imagepipe.jobstore.store import JobStore
from imagepipe.webhooks.outbox import Outbox

from .messages import Deleter, Received
from .metrics import Metrics
from .pool import RenderPool
from .redrive import Redrive
from .rules import Action, Trouble, decide


@dataclass
class JobEnv:
    """What every job of one consumer shares."""

    backends: Backends
    store: JobStore
    settings: Settings
    pool: RenderPool
    metrics: Metrics
    deleter: Deleter
    redrive: Redrive
    # Where events go once a job's state is durable (a no-op with webhooks off).
    outbox: Outbox
    # First visibility of a handed-back message; doubles with each receive.
    release_base_seconds: int
    # How long the last attempt keeps trying to record `retries_exhausted`.
    exhausted_budget_seconds: float = 60.0

    @property
    def limits(self) -> Limits:
        return Limits(self.settings.max_pixels, self.settings.max_decoded_pixels)

    def rules(
        self, trouble: Trouble, message: Received, shutting_down: bool, code: str = "internal"
    ) -> Action:
        return decide(
            trouble,
            message.receive_count,
            self.redrive.max_receives,
            shutting_down,
            self.release_base_seconds,
            code,
        )
