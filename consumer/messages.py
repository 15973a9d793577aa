"""SQS messages as the consumer sees them: receiving, handing back, deleting.

Deletes are batched (up to ten per request, gathered for a few milliseconds)
and every `Failed` entry is answered: retried alone when it may pass, or
reported when the receipt is no longer valid (the message then reappears and
is skipped as a completed job).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .retry import retrying

log = logging.getLogger(__name__)

MAX_BATCH = 10
TRACE_ATTRIBUTES = ("trace_id", "traceid", "trace-id", "traceparent", "x-trace-id")


@dataclass(frozen=True)
class Received:
    message_id: str
    receipt_handle: str
    body: str
    # ApproximateReceiveCount: 1 on the first delivery.
    receive_count: int
    # SentTimestamp as Unix seconds; None when SQS did not say.
    sent_at: float | None
    trace_id: str | None
    # time.time() when this consumer got it.
    received_at: float = field(default_factory=time.time)


def parse_received(raw: dict[str, Any]) -> Received:
    attributes = raw.get("Attributes", {})
    sent = attributes.get("SentTimestamp")
    return Received(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        sent_at=int(sent) / 1000 if sent else None,
        trace_id=_trace_id(raw.get("MessageAttributes", {}), attributes),
    )


def _trace_id(message_attributes: dict[str, Any], attributes: dict[str, str]) -> str | None:
    for name, value in message_attributes.items():
        if name.lower() in TRACE_ATTRIBUTES and value.get("StringValue"):
            return str(value["StringValue"])
    return attributes.get("AWSTraceHeader")


async def receive(sqs: Any, queue_url: str, count: int, visibility: int, wait: int = 20) -> list[Received]:
    response = await sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max(1, min(MAX_BATCH, count)),
        WaitTimeSeconds=wait,
        VisibilityTimeout=visibility,
        AttributeNames=["ApproximateReceiveCount", "SentTimestamp", "AWSTraceHeader"],
        MessageAttributeNames=["All"],
    )
    return [parse_received(m) for m in response.get("Messages", [])]


def is_gone(exc: BaseException) -> bool:
    """The receipt no longer names a message we hold (deleted, or received again elsewhere)."""
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code", "")
    return "ReceiptHandleIsInvalid" in code or "MessageNotInflight" in code or "InvalidParameterValue" in code


async def set_visibility(sqs: Any, queue_url: str, message: Received, seconds: int) -> bool:
    """Hide (or show, with 0) the message for `seconds`; False if that failed."""
    try:
        await retrying(
            lambda: sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=seconds
            ),
            attempts=3,
        )
    except Exception as exc:
        log.warning("could not change message visibility", extra={"visibility": seconds, "error": repr(exc)})
        return False
    return True


class Deleter:
    """Deletes messages in batches; `await delete(message)` returns once it is gone."""

    def __init__(self, sqs: Any, queue_url: str, linger: float = 0.02) -> None:
        self.sqs, self.queue_url, self.linger = sqs, queue_url, linger
        self._pending: list[tuple[Received, asyncio.Future[bool]]] = []
        self._flush: asyncio.Task[None] | None = None

    async def delete(self, message: Received) -> bool:
        """True when deleted; False when the receipt was no longer valid."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._flush_pending())
        return await asyncio.shield(future)

    async def _flush_pending(self) -> None:
        # Linger briefly so that jobs finishing together share a request.
        await asyncio.sleep(self.linger)
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            await self._send(batch)

    async def _send(self, batch: list[tuple[Received, asyncio.Future[bool]]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, (m, _) in enumerate(batch)]
        try:
            response = await retrying(
                lambda: self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries), attempts=3
            )
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for entry in response.get("Successful", []):
            _resolve(batch[int(entry["Id"])][1], True)
        failed = [(batch[int(e["Id"])], e) for e in response.get("Failed", [])]
        await asyncio.gather(*(self._delete_one(m, f, e) for (m, f), e in failed))

    async def _delete_one(
        self, message: Received, future: asyncio.Future[bool], failed: dict[str, Any]
    ) -> None:
        """A Failed batch entry: retry alone if the fault was ours to retry."""
        if not failed.get("SenderFault", False):
            try:
                await retrying(
                    lambda: self.sqs.delete_message(
                        QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle
                    )
                )
                _resolve(future, True)
                return
            except Exception as exc:
                failed = {**failed, "Message": repr(exc)}
        log.warning(
            "message not deleted; it will reappear and be skipped as done",
            extra={
                "message_id": message.message_id,
                "code": failed.get("Code"),
                "reason": failed.get("Message"),
            },
        )
        _resolve(future, False)


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
