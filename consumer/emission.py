"""A job's webhook events as the consumer emits them: after the state they
report is durable, before the message that would make it try again is
deleted (docs/design.md, "Webhooks"). A job found already final emits its
current document's event again: whoever made it final may have died between
its write and its emission, and the event id (derived from the state change)
is the same however often it is sent."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from imagepipe.jobstore.transitions import COMPLETED, FAILED, StatusDoc

from .env import JobEnv
from .retry import retrying

log = logging.getLogger(__name__)
# The states whose event a redelivered or dead-lettered message emits again.
FINAL = frozenset({COMPLETED, FAILED})


async def emit_current(env: JobEnv, job_id: str) -> None:
    """The event of the job's current document, if it has one; raises when it could not be emitted."""
    if not env.outbox.enabled:
        return
    current = await retrying(lambda: env.store.read(job_id))
    await retrying(lambda: env.outbox.emit(current.doc))


class Emission:
    """One job's events; `unsent` hands its message back when one cannot be emitted."""

    def __init__(self, env: JobEnv, job_id: str, unsent: Callable[[], Awaitable[None]]) -> None:
        self.env, self.job_id, self.unsent = env, job_id, unsent

    async def emitted(self, doc: StatusDoc | None) -> bool:
        """The event of the durable `doc` (when one is due) is on the delivery queue.

        False: it could not be put there, and the message was handed back."""
        try:
            await retrying(lambda: self.env.outbox.emit(doc))
        except Exception as exc:
            return await self.failed(exc)
        return True

    async def reemitted(self) -> bool:
        """The job is already final: its current document's event, again."""
        try:
            await emit_current(self.env, self.job_id)
        except Exception as exc:
            return await self.failed(exc)
        return True

    async def failed(self, exc: Exception) -> bool:
        log.warning("could not emit the webhook event; handing the message back", extra={"error": repr(exc)})
        await self.unsent()
        return False
