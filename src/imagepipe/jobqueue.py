"""The job queue as every role sees it: sending a job's message, and the
queue's redrive policy (the one source of `maxReceiveCount` and of the
dead-letter queue)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from imagepipe.jobs import JobMessage


class NoRedrivePolicy(Exception):
    """The job queue has no (usable) redrive policy: failed jobs would be retried forever."""


@dataclass(frozen=True)
class RedrivePolicy:
    dead_letter_arn: str
    # The receive after this many moves a message to the dead-letter queue.
    max_receives: int


def parse_redrive_policy(queue_url: str, attributes: dict[str, Any]) -> RedrivePolicy:
    """From GetQueueAttributes: AWS sends maxReceiveCount as a string, moto as a number."""
    raw = attributes.get("RedrivePolicy")
    if not raw:
        raise NoRedrivePolicy(
            f"the job queue {queue_url} has no redrive policy; give it a dead-letter queue and a "
            "maxReceiveCount (imagepipe takes the number of attempts from it)"
        )
    try:
        policy = json.loads(raw) if isinstance(raw, str) else raw
        max_receives = int(policy["maxReceiveCount"])
        arn = str(policy["deadLetterTargetArn"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NoRedrivePolicy(f"the redrive policy of {queue_url} is not usable: {raw!r}") from exc
    if max_receives < 1 or not arn:
        raise NoRedrivePolicy(f"the redrive policy of {queue_url} is not usable: {raw!r}")
    return RedrivePolicy(dead_letter_arn=arn, max_receives=max_receives)


async def redrive_policy(sqs: Any, queue_url: str) -> RedrivePolicy:
    response = await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])
    return parse_redrive_policy(queue_url, response.get("Attributes", {}))


async def send_job(sqs: Any, queue_url: str, message: JobMessage, trace_id: str) -> None:
    attributes = {
        "trace_id": {"DataType": "String", "StringValue": trace_id},
        "enqueued_at": {"DataType": "String", "StringValue": message.enqueued_at},
    }
    await sqs.send_message(QueueUrl=queue_url, MessageBody=message.to_json(), MessageAttributes=attributes)
