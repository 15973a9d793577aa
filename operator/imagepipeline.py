"""The ImagePipeline resource as typed, frozen data, parsed once.

`parse_imagepipeline` applies every default of the CRD (from the shipped
schema, so behaviour never depends on API-server defaulting), checks the
schema's types and bounds, then the rules no schema can express (min ≤ max,
names that fit the children, variants the core accepts), and builds the
model below. Every error names the field: `spec.scaling.maxReplicas: …`.
Readers use the typed fields; nothing downstream looks into the raw spec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from imagepipe.errors import InvalidSpec
from imagepipe.slo import LATENCY_BUCKETS
from imagepipe.spec import DEFAULT_PIPELINE, VariantList, parse_pipelines

from .ingest_memory import IngestMemory, MemoryTooSmall, ingest_memory, quantity_bytes
from .schema import apply_defaults, problems, spec_schema
from .webhookspec import Webhook, parse_webhook

# The longest child suffix is "-consumer"; names must stay DNS-1035 labels (63).
MAX_NAME_LENGTH = 63 - len("-consumer")
# With spec.webhook there is also NAME-deliverer (a shorter bound only then:
# pipelines without a webhook keep the names they had).
MAX_NAME_LENGTH_WITH_WEBHOOK = 63 - len("-deliverer")
ROLES = ("ingest", "consumer", "deliverer")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
Quantities = Mapping[str, str | int]


class InvalidPipeline(Exception):
    """An ImagePipeline that cannot be reconciled; `reason` is a CamelCase condition reason."""

    def __init__(self, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Backend:
    """`spec.backend`: where jobs and images live, and how the pods reach them."""

    bucket: str
    queue: str  # a name or a URL
    dead_letter_queue: str  # a name or a URL; QUEUE-dlq when not given
    region: str
    endpoint_url: str | None  # one endpoint for S3 and SQS; None is AWS
    credentials_secret: str | None  # Secret loaded as the pods' environment
    service_account_name: str | None  # None: the namespace's default account
    provision: bool  # create what is missing
    public_read: bool | None  # a public-read policy on variants/*; None: only on a bucket we created
    max_receives: int
    visibility_timeout_seconds: int

    @property
    def queue_is_url(self) -> bool:
        return self.queue.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Limits:
    """`spec.limits`: what one upload may be."""

    max_upload_bytes: int
    upload_timeout_seconds: int
    max_pixels: int


@dataclass(frozen=True)
class Slo:
    """`spec.slo`: `latency_seconds` is one of the latency histogram's bucket bounds."""

    latency_seconds: float
    target: float  # the fraction of jobs that must finish within it


@dataclass(frozen=True)
class Scaling:
    """`spec.scaling`: the autoscaler's (or KEDA's) parameters."""

    engine: str  # builtin or keda
    min_replicas: int
    max_replicas: int
    slots_per_pod: int
    pod_startup_seconds: float
    scale_down_stabilisation_seconds: int
    burst_factor: float
    target_utilisation: float
    expected_service_seconds: float  # assumed until measured
    prometheus_url: str | None  # None: scrape the consumer pods


@dataclass(frozen=True)
class Consumer:
    """`spec.consumer`."""

    shutdown_grace_seconds: int
    service_account_name: str | None  # spec.consumer's, else spec.backend's


@dataclass(frozen=True)
class IngestService:
    """`spec.ingest.service`."""

    type: str
    port: int


@dataclass(frozen=True)
class Ingress:
    """`spec.ingest.ingress`, present only when a host is set."""

    host: str
    class_name: str | None
    tls_secret_name: str | None


@dataclass(frozen=True)
class SecretKey:
    """One key of one Secret."""

    name: str
    key: str


