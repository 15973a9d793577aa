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
from imagepipe.geometry import Focus
from imagepipe.jobstore.keys import original_key
from imagepipe.spec import VariantList

# 2: the job's status document changes only by compare-and-swap and may be
# `deleted`; a consumer of version 1 (unconditional writes) would bring a
# deleted job back, so it must leave these messages for a newer consumer.
# Version 2 also carries variant `gravity` and the job's `focus`, which a
# version-1 consumer would refuse as unknown (dead-lettering the job).
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
    # The job's focal point [x, y]; left out when none was given.
    focus: list[float] | None = None

    def to_json(self) -> str:
        data = asdict(self)
        if self.placeholder:
            del data["placeholder"]
        if self.focus is None:
            del data["focus"]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def job_focus(self) -> Focus | None:
        return Focus(*self.focus) if self.focus else None

    def variant_list(self) -> VariantList:
        return VariantList.from_data(self.variants, "message.variants", self.placeholder)


def job_message(
    job_id: str, pipeline: str, spec: VariantList, enqueued_at: str, focus: Focus | None = None
) -> JobMessage:
    return JobMessage(
        job_id=job_id,
        pipeline=pipeline,
        spec=spec.spec_hash,
        variants=spec.to_data(),
        original_key=original_key(job_id),
        enqueued_at=enqueued_at,
        placeholder=spec.placeholder,
        focus=[focus.x, focus.y] if focus else None,
    )


def parse_message(body: str) -> JobMessage:
    """Parse a message body; BadMessage if it is not ours, UnknownVersion if newer."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadMessage(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadMessage("not a JSON object")
    if isinstance(data.get("v"), bool) or data.get("v") not in ACCEPTED_VERSIONS:  # True == 1
        if isinstance(data.get("v"), int) and data["v"] > MESSAGE_VERSION:
            raise UnknownVersion(f"message version {data['v']} is newer than {MESSAGE_VERSION}")
        raise BadMessage(f"unsupported message version {data.get('v')!r}")
    fields = ("job_id", "pipeline", "spec", "variants", "original_key", "enqueued_at")
    missing = [f for f in fields if f not in data]
    if missing:
        raise BadMessage(f"missing fields {missing}")
    if not isinstance(data.get("placeholder", True), bool):
        raise BadMessage("placeholder is not true or false")
    focus = data.get("focus")
    if focus is not None and not _is_focus(focus):
        raise BadMessage("focus is not two numbers from 0 to 1")
    message = JobMessage(
        **{f: data[f] for f in fields}, v=data["v"], placeholder=data.get("placeholder", True), focus=focus
    )
    if not is_job_id(str(message.job_id)) or message.original_key != original_key(message.job_id):
        raise BadMessage("job_id or original_key is malformed")
    try:
        spec = message.variant_list()
    except InvalidSpec as exc:
        raise BadMessage(exc.message) from exc
    if spec.spec_hash != message.spec:
        raise BadMessage(f"spec hash {message.spec!r} does not match the variants")
    return message


def _is_focus(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(c, int | float) and not isinstance(c, bool) and 0 <= c <= 1 for c in value)
    )
