"""The delivery queue as the deliverer sees it: resolving it, receiving
events with a visibility longer than one attempt, and settling each one
(deleted once delivered or given up, hidden until its retry is due).

A settle that fails is only logged: the message reappears after its
visibility and the delivery record decides again (a delivered event is then
deleted without being sent)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from imagepipe.config import Settings
from imagepipe.provision import MISSING_QUEUE, error_code
from imagepipe.queue_contract import queue_name

log = logging.getLogger(__name__)
# SQS's limits: ten messages per receive, a message hidden at most 12 hours.
MAX_BATCH = 10
MAX_VISIBILITY_SECONDS = 12 * 3600


class DeliveryQueueMissing(Exception):
    """The delivery queue the settings name does not exist: nothing to deliver from."""


@dataclass(frozen=True)
class Received:
    message_id: str
    receipt_handle: str
    body: str
    # ApproximateReceiveCount: 1 on the first receive.
    receive_count: int
    # time.time() when this deliverer got it.
    received_at: float = field(default_factory=time.time)


async def resolve(sqs: Any, settings: Settings) -> str:
    """The delivery queue's URL (IMAGEPIPE_WEBHOOK_QUEUE_URL, or looked up by name)."""
    url, name = settings.webhook_queue()
    if url:
        return url
    try:
        return str((await sqs.get_queue_url(QueueName=queue_name(name)))["QueueUrl"])
    except ClientError as exc:
        if error_code(exc) not in MISSING_QUEUE:
            raise
    raise DeliveryQueueMissing(
        f"the delivery queue {name!r} does not exist (IMAGEPIPE_WEBHOOK_QUEUE_NAME, default the job"
        " queue's name + '-webhooks'); the operator or `imagepipe dev` provisions it"
    )


async def receive(sqs: Any, url: str, count: int, visibility: int, wait: int) -> list[Received]:
    response = await sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(MAX_BATCH, count)),
        WaitTimeSeconds=wait,
        VisibilityTimeout=visibility,
        AttributeNames=["ApproximateReceiveCount"],
    )
    return [
        Received(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
        )
        for raw in response.get("Messages", [])
    ]


async def delete(sqs: Any, url: str, message: Received) -> bool:
    try:
        await sqs.delete_message(QueueUrl=url, ReceiptHandle=message.receipt_handle)
    except Exception as exc:
        log.warning(
            "event message not deleted; it reappears and is settled again",
            extra={"message_id": message.message_id, "error": repr(exc)},
        )
        return False
    return True


async def hide(sqs: Any, url: str, message: Received, seconds: float) -> bool:
    """Make the message visible again in `seconds` (0: at once), within SQS's bounds."""
    visibility = max(0, min(MAX_VISIBILITY_SECONDS, round(seconds)))
    try:
        await sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=visibility
        )
    except Exception as exc:
        log.warning(
            "event message visibility not changed; it reappears after its receive visibility",
            extra={"message_id": message.message_id, "visibility": visibility, "error": repr(exc)},
        )
        return False
    return True
