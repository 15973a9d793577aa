"""Keeps a running job's message hidden: every third of the visibility timeout
it is extended to a full timeout again. A slow job is then never processed
twice at once, while a dead consumer's message reappears within one short
timeout."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from .messages import Received, is_gone

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, sqs: Any, queue_url: str, message: Received, visibility: int) -> None:
        self.sqs, self.queue_url, self.message, self.visibility = sqs, queue_url, message, visibility
        self.interval = max(0.5, visibility / 3)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop extending (before handing the message back, so no beat undoes that)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                # A stalled SQS must not delay the next beat.
                await asyncio.wait_for(
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=self.message.receipt_handle,
                        VisibilityTimeout=self.visibility,
                    ),
                    timeout=max(1.0, self.interval),
                )
            except Exception as exc:
                if is_gone(exc):
                    log.warning(
                        "heartbeat stopped: the message is no longer ours", extra={"error": repr(exc)}
                    )
                    return
                # Keep trying: the job goes on, and SQS may answer the next beat.
                log.warning("heartbeat failed", extra={"error": repr(exc)})
