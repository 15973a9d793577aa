"""Every S3 key the pipeline writes, derived from a job id (never from
anything a client sent, unhashed). The lifecycle rules (imagepipe.lifecycle)
name these prefixes."""

from __future__ import annotations

import hashlib

ORIGINALS = "originals/"
JOBS = "jobs/"
VARIANTS = "variants/"
IDEMPOTENCY = "idempotency/"
FAILURES = "failures/"
PROBES = "probes/"
# Delivery records of webhook events (imagepipe.jobstore.deliveries), written only by the deliverer.
WEBHOOKS = "webhooks/"


def original_key(job_id: str) -> str:
    return f"{ORIGINALS}{job_id}"


def status_key(job_id: str) -> str:
    return f"{JOBS}{job_id}.json"


def variant_key(job_id: str, spec_hash: str, name: str, extension: str) -> str:
    return f"{VARIANTS}{job_id}/{spec_hash}/{name}.{extension}"


def variants_prefix(job_id: str, spec_hash: str | None = None) -> str:
    return f"{VARIANTS}{job_id}/" + (f"{spec_hash}/" if spec_hash else "")


def idempotency_key(owner: str | None, key: str) -> str:
    digest = hashlib.sha256(f"{owner or ''}:{key}".encode()).hexdigest()
    return f"{IDEMPOTENCY}{digest}.json"


def failure_day_prefix(day: str) -> str:
    """`day` is YYYY-MM-DD (UTC)."""
    return f"{FAILURES}{day}/"


def failure_key(day: str, job_id: str) -> str:
    return f"{failure_day_prefix(day)}{job_id}"


def probe_key(name: str) -> str:
    return f"{PROBES}{name}"


def delivery_key(job_id: str) -> str:
    return f"{WEBHOOKS}{job_id}.json"
