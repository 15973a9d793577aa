"""The dead-letter sweeper: every message the redrive policy moved to the
dead-letter queue ends its job as `failed` (`retries_exhausted`), then goes.

The dead-letter queue is the one the job queue's redrive policy names (no
setting of its own), and it is swept only while ListDeadLetterSourceQueues
shows that it serves our queue alone: a queue shared with other producers is
reported and left alone. A job already final stays as it is (the transition
is refused). Either way the job's webhook event (`image.failed`, or the
current document's event of a job already final) goes to the delivery queue
before the dead-letter message is deleted; a sweep that cannot emit it
leaves the message, which reappears for a later sweep. An unparseable
message is logged with its id and size and deleted (it has no job); a
message of a newer version is left for a newer consumer. Every consumer
sweeps; compare-and-swap makes that safe.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from imagepipe.jobs import BadMessage, UnknownVersion, now_iso, parse_message
from imagepipe.jobstore.transitions import Fail, Refused

from .emission import FINAL, emit_current
from .env import JobEnv
from .messages import Received, parse_received
from .retry import retrying
from .rules import RETRIES_EXHAUSTED

log = logging.getLogger(__name__)
SWEEP_SECONDS = 15.0
# A newer consumer's message stays hidden this long between our looks at it.
NEWER_VERSION_HIDE_SECONDS = 900
# A swept message stays hidden while we settle it.
SWEEP_VISIBILITY_SECONDS = 60


def queue_identity(url: str) -> tuple[str, str]:
    """(account, name) of a queue URL; hosts differ between clients, these do not."""
    account, name = url.rstrip("/").rsplit("/", 2)[-2:]
    return account, name


async def dead_letter_url(sqs: Any, arn: str) -> str:
    _, _, _, _, account, name = arn.split(":", 5)
    response = await sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
    return str(response["QueueUrl"])


class Sweeper:
    def __init__(self, env: JobEnv) -> None:
        self.env = env
        self.sqs, self.queue_url = env.backends.sqs, env.backends.queue_url
        self.reported_shared = False

    async def run_forever(self, interval: float = SWEEP_SECONDS) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("dead-letter sweep failed; trying again", extra={"error": repr(exc)})
            await asyncio.sleep(interval)

    async def sweep(self) -> int:
        """Settle every dead-lettered message now visible; how many were settled."""
        dlq_url = await dead_letter_url(self.sqs, self.env.redrive.policy.dead_letter_arn)
        if not await self.serves_only_us(dlq_url):
            return 0
        settled = 0
        while True:
            response = await self.sqs.receive_message(
                QueueUrl=dlq_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=SWEEP_VISIBILITY_SECONDS,
                AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
            messages = [parse_received(raw) for raw in response.get("Messages", [])]
            if not messages:
                return settled
            for message in messages:
                settled += await self.settle(dlq_url, message)

    async def serves_only_us(self, dlq_url: str) -> bool:
        sources = await self.sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)
        identities = {queue_identity(url) for url in sources.get("queueUrls", [])}
        if identities == {queue_identity(self.queue_url)}:
            self.reported_shared = False
            return True
        if not self.reported_shared:
            log.error(
                "dead-letter queue serves other queues too; not sweeping it",
                extra={"dead_letter_queue": dlq_url, "sources": sorted("/".join(i) for i in identities)},
            )
            self.reported_shared = True
        return False

    async def settle(self, dlq_url: str, message: Received) -> int:
        try:
            job = parse_message(message.body)
        except UnknownVersion:
            self.env.metrics.dead_letters.labels("newer_version").inc()
            await self.sqs.change_message_visibility(
                QueueUrl=dlq_url,
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=NEWER_VERSION_HIDE_SECONDS,
            )
            return 0
        except BadMessage as exc:
            log.error(
                "unparseable dead-lettered message deleted",
                extra={
                    "message_id": message.message_id,
                    "bytes": len(message.body.encode()),
                    "reason": str(exc),
                },
            )
            self.env.metrics.dead_letters.labels("unparseable").inc()
        else:
            fail = Fail(
                RETRIES_EXHAUSTED, "moved to the dead-letter queue after its last allowed receive", now_iso()
            )
            outcome = await self.env.store.apply(job.job_id, fail)
            if isinstance(outcome, Refused):
                if outcome.reason in FINAL:
                    await emit_current(self.env, job.job_id)
                log.info(
                    "dead-lettered job already final", extra={"job_id": job.job_id, "state": outcome.reason}
                )
                self.env.metrics.dead_letters.labels("already_final").inc()
            else:
                await retrying(lambda: self.env.outbox.emit(outcome))
                log.warning(
                    "dead-lettered job failed", extra={"job_id": job.job_id, "code": RETRIES_EXHAUSTED}
                )
                self.env.metrics.dead_letters.labels("failed").inc()
                self.env.metrics.jobs.labels(job.pipeline, "failed", RETRIES_EXHAUSTED).inc()
        await self.sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message.receipt_handle)
        return 1