@dataclass(frozen=True)
class Ingest:
    """`spec.ingest`."""

    replicas: int
    service_account_name: str | None  # spec.ingest's, else spec.backend's
    service: IngestService
    ingress: Ingress | None
    api_keys_secret: SecretKey | None
    auth: str  # apiKeys (an Ingress needs api_keys_secret) or none (explicitly open)
    cors_origins: tuple[str, ...]
    # Each key's uploads per second (0: no limit) and burst, per pod.
    rate_per_second: float
    rate_burst: int
    shutdown_delay_seconds: int
    # From spec.ingest.uploadBudgetBytes and resources.ingest.limits.memory (ingest_memory.py).
    memory: IngestMemory


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one role's container; empty means the operator's defaults."""

    requests: Quantities
    limits: Quantities


@dataclass(frozen=True)
class ImagePipeline:
    """One ImagePipeline resource, defaulted and validated."""

    name: str
    namespace: str
    uid: str
    generation: int
    image: str
    image_pull_policy: str
    log_level: str
    public_url: str | None
    backend: Backend
    limits: Limits
    slo: Slo
    scaling: Scaling
    consumer: Consumer
    ingest: Ingest
    resources: Mapping[str, Resources]  # by role: ROLES
    network_policy: bool  # build the NetworkPolicies of both roles
    # The pipelines file the roles read: one variant list, DEFAULT_PIPELINE.
    pipelines: Mapping[str, VariantList]
    # spec.webhook; None: no events, no deliverer.
    webhook: Webhook | None = None

    def service_account(self, role: str) -> str | None:
        """The service account the `role` pods run as (ROLES); None: the namespace's default."""
        if role == "deliverer":
            return self.webhook.service_account_name if self.webhook else None
        return self.ingest.service_account_name if role == "ingest" else self.consumer.service_account_name

    def child(self, suffix: str) -> str:
        return f"{self.name}-{suffix}"

    @property
    def key(self) -> str:
        """`NAMESPACE/NAME`: the `imagepipeline` label of every series about it."""
        return f"{self.namespace}/{self.name}"


def parse_imagepipeline(body: Mapping[str, Any]) -> ImagePipeline:
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
    webhook = _webhook(spec)
    if webhook and len(name) > MAX_NAME_LENGTH_WITH_WEBHOOK:
        raise InvalidPipeline(
            f"metadata.name: {name!r} is too long for {name}-deliverer: at most "
            f"{MAX_NAME_LENGTH_WITH_WEBHOOK} characters with spec.webhook",
            reason="InvalidName",
        )
    return ImagePipeline(
        name=name,
        namespace=str(metadata.get("namespace") or "default"),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        image=spec["image"],
        image_pull_policy=spec["imagePullPolicy"],
        log_level=spec["logLevel"],
        public_url=spec.get("publicUrl"),
        backend=_backend(spec["backend"]),
        limits=_limits(spec["limits"]),
        slo=_slo(spec["slo"]),
        scaling=_scaling(spec["scaling"]),
        consumer=Consumer(
            shutdown_grace_seconds=spec["consumer"]["shutdownGraceSeconds"],
            service_account_name=spec["consumer"].get("serviceAccountName")
            or spec["backend"].get("serviceAccountName"),
        ),
        ingest=_ingest(spec, spec["resources"]["ingest"], spec["limits"]["maxUploadBytes"]),
        network_policy=spec["networkPolicy"]["enabled"],
        resources=MappingProxyType({role: _resources(spec["resources"][role]) for role in ROLES}),
        pipelines=MappingProxyType(_pipelines(spec["variants"], spec.get("placeholders", True))),
        webhook=webhook,
    )


def _webhook(spec: dict[str, Any]) -> Webhook | None:
    try:
        return parse_webhook(spec.get("webhook"), spec["backend"].get("serviceAccountName"))
    except ValueError as exc:
        raise InvalidPipeline(str(exc)) from exc


def _backend(raw: dict[str, Any]) -> Backend:
    if raw.get("deadLetterQueue") == raw["queue"]:
        raise InvalidPipeline("spec.backend.deadLetterQueue: must differ from spec.backend.queue")
    return Backend(
        bucket=raw["bucket"],
        queue=raw["queue"],
        dead_letter_queue=raw.get("deadLetterQueue") or f"{raw['queue']}-dlq",
        region=raw["region"],
        endpoint_url=raw.get("endpointUrl"),
        credentials_secret=raw.get("credentialsSecret"),
        service_account_name=raw.get("serviceAccountName"),
        provision=raw["provision"],
        public_read=raw.get("publicRead"),
        max_receives=raw["maxReceives"],
        visibility_timeout_seconds=raw["visibilityTimeoutSeconds"],
    )


def _limits(raw: dict[str, Any]) -> Limits:
    return Limits(
        max_upload_bytes=raw["maxUploadBytes"],
        upload_timeout_seconds=raw["uploadTimeoutSeconds"],
        max_pixels=raw["maxPixels"],
    )


def _slo(raw: dict[str, Any]) -> Slo:
    latency = float(raw["latencySeconds"])
    if latency not in LATENCY_BUCKETS:
        raise InvalidPipeline(f"spec.slo.latencySeconds: must be one of {list(LATENCY_BUCKETS)}")
    return Slo(latency_seconds=latency, target=float(raw["target"]))


