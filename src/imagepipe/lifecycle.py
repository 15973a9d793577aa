"""The job store's S3 lifecycle rules: which of our objects expire, and when.
The job-state code owns this list; provisioning only merges it into a
bucket's configuration by rule ID (`bucket_rules.merge_lifecycle`).

Every object the pipeline writes is either reachable from a live job or
expires by one of these (docs/design.md, "Keys"):
- A `queued` status document is tagged `unsent` until a worker starts it: if
  its upload failed before the message was sent, nothing will ever start it.
- A `deleted` status document (a tombstone) is tagged `tombstone`: it must
  outlive every message that could still bring the job back, i.e. the queues'
  longest retention (14 days) plus the longest visibility (12 hours).
- Originals, idempotency records, failure markers and probe objects expire
  by prefix. Status documents of live jobs and variants are kept.
- Webhook delivery records expire by prefix after the same lifetime as a
  tombstone: a record must outlive every delivery-queue message of its job
  (the deliverer reads it to drop an event already delivered).
"""

from __future__ import annotations

from typing import Any

from imagepipe.jobstore.keys import FAILURES, IDEMPOTENCY, JOBS, ORIGINALS, PROBES, WEBHOOKS
from imagepipe.jobstore.transitions import DELETED, QUEUED, StatusDoc

# Leftovers of uploads that failed half-way are unreachable (random ids, no
# message): originals expire after a week. The queue contract checks that a
# dead-letter queue keeps its messages at least this long.
ORIGINALS_EXPIRY_DAYS = 7
# Idempotency records are useless after their 24 h window.
IDEMPOTENCY_EXPIRY_DAYS = 2
# SQS keeps a message at most 14 days (counted from its first enqueue, in a
# dead-letter queue too); a visibility can hide it 12 hours more.
MESSAGE_LIFETIME_DAYS = 15
# `imagepipe jobs list --since` reaches back this far.
FAILURE_MARKER_EXPIRY_DAYS = 15
PROBE_EXPIRY_DAYS = 1
TAG_KEY = "imagepipe-expiry"
UNSENT, TOMBSTONE = "unsent", "tombstone"


def status_tag(doc: StatusDoc) -> str | None:
    """The object tagging a status document is written with (None: kept)."""
    state = doc.get("status")
    if state == QUEUED:
        return f"{TAG_KEY}={UNSENT}"
    if state == DELETED:
        return f"{TAG_KEY}={TOMBSTONE}"
    return None


def _by_prefix(rule_id: str, prefix: str, days: int) -> dict[str, Any]:
    return {"ID": rule_id, "Filter": {"Prefix": prefix}, "Status": "Enabled", "Expiration": {"Days": days}}


def _by_tag(rule_id: str, value: str, days: int) -> dict[str, Any]:
    return {
        "ID": rule_id,
        "Filter": {"And": {"Prefix": JOBS, "Tags": [{"Key": TAG_KEY, "Value": value}]}},
        "Status": "Enabled",
        "Expiration": {"Days": days},
    }


def lifecycle_rules() -> list[dict[str, Any]]:
    """Our rules, each with a stable ID (the merge key)."""
    originals = _by_prefix("expire-originals", ORIGINALS, ORIGINALS_EXPIRY_DAYS)
    originals["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": 1}
    return [
        originals,
        _by_prefix("expire-idempotency", IDEMPOTENCY, IDEMPOTENCY_EXPIRY_DAYS),
        _by_prefix("expire-failure-markers", FAILURES, FAILURE_MARKER_EXPIRY_DAYS),
        _by_prefix("expire-probes", PROBES, PROBE_EXPIRY_DAYS),
        _by_prefix("expire-webhooks", WEBHOOKS, MESSAGE_LIFETIME_DAYS),
        _by_tag("expire-unsent-status", UNSENT, MESSAGE_LIFETIME_DAYS),
        _by_tag("expire-tombstones", TOMBSTONE, MESSAGE_LIFETIME_DAYS),
    ]
