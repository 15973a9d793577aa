"""What a pipeline's queues must promise, checked without I/O: a redrive
policy to its own dead-letter queue, a dead-letter queue that serves only
this queue and keeps messages as long as originals are kept, and timings
under which a failing message reaches the dead-letter queue instead of
expiring. Consumers read `maxReceiveCount` from the queue themselves; this
is what they cannot check."""

from __future__ import annotations

import json
from dataclasses import dataclass

from imagepipe.problems import Problem

DAY = 24 * 3600


@dataclass(frozen=True)
class QueueFacts:
    """What SQS says: both queues' attributes and the dead-letter queue's sources (URLs)."""

    queue: str
    dead_letter_queue: str
    attributes: dict[str, str]
    dead_letter_attributes: dict[str, str]
    dead_letter_sources: list[str]


@dataclass(frozen=True)
class QueueNeeds:
    """The pipeline's visibility timeout and how long originals are kept."""

    visibility_timeout: int
    originals_days: int


def queue_name(queue: str) -> str:
    """A queue name from a name or a URL (its last path segment)."""
    return queue.rstrip("/").rsplit("/", 1)[-1]


def contract_problems(facts: QueueFacts, needs: QueueNeeds) -> list[Problem]:
    redrive = json.loads(facts.attributes.get("RedrivePolicy") or "{}")
    q, dlq = facts.queue, facts.dead_letter_queue
    dlq_arn = facts.dead_letter_attributes.get("QueueArn")
    if not redrive:
        return [Problem("NoRedrivePolicy", f"queue {q!r} has no redrive policy: add one to {dlq!r}")]
    if redrive.get("deadLetterTargetArn") != dlq_arn:
        target = redrive.get("deadLetterTargetArn")
        message = f"queue {q!r} dead-letters to {target!r}, not to {dlq!r} ({dlq_arn})"
        return [Problem("RedriveTargetMismatch", message + ": point its redrive policy at the pipeline's")]
    problems = []
    others = sorted({queue_name(u) for u in facts.dead_letter_sources} - {queue_name(q)})
    if others:
        problems.append(
            Problem(
                "DeadLetterQueueShared",
                f"dead-letter queue {dlq!r} also serves {others}: this pipeline would fail their jobs"
                f" as its own; give queue {q!r} a dead-letter queue of its own",
            )
        )
    problems += _timing_problems(facts, needs, int(redrive.get("maxReceiveCount", 1)))
    return problems


def _timing_problems(facts: QueueFacts, needs: QueueNeeds, max_receives: int) -> list[Problem]:
    q, dlq = facts.queue, facts.dead_letter_queue
    problems = []
    dlq_retention = int(facts.dead_letter_attributes.get("MessageRetentionPeriod", 4 * DAY))
    if dlq_retention < needs.originals_days * DAY:
        problems.append(
            Problem(
                "DeadLetterRetentionTooShort",
                f"dead-letter queue {dlq!r} keeps messages {dlq_retention} s, but originals are kept"
                f" {needs.originals_days} days: a dead-lettered job would vanish before its original;"
                f" set its MessageRetentionPeriod to at least {needs.originals_days * DAY}",
            )
        )
    visibility = int(facts.attributes.get("VisibilityTimeout", 30))
    if visibility < needs.visibility_timeout:
        problems.append(
            Problem(
                "VisibilityTimeoutTooShort",
                f"queue {q!r} hides a received message {visibility} s, less than the pipeline's"
                f" visibilityTimeoutSeconds ({needs.visibility_timeout}): a receive that names none would"
                f" hand a running job to a second consumer; set its VisibilityTimeout to at least"
                f" {needs.visibility_timeout}",
            )
        )
    retention = int(facts.attributes.get("MessageRetentionPeriod", 4 * DAY))
    needed = max_receives * max(visibility, needs.visibility_timeout)
    if retention < needed:
        problems.append(
            Problem(
                "QueueRetentionTooShort",
                f"queue {q!r} keeps messages {retention} s, less than {max_receives} receives ×"
                f" {max(visibility, needs.visibility_timeout)} s: a failing job would expire instead of"
                f" reaching the dead-letter queue; raise its MessageRetentionPeriod to at least {needed}",
            )
        )
    return problems


def delivery_queue_problems(queue: str, attributes: dict[str, str], horizon_seconds: int) -> list[Problem]:
    """The webhook delivery queue: it keeps an event for its whole horizon, and never
    dead-letters one (every retry is a receive, so a maxReceiveCount would cut retries short)."""
    problems = []
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    if redrive:
        problems.append(
            Problem(
                "WebhookQueueRedrive",
                f"delivery queue {queue!r} has a redrive policy (maxReceiveCount"
                f" {redrive.get('maxReceiveCount')}): each webhook retry is a receive, so events would be"
                " dead-lettered before their horizon; remove it",
            )
        )
    retention = int(attributes.get("MessageRetentionPeriod", 4 * DAY))
    if retention < horizon_seconds:
        problems.append(
            Problem(
                "WebhookQueueRetentionTooShort",
                f"delivery queue {queue!r} keeps messages {retention} s, less than the webhook horizon"
                f" ({horizon_seconds} s): events would vanish while still retried; raise its"
                f" MessageRetentionPeriod to at least {horizon_seconds}",
            )
        )
    return problems
