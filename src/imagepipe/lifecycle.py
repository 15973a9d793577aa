"""The job store's S3 lifecycle rules: which of our objects expire, and when.
The job-state code owns this list; provisioning only merges it into a
bucket's configuration by rule ID (`bucket_rules.merge_lifecycle`)."""

from __future__ import annotations

from typing import Any

# Leftovers of uploads that failed half-way are unreachable (random ids, no
# message): originals expire after a week. The queue contract checks that a
# dead-letter queue keeps its messages at least this long.
ORIGINALS_EXPIRY_DAYS = 7
# Idempotency records are useless after their 24 h window.
IDEMPOTENCY_EXPIRY_DAYS = 2


def lifecycle_rules() -> list[dict[str, Any]]:
    """Our rules, each with a stable ID (the merge key). Status documents and
    variants are kept."""
    return [
        {
            "ID": "expire-originals",
            "Filter": {"Prefix": "originals/"},
            "Status": "Enabled",
            "Expiration": {"Days": ORIGINALS_EXPIRY_DAYS},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        },
        {
            "ID": "expire-idempotency",
            "Filter": {"Prefix": "idempotency/"},
            "Status": "Enabled",
            "Expiration": {"Days": IDEMPOTENCY_EXPIRY_DAYS},
        },
    ]
