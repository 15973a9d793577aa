"""The contracts every role shares: job ids and queue messages (docs/design.md,
"Contracts"). Pure functions over plain data; keys and status documents
belong to the job store (imagepipe.jobstore)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from imagepipe.errors import InvalidSpec
from imagepipe.jobstore.keys import original_key
from imagepipe.spec import PipelineSpec

# 2: the job's status document changes only by compare-and-swap and may be
# `deleted`; a consumer of version 1 (unconditional writes) would bring a
# deleted job back, so it must leave these messages for a newer consumer.
MESSAGE_VERSION = 2
# Versions this consumer processes: 1 is the same body from an ingest of the
# previous release, still in the queue during a rollout.
ACCEPTED_VERSIONS = frozenset({1, 2})


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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    if data.get("v") not in ACCEPTED_VERSIONS:
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
