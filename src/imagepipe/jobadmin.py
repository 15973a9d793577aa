"""`imagepipe jobs`: list, show and retry jobs, for operators of the service.

    imagepipe jobs list --status failed [--since 7d|2026-12-01] [--json]
    imagepipe jobs show JOB_ID [--json]
    imagepipe jobs retry JOB_ID... | --all-failed [--since ...] [--json]

`list` reads the failure index (markers under `failures/{day}/`, expiring by
lifecycle), never every status document. `retry` moves a failed job back to
`queued` by compare-and-swap and re-enqueues it from its status document; it
refuses a job whose original has expired. `--all-failed` skips jobs failed
by a bad image, which a retry cannot fix. Configured by the IMAGEPIPE_*
environment like every role.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import sys
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from imagepipe.aws import Backends, open_backends
from imagepipe.config import ConfigError, load_settings
from imagepipe.errors import IMAGE_ERROR_CODES, ImagePipeError
from imagepipe.jobqueue import send_job
from imagepipe.jobs import is_job_id, job_message, now_iso
from imagepipe.jobstore.documents import requested_focus, requested_variants
from imagepipe.jobstore.keys import original_key
from imagepipe.jobstore.store import ConditionalWritesUnsupported, JobStore
from imagepipe.jobstore.transitions import FAILED, Refused, Retry, StatusDoc
from imagepipe.lifecycle import FAILURE_MARKER_EXPIRY_DAYS

DURATION = re.compile(r"(\d+)([hd])")
COLUMNS = ("job_id", "status", "code", "failed_at", "pipeline")
RETRY_COLUMNS = ("job_id", "retry", "pipeline")
# What `retry` did with one job.
QUEUED_AGAIN, NOT_FAILED, ORIGINAL_EXPIRED, NO_VARIANT_LIST = (
    "queued",
    "not_failed",
    "original_expired",
    "no_variant_list",
)


class Usage(Exception):
    """Bad input: one line naming it, exit status 2."""


def parse_since(raw: str, now: datetime) -> datetime:
    """`7d`, `36h` or a UTC date `2026-12-01`, within the failure index's reach."""
    match = DURATION.fullmatch(raw)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        since = now - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    else:
        try:
            since = datetime.fromisoformat(raw).replace(tzinfo=UTC)
        except ValueError as exc:
            raise Usage(f"--since {raw!r}: give a duration (36h, 7d) or a date (2026-12-01)") from exc
    if since < now - timedelta(days=FAILURE_MARKER_EXPIRY_DAYS):
        raise Usage(f"--since {raw!r}: the failure index keeps {FAILURE_MARKER_EXPIRY_DAYS} days")
    return since


def row(doc: StatusDoc) -> dict[str, Any]:
    error = doc.get("error") or {}
    return {
        "job_id": doc.get("job_id"),
        "status": doc.get("status"),
        "code": error.get("code"),
        "failed_at": doc.get("completed_at"),
        "pipeline": doc.get("pipeline"),
    }


def table(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    cells = [list(columns)] + [[str(r.get(c) or "") for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="jobs in a state (from the failure index)")
    listing.add_argument("--status", choices=[FAILED], required=True)
    listing.add_argument("--since", default="7d", help="duration (36h, 7d) or date (default: %(default)s)")
    show = actions.add_parser("show", help="one job's status document")
    show.add_argument("job_id")
    retry = actions.add_parser("retry", help="re-enqueue failed jobs from their status documents")
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    retry.add_argument("--all-failed", action="store_true", help="every failed job a retry can fix")
    retry.add_argument("--since", default="7d", help="with --all-failed: how far back (default: %(default)s)")
    for sub in (listing, show, retry):
        sub.add_argument("--json", action="store_true", help="JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        check_arguments(args)
        return asyncio.run(_run(args, settings))
    except (ConfigError, Usage, ConditionalWritesUnsupported) as exc:
        print(f"imagepipe jobs: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    except ImagePipeError as exc:
        print(f"imagepipe jobs: {exc.message}", file=sys.stderr)
        return 1


def check_arguments(args: argparse.Namespace) -> None:
    for job_id in [getattr(args, "job_id", None), *getattr(args, "job_ids", [])]:
        if job_id is not None and not is_job_id(job_id):
            raise Usage(f"{job_id!r} is not a job id (a UUID4)")
    if args.action == "retry" and bool(args.job_ids) == bool(args.all_failed):
        raise Usage("retry takes job ids or --all-failed (one of them)")
    if hasattr(args, "since"):
        args.since_at = parse_since(args.since, datetime.now(UTC))


async def _run(args: argparse.Namespace, settings: Any) -> int:
    async with AsyncExitStack() as stack:
        backends = await open_backends(settings, stack)
        store = JobStore(backends.s3, backends.bucket)
        await store.check_conditional_writes()
        if args.action == "show":
            doc = await store.status(args.job_id)
            if doc is None:
                raise Usage(f"no job {args.job_id}")
            print(json.dumps(doc, indent=None if args.json else 2))
            return 0
        if args.action == "list":
            return emit(args, [row(doc) for doc in await failed_jobs(store, args.since_at)], 0)
        ids = args.job_ids or [
            d["job_id"]
            for d in await failed_jobs(store, args.since_at)
            if row(d)["code"] not in IMAGE_ERROR_CODES
        ]
        results = [await retry_job(store, backends, job_id) for job_id in ids]
        return emit(
            args, results, 1 if any(r["retry"] != QUEUED_AGAIN for r in results) else 0, RETRY_COLUMNS
        )


async def failed_jobs(store: JobStore, since: datetime) -> list[StatusDoc]:
    docs = [await store.status(job_id) for job_id in await store.failed_since(since)]
    return [d for d in docs if d is not None and d.get("status") == FAILED]


async def retry_job(store: JobStore, backends: Backends, job_id: str) -> dict[str, Any]:
    """Re-enqueue one failed job; `retry` says what happened (`queued` on success)."""
    doc = await store.status(job_id)
    outcome = {"job_id": job_id, "pipeline": None if doc is None else doc.get("pipeline")}
    if doc is None or doc.get("status") != FAILED:
        return {**outcome, "retry": NOT_FAILED}
    if not isinstance(doc.get("variant_spec"), list):
        return {**outcome, "retry": NO_VARIANT_LIST}
    if not await store.has_original(job_id):
        return {**outcome, "retry": ORIGINAL_EXPIRED}
    spec = requested_variants(doc)
    if isinstance(await store.apply(job_id, Retry(now_iso())), Refused):
        return {**outcome, "retry": NOT_FAILED}
    message = job_message(job_id, str(doc.get("pipeline")), spec, now_iso(), requested_focus(doc))
    sending = send_job(backends.sqs, backends.queue_url, message, secrets.token_hex(16))
    await store.objects.call("send message", sending)
    return {**outcome, "retry": QUEUED_AGAIN}


def emit(
    args: argparse.Namespace, rows: list[dict[str, Any]], status: int, columns: tuple[str, ...] = COLUMNS
) -> int:
    if args.json:
        print(json.dumps(rows))
        return status
    print(table(rows, columns))
    for r in rows:
        if r.get("retry") == ORIGINAL_EXPIRED:
            print(
                f"{r['job_id']}: the original {original_key(r['job_id'])} has expired; it cannot be retried"
            )
    return status
