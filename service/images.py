"""The /v1/images routes: upload, status, delete."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from imagepipe.errors import BackendUnavailable, BadRequest, ImagePipeError, UploadTimeout
from imagepipe.geometry import Focus, parse_focus
from imagepipe.jobs import is_job_id, job_message, new_job_id, now_iso
from imagepipe.jobstore.documents import public_document, queued_doc
from imagepipe.jobstore.transitions import DELETED, Queue, Refused, StatusDoc, state_of
from imagepipe.processing import probe
from imagepipe.service.budget import Charge
from imagepipe.service.errors import ApiError
from imagepipe.service.idempotency import Idempotency, Replay, body_hash, parse_key
from imagepipe.service.state import Ingest, ingest
from imagepipe.service.upload import Upload, check_expect, read_upload
from imagepipe.sniff import ACCEPTED
from imagepipe.spec import DEFAULT_PIPELINE

log = logging.getLogger("imagepipe.service")
TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")
CONTENT_TYPES = {fmt.lower(): mime for mime, fmt in ACCEPTED.items()}
# An idempotency claim outlives the upload's own deadline by this much (its
# backend calls) before another request may take the key over.
CLAIM_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class Accepted:
    job_id: str
    status: str
    created: bool  # False: an idempotent replay of an earlier upload


def trace_id(request: web.Request) -> str:
    """The W3C trace id from `traceparent` when there is a valid one, else a new one."""
    match = TRACEPARENT.fullmatch(request.headers.get("traceparent", "").strip())
    return match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)


def unknown_pipeline(name: str, known: dict[str, Any]) -> ApiError:
    shown = name if len(name) <= 64 else name[:64] + "..."
    return ApiError(400, "unknown_pipeline", f"no pipeline named {shown!r}; known: {sorted(known)}")


async def accept_upload(request: web.Request) -> Accepted:
    """Everything an upload route does up to a durable job; rejections are counted."""
    app = ingest(request)
    try:
        return await _accept(request, app)
    except (ApiError, ImagePipeError) as exc:
        app.metrics.rejected.labels(exc.code).inc()
        raise


def _focus(text: str | None) -> Focus | None:
    if text is None:
        return None
    try:
        return parse_focus(text)
    except ValueError as exc:
        raise BadRequest(f"focus: {exc}") from None


async def _read_in_time(request: web.Request, app: Ingest, charge: Charge) -> Upload:
    # A client that trickles its body would otherwise hold up to the byte cap
    # in memory for as long as it likes; many of them would exhaust it.
    seconds = app.settings.upload_timeout_seconds
    try:
        async with asyncio.timeout(seconds):
            return await read_upload(request, app.settings.max_upload_bytes, charge)
    except TimeoutError as exc:
        raise UploadTimeout(f"the upload did not arrive within {seconds} seconds") from exc


async def _accept(request: web.Request, app: Ingest) -> Accepted:
    # Everything that needs no body comes first: a refused client has sent
    # none yet when it asked for `100 Continue`.
    owner = app.auth.owner(request)
    check_expect(request)
    app.limiter.check(owner)
    key = parse_key(request.headers.get("Idempotency-Key"))
    query_pipeline = request.query.get("pipeline")
    if query_pipeline is not None and query_pipeline not in app.pipelines:
        raise unknown_pipeline(query_pipeline, app.pipelines)
    query_focus = request.query.get("focus")
    _focus(query_focus)  # refused before the body is read
    charge = app.budget.charge()
    try:
        upload = await _read_in_time(request, app, charge)
        name = upload.pipeline or query_pipeline or DEFAULT_PIPELINE
        focus = _focus(upload.focus if upload.focus is not None else query_focus)
        return await _store(request, app, owner, key, name, upload, focus)
    finally:
        # The body is in memory until the S3 write has finished.
        charge.release()


async def _store(
    request: web.Request,
    app: Ingest,
    owner: str | None,
    key: str | None,
    name: str,
    upload: Upload,
    focus: Focus | None,
) -> Accepted:
    if name not in app.pipelines:
        raise unknown_pipeline(name, app.pipelines)
    spec = app.pipelines[name]
    source = probe(upload.data, spec, app.limits)
    store = app.jobs()
    job_id, trace = new_job_id(), trace_id(request)

    idempotency, claim = None, None
    if key is not None:
        claim_seconds = app.settings.upload_timeout_seconds + CLAIM_MARGIN_SECONDS
        idempotency = Idempotency(store, owner, key, body_hash(name, upload.data, focus), claim_seconds)
        held = await idempotency.claim(job_id)
        if isinstance(held, Replay):
            return Accepted(held.job_id, str(held.response.get("status", "queued")), created=False)
        claim = held

    created_at = now_iso()
    try:
        await store.put_original(
            job_id, upload.data, CONTENT_TYPES.get(source.format, "application/octet-stream")
        )
        created = await store.apply(
            job_id, Queue(queued_doc(job_id, name, spec, source, owner, created_at, focus))
        )
        if isinstance(created, Refused):  # pragma: no cover - a fresh UUID4 is never taken
            raise BackendUnavailable(f"job id {job_id} already exists")
        await app.enqueue(job_message(job_id, name, spec, created_at, focus), trace)
    except BackendUnavailable:
        await store.discard(job_id)
        if idempotency is not None and claim is not None:
            await idempotency.release(claim)
        raise
    if idempotency is not None and claim is not None:
        await idempotency.finish(claim, {"job_id": job_id, "status": "queued"})
    app.metrics.upload_bytes.observe(len(upload.data))
    log.info(
        "upload accepted",
        extra={
            "job_id": job_id,
            "trace_id": trace,
            "pipeline": name,
            "owner": owner,
            "format": source.format,
            "width": source.width,
            "height": source.height,
            "bytes": source.bytes,
        },
    )
    return Accepted(job_id, "queued", created=True)


def api_base(request: web.Request) -> str:
    """IMAGEPIPE_API_URL, else this request's scheme and Host as it reached us:
    absolute, so that a page on another origin can fetch the status URL."""
    return ingest(request).settings.api_url or f"{request.scheme}://{request.host}"


async def upload(request: web.Request) -> web.Response:
    accepted = await accept_upload(request)
    status_url = f"{api_base(request)}/v1/images/{accepted.job_id}"
    body = {"job_id": accepted.job_id, "status": accepted.status, "status_url": status_url}
    return web.json_response(body, status=202 if accepted.created else 200, headers={"Location": status_url})


async def expect_upload(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue` is answered by the upload itself (upload.read_upload),
    inside the middlewares (so refusals are counted) and only once it is
    authenticated, within its rate and charged; aiohttp's default would send
    `100 Continue` to anyone at once."""
    return None


