"""An ImagePipeline resource → a validated, fully defaulted `Pipeline`.

Every default of the CRD is applied here (from the shipped schema), so the
operator's behaviour never depends on API-server defaulting; types, bounds
and the checks no schema can express (min ≤ max, names that fit the
children, variants the core accepts) raise `InvalidPipeline`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagepipe.errors import InvalidSpec
from imagepipe.spec import DEFAULT_PIPELINE, PipelineSpec, parse_pipelines

from .schema import apply_defaults, problems, spec_schema

# The latency histogram's bucket bounds (DESIGN.md): the objective must be one.
LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 40, 60, 120, 300)
# The longest child suffix is "-consumer"; names must stay DNS-1035 labels (63).
MAX_NAME_LENGTH = 63 - len("-consumer")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


class InvalidPipeline(Exception):
    """An ImagePipeline that cannot be reconciled; `reason` is a CamelCase condition reason."""

    def __init__(self, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Pipeline:
    """One ImagePipeline, defaulted and validated."""

    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    pipelines: dict[str, PipelineSpec]

    def child(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    @property
    def queue_is_url(self) -> bool:
        return str(self.spec["backend"]["queue"]).startswith(("http://", "https://"))

    @property
    def dead_letter_queue(self) -> str:
        backend = self.spec["backend"]
        return str(backend.get("deadLetterQueue") or f"{backend['queue']}-dlq")


def parse_pipeline(body: Mapping[str, Any]) -> Pipeline:
    """Validate and default an ImagePipeline object (as kopf hands it over)."""
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name", ""))
    if len(name) > MAX_NAME_LENGTH or not _DNS_1035.match(name):
        raise InvalidPipeline(
            f"metadata.name: {name!r} must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters "
            "(lowercase letters, digits, '-'; starting with a letter)",
            reason="InvalidName",
        )
    raw_spec = body.get("spec")
    schema = spec_schema()
    found = problems(schema, raw_spec if raw_spec is not None else {}, "spec")
    if found:
        raise InvalidPipeline("; ".join(found))
    spec: dict[str, Any] = apply_defaults(schema, raw_spec)
    _check_semantics(spec)
    return Pipeline(
        name=name,
        namespace=str(metadata.get("namespace") or "default"),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        spec=spec,
        pipelines=_pipelines(spec["variants"]),
    )


def _check_semantics(spec: dict[str, Any]) -> None:
    scaling = spec["scaling"]
    if scaling["minReplicas"] > scaling["maxReplicas"]:
        raise InvalidPipeline(
            f"spec.scaling: minReplicas ({scaling['minReplicas']}) exceeds"
            f" maxReplicas ({scaling['maxReplicas']})"
        )
    if spec["slo"]["latencySeconds"] not in LATENCY_BUCKETS:
        raise InvalidPipeline(f"spec.slo.latencySeconds: must be one of {list(LATENCY_BUCKETS)}")
    backend = spec["backend"]
    if backend.get("deadLetterQueue") == backend["queue"]:
        raise InvalidPipeline("spec.backend.deadLetterQueue: must differ from the queue")


def variant_to_core(variant: Mapping[str, Any]) -> dict[str, Any]:
    """A CRD variant (flat format/quality) in the pipelines file's shape (nested encoding)."""
    core = {key: variant[key] for key in ("name", "width", "height", "method")}
    core["encoding"] = {"format": variant["format"], "quality": variant["quality"]}
    return core


def _pipelines(variants: list[dict[str, Any]]) -> dict[str, PipelineSpec]:
    try:
        return parse_pipelines({DEFAULT_PIPELINE: [variant_to_core(v) for v in variants]}, "spec.variants")
    except InvalidSpec as exc:
        raise InvalidPipeline(str(exc)) from exc
