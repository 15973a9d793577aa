"""The queue contract as a table: each mismatch gives its reason."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagepipe.queue_contract import DAY, QueueFacts, QueueNeeds, contract_problems, delivery_queue_problems

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:jobs-dlq"
REDRIVE = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": "5"})
QUEUE = {"RedrivePolicy": REDRIVE, "VisibilityTimeout": "30", "MessageRetentionPeriod": str(4 * DAY)}
DLQ = {"QueueArn": DLQ_ARN, "MessageRetentionPeriod": str(14 * DAY)}
SOURCES = ["http://127.0.0.1:1/123456789012/jobs"]
NEEDS = QueueNeeds(visibility_timeout=30, originals_days=7)


def facts(queue: dict[str, str] | None = None, dlq: dict[str, str] | None = None, **kw: Any) -> QueueFacts:
    return QueueFacts(
        queue="jobs",
        dead_letter_queue="jobs-dlq",
        attributes={**QUEUE, **(queue or {})},
        dead_letter_attributes={**DLQ, **(dlq or {})},
        dead_letter_sources=kw.get("sources", SOURCES),
    )


@pytest.mark.parametrize(
    ("given", "reasons"),
    [
        (facts(), []),
        (facts(queue={"RedrivePolicy": ""}), ["NoRedrivePolicy"]),
        (
            facts(
                queue={"RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:x", "maxReceiveCount": 5})}
            ),
            ["RedriveTargetMismatch"],
        ),
        (facts(sources=[*SOURCES, "http://127.0.0.1:1/123456789012/other"]), ["DeadLetterQueueShared"]),
        (facts(sources=[]), []),
        (facts(dlq={"MessageRetentionPeriod": str(4 * DAY)}), ["DeadLetterRetentionTooShort"]),
        (facts(queue={"VisibilityTimeout": "10"}), ["VisibilityTimeoutTooShort"]),
        (facts(queue={"MessageRetentionPeriod": "120"}), ["QueueRetentionTooShort"]),
        (
            facts(queue={"VisibilityTimeout": "5"}, dlq={"MessageRetentionPeriod": "60"}),
            ["DeadLetterRetentionTooShort", "VisibilityTimeoutTooShort"],
        ),
    ],
    ids=[
        "kept",
        "no-redrive",
        "redrive-elsewhere",
        "dlq-shared",
        "sources-not-listed-yet",
        "dlq-retention-short",
        "visibility-short",
        "queue-retention-short",
        "two-at-once",
    ],
)
def test_contract(given: QueueFacts, reasons: list[str]) -> None:
    problems = contract_problems(given, NEEDS)
    assert [p.reason for p in problems] == reasons
    for problem in problems:
        assert "jobs" in problem.message


def test_messages_say_what_to_set() -> None:
    (shared,) = contract_problems(facts(sources=[*SOURCES, "https://sqs/1/other"]), NEEDS)
    assert "['other']" in shared.message
    (short,) = contract_problems(facts(dlq={"MessageRetentionPeriod": "86400"}), NEEDS)
    assert str(7 * DAY) in short.message


@pytest.mark.parametrize(
    ("attributes", "reasons"),
    [
        ({"MessageRetentionPeriod": str(14 * DAY)}, []),
        ({"MessageRetentionPeriod": str(DAY)}, []),
        ({"MessageRetentionPeriod": str(DAY - 1)}, ["WebhookQueueRetentionTooShort"]),
        ({}, []),  # SQS's default retention, 4 days
        ({"MessageRetentionPeriod": str(14 * DAY), "RedrivePolicy": REDRIVE}, ["WebhookQueueRedrive"]),
        (
            {"MessageRetentionPeriod": "60", "RedrivePolicy": REDRIVE},
            ["WebhookQueueRedrive", "WebhookQueueRetentionTooShort"],
        ),
    ],
)
def test_delivery_queue_contract(attributes: dict[str, str], reasons: list[str]) -> None:
    problems = delivery_queue_problems("jobs-webhooks", attributes, horizon_seconds=DAY)
    assert [p.reason for p in problems] == reasons
    assert all("jobs-webhooks" in p.message for p in problems)