async def stored_document(request: web.Request) -> tuple[str | None, StatusDoc]:
    """The caller and the job's stored document, a tombstone too; 404 for an
    unknown job or another key's."""
    app = ingest(request)
    owner = app.auth.owner(request)
    job_id = request.match_info["job_id"]
    if not is_job_id(job_id):
        raise BadRequest("the job id is not a UUID4 string")
    doc = (await app.jobs().read(job_id)).doc
    if doc is None or not app.auth.may_see(owner, doc.get("owner")):
        raise not_found()
    return owner, doc


def not_found() -> ApiError:
    return ApiError(404, "not_found", "no such job")


async def load_job(request: web.Request) -> tuple[str | None, dict[str, Any]]:
    """The caller and the job's status document as clients see it; 404 for a
    deleted job, an unknown one or another key's."""
    owner, doc = await stored_document(request)
    if state_of(doc) == DELETED:
        raise not_found()
    return owner, public_document(doc, ingest(request).settings.variant_base_url())


async def get_status(request: web.Request) -> web.Response:
    """The document, and with webhooks on its `deliveries` (never part of an event's data)."""
    _, doc = await load_job(request)
    app = ingest(request)
    if app.settings.webhooks_enabled:
        doc = {**doc, "deliveries": await app.jobs().deliveries(str(doc["job_id"]))}
    return web.json_response(doc)


async def delete(request: web.Request) -> web.Response:
    """Tombstone the job, remove its outputs, emit `image.deleted`, then 204.

    With webhooks on, a deletion intent goes on the delivery queue first
    (`_tombstone`), so the event is sent even if this process dies before its
    own emission. A repeat by the owner of a job already deleted (a client
    whose DELETE failed or timed out) removes and emits again, and answers 404
    as before: a deleted job is no job. Any failure answers 503, and a repeat
    finishes the work."""
    app = ingest(request)
    _, stored = await stored_document(request)
    store, job_id = app.jobs(), str(stored["job_id"])
    doc: StatusDoc | None = stored
    if state_of(doc) != DELETED:
        decided = await _tombstone(app, job_id)
        if not isinstance(decided, Refused):
            await store.remove_outputs(job_id)
            await app.emit(decided)
            log.info("job deleted", extra={"job_id": job_id})
            return web.Response(status=204)
        # A concurrent request deleted it first.
        doc = (await store.read(job_id)).doc
    await store.remove_outputs(job_id)
    await app.emit(doc)
    raise not_found()


async def _tombstone(app: Ingest, job_id: str) -> StatusDoc | Refused:
    """The deletion intent (when the deletion emits), then the tombstone by its deadline.

    The intent is queued first, so a tombstone never exists without something
    on the durable outbox that reports it; the deadline keeps the tombstone
    inside the window after which the deliverer takes a job not deleted as a
    DELETE that failed (imagepipe.webhooks.intents)."""
    assert app.outbox is not None
    deadline = await app.outbox.intend_deletion(job_id)
    try:
        async with asyncio.timeout_at(deadline):
            return await app.jobs().tombstone(job_id)
    except TimeoutError:
        raise BackendUnavailable("the deletion could not be made durable in time; retry later") from None