def _scaling(raw: dict[str, Any]) -> Scaling:
    if raw["minReplicas"] > raw["maxReplicas"]:
        raise InvalidPipeline(
            f"spec.scaling.maxReplicas: must be ≥ minReplicas ({raw['maxReplicas']} < {raw['minReplicas']})"
        )
    return Scaling(
        engine=raw["engine"],
        min_replicas=raw["minReplicas"],
        max_replicas=raw["maxReplicas"],
        slots_per_pod=raw["slotsPerPod"],
        pod_startup_seconds=float(raw["podStartupSeconds"]),
        scale_down_stabilisation_seconds=raw["scaleDownStabilisationSeconds"],
        burst_factor=float(raw["burstFactor"]),
        target_utilisation=float(raw["targetUtilisation"]),
        expected_service_seconds=float(raw["expectedServiceSeconds"]),
        prometheus_url=raw.get("prometheusUrl"),
    )


def _ingest_memory(raw: dict[str, Any], resources: dict[str, Any], max_upload_bytes: int) -> IngestMemory:
    limit = (resources.get("limits") or {}).get("memory")
    try:
        return ingest_memory(
            raw.get("uploadBudgetBytes"), None if limit is None else quantity_bytes(limit), max_upload_bytes
        )
    except MemoryTooSmall as exc:
        raise InvalidPipeline(str(exc), reason="IngestMemoryTooSmall") from exc
    except ValueError as exc:
        raise InvalidPipeline(f"spec.resources.ingest.limits.memory: {exc}") from exc


def _ingest(spec: dict[str, Any], resources: dict[str, Any], max_upload_bytes: int) -> Ingest:
    raw = spec["ingest"]
    ingress = raw.get("ingress") or {}
    keys = raw.get("apiKeysSecret")
    if raw["auth"] == "none" and keys:
        raise InvalidPipeline("spec.ingest.auth: none contradicts spec.ingest.apiKeysSecret")
    if ingress.get("host") and not keys and raw["auth"] != "none":
        raise InvalidPipeline(
            "spec.ingest.ingress: an Ingress without spec.ingest.apiKeysSecret would serve uploads "
            "to anyone; set apiKeysSecret, or spec.ingest.auth: none to mean it",
            reason="InsecureIngress",
        )
    return Ingest(
        replicas=raw["replicas"],
        service_account_name=raw.get("serviceAccountName") or spec["backend"].get("serviceAccountName"),
        service=IngestService(type=raw["service"]["type"], port=raw["service"]["port"]),
        ingress=Ingress(
            host=ingress["host"],
            class_name=ingress.get("className"),
            tls_secret_name=ingress.get("tlsSecretName"),
        )
        if ingress.get("host")
        else None,
        api_keys_secret=SecretKey(name=keys["name"], key=keys["key"]) if keys else None,
        auth=raw["auth"],
        cors_origins=tuple(raw.get("corsOrigins") or ()),
        rate_per_second=float(raw["rateLimit"]["perSecond"]),
        rate_burst=raw["rateLimit"]["burst"],
        shutdown_delay_seconds=raw["shutdownDelaySeconds"],
        memory=_ingest_memory(raw, resources, max_upload_bytes),
    )


def _resources(raw: dict[str, Any]) -> Resources:
    return Resources(
        requests=MappingProxyType(dict(raw.get("requests") or {})),
        limits=MappingProxyType(dict(raw.get("limits") or {})),
    )


def variant_to_core(variant: Mapping[str, Any]) -> dict[str, Any]:
    """A CRD variant (flat format/quality) in the pipelines file's shape (nested encoding)."""
    core = {key: variant[key] for key in ("name", "width", "height", "method")}
    core["encoding"] = {"format": variant["format"], "quality": variant["quality"]}
    if "gravity" in variant:
        core["gravity"] = variant["gravity"]
    return core


def _pipelines(variants: list[dict[str, Any]], placeholders: bool) -> dict[str, VariantList]:
    try:
        pipelines = parse_pipelines(
            {DEFAULT_PIPELINE: [variant_to_core(v) for v in variants]}, "spec.variants"
        )
        # spec.placeholders changes no variant and needs no check of its own.
        return {name: replace(spec, placeholder=placeholders) for name, spec in pipelines.items()}
    except InvalidSpec as exc:
        raise InvalidPipeline(str(exc)) from exc
