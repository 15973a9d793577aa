"""The contracts every role shares: job ids, S3 keys, status documents and
queue messages (docs/design.md, "Contracts"). Pure functions over plain data."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from imagepipe.context import RenderedVariant, SourceInfo
from imagepipe.errors import InvalidSpec
from imagepipe.placeholders import Placeholder
from imagepipe.spec import PipelineSpec

MESSAGE_VERSION = 1
QUEUED, PROCESSING, COMPLETED, FAILED = "queued", "processing", "completed", "failed"
VARIANT_CACHE_CONTROL = "public, max-age=31536000, immutable"
StatusDoc = dict[str, Any]


class BadMessage(ValueError):
    """A queue message that cannot be parsed: it can never be processed."""


class UnknownVersion(ValueError):
    """A message from a newer producer: leave it for a newer consumer."""


def new_job_id() -> str:
    return str(uuid.uuid4())


def is_job_id(value: str) -> bool:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return parsed.version == 4 and str(parsed) == value


def original_key(job_id: str) -> str:
    return f"originals/{job_id}"


def status_key(job_id: str) -> str:
    return f"jobs/{job_id}.json"


def variant_key(job_id: str, spec_hash: str, name: str, extension: str) -> str:
    return f"variants/{job_id}/{spec_hash}/{name}.{extension}"


def variants_prefix(job_id: str) -> str:
    return f"variants/{job_id}/"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def queued_status(
    job_id: str, pipeline: str, spec: PipelineSpec, source: SourceInfo, owner: str | None, created_at: str
) -> StatusDoc:
    return {
        "job_id": job_id,
        "status": QUEUED,
        "pipeline": pipeline,
        "spec": spec.spec_hash,
        "source": asdict(source),
        "variants": {},
        "error": None,
        "created_at": created_at,
        "started_at": None,
        "completed_at": None,
        "attempts": 0,
        "owner": owner,
    }


def processing_status(doc: StatusDoc, attempts: int) -> StatusDoc:
    return {**doc, "status": PROCESSING, "started_at": now_iso(), "attempts": attempts}


def completed_status(
    doc: StatusDoc,
    variants: list[RenderedVariant],
    spec_hash: str,
    base_url: str,
    timings: dict[str, float],
    placeholder: Placeholder | None = None,
) -> StatusDoc:
    job_id = doc["job_id"]
    return {
        **doc,
        "status": COMPLETED,
        "spec": spec_hash,
        "variants": {
            r.variant.name: {
                "url": f"{base_url}/{variant_key(job_id, spec_hash, r.variant.name, r.variant.extension)}",
                "width": r.width,
                "height": r.height,
                "format": r.variant.encoding.format,
                "bytes": len(r.data),
            }
            for r in variants
        },
        "placeholder": asdict(placeholder) if placeholder else None,
        "error": None,
        "completed_at": now_iso(),
        "timings": {stage: round(seconds, 4) for stage, seconds in timings.items()},
    }


def failed_status(doc: StatusDoc, code: str, message: str) -> StatusDoc:
    return {**doc, "status": FAILED, "error": {"code": code, "message": message}, "completed_at": now_iso()}


@dataclass(frozen=True)
class JobMessage:
    """The SQS message body: everything a consumer needs to render the job."""

    job_id: str
    pipeline: str
    spec: str
    variants: list[dict[str, Any]]
    original_key: str
    enqueued_at: str
    v: int = MESSAGE_VERSION
    # False: the pipeline turns placeholders off. Left out of the body when
    # true, so that the messages of such pipelines stay as they were.
    placeholder: bool = True

    def to_json(self) -> str:
        data = asdict(self)
        if self.placeholder:
            del data["placeholder"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def pipeline_spec(self) -> PipelineSpec:
        return PipelineSpec.from_data(self.variants, "message.variants", self.placeholder)


def job_message(job_id: str, pipeline: str, spec: PipelineSpec, enqueued_at: str) -> JobMessage:
    return JobMessage(
        job_id=job_id,
        pipeline=pipeline,
        spec=spec.spec_hash,
        variants=spec.to_data(),
        original_key=original_key(job_id),
        enqueued_at=enqueued_at,
        placeholder=spec.placeholder,
    )


def parse_message(body: str) -> JobMessage:
    """Parse a message body; BadMessage if it is not ours, UnknownVersion if newer."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadMessage("not a JSON object")
    if data.get("v") != MESSAGE_VERSION:
        if isinstance(data.get("v"), int) and data["v"] > MESSAGE_VERSION:
            raise UnknownVersion(f"message version {data['v']} is newer than {MESSAGE_VERSION}")
        raise BadMessage(f"unsupported message version {data.get('v')!r}")
    fields = ("job_id", "pipeline", "spec", "variants", "original_key", "enqueued_at")
    missing = [f for f in fields if f not in data]
    if missing:
        raise BadMessage(f"missing fields {missing}")
    if not isinstance(data.get("placeholder", True), bool):
        raise BadMessage("placeholder is not true or false")
    message = JobMessage(**{f: data[f] for f in fields}, placeholder=data.get("placeholder", True))
    if not is_job_id(str(message.job_id)) or message.original_key != original_key(message.job_id):
        raise BadMessage("job_id or original_key is malformed")
    try:
        spec = message.pipeline_spec()
    except InvalidSpec as exc:
        raise BadMessage(exc.message) from exc
    if spec.spec_hash != message.spec:
        raise BadMessage(f"spec hash {message.spec!r} does not match the variants")
    return message
