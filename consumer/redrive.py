"""The job queue's redrive policy as the consumer's source of truth for
maxReceiveCount and the dead-letter queue: read at start-up (no policy, no
start) and re-read periodically, so the two can never disagree for long."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from imagepipe.jobqueue import NoRedrivePolicy, RedrivePolicy, redrive_policy

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0


class Redrive:
    def __init__(self, sqs: Any, queue_url: str, policy: RedrivePolicy) -> None:
        self.sqs, self.queue_url, self.policy = sqs, queue_url, policy

    @classmethod
    async def load(cls, sqs: Any, queue_url: str) -> Redrive:
        """NoRedrivePolicy when the queue has none: the consumer must not start."""
        return cls(sqs, queue_url, await redrive_policy(sqs, queue_url))

    @property
    def max_receives(self) -> int:
        return self.policy.max_receives

    async def refresh_forever(self, interval: float = REFRESH_SECONDS) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                policy = await redrive_policy(self.sqs, self.queue_url)
            except NoRedrivePolicy as exc:
                log.error("redrive policy gone; keeping the last one", extra={"reason": str(exc)})
                continue
            except Exception as exc:
                log.warning("could not re-read the redrive policy", extra={"error": repr(exc)})
                continue
            if policy != self.policy:
                log.info("redrive policy changed", extra={"max_receives": policy.max_receives})
            self.policy = policy
