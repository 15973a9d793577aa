"""Settings from IMAGEPIPE_* environment variables, validated once at start-up.

Every role reads the same names (docs/design.md, "Configuration"). All problems are collected and
reported together, each naming its variable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from imagepipe.capacity import (
    DEFAULT_SHUTDOWN_DELAY_SECONDS,
    HELD_COPIES,
    budget_from_limit,
    container_memory_limit,
    smallest_budget,
)
from imagepipe.context import Limits
from imagepipe.webhooks.events import EVENT_TYPES
from imagepipe.webhooks.signing import parse_secrets, read_secrets

T = TypeVar("T")
MB = 1024 * 1024
_LIMITS = Limits()
# The delivery queue beside the job queue, when not named.
WEBHOOK_QUEUE_SUFFIX = "-webhooks"
# An event must be delivered or given up before the delivery queue drops it (14 days at most).
MAX_WEBHOOK_HORIZON_SECONDS = 13 * 24 * 3600
# SQS hides a message at most 12 hours: the longest wait between two attempts
# and the longest a received event can stay hidden.
MAX_WEBHOOK_BACKOFF_SECONDS = 12 * 3600
# A deletion intent is hidden on the queue for its whole window: SQS delays at most 15 minutes.
MAX_WEBHOOK_DELETION_CHECK_SECONDS = 900
_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z]([-a-z0-9]*[a-z0-9])?$")


class ConfigError(Exception):
    """Invalid configuration; the message lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        # One problem, one line; several, one line each.
        listed = problems[0] if len(problems) == 1 else "\n  " + "\n  ".join(problems)
        super().__init__(f"invalid configuration: {listed}")
        self.problems = problems


def available_cpus() -> int:
    """CPUs this process may use: affinity and the cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


@dataclass(frozen=True)
class Settings:
    bucket: str = ""
    queue_url: str = ""
    queue_name: str = ""
    s3_endpoint_url: str | None = None
    sqs_endpoint_url: str | None = None
    region: str = "us-east-1"
    # Base of variant URLs; empty: the S3 endpoint and bucket.
    public_url: str = ""
    # Public base of the ingest API for the absolute `status_url` and
    # `Location` it answers; empty: the request's own scheme and Host
    # (X-Forwarded-* are not trusted: behind a proxy, set this).
    api_url: str = ""
    pipelines_file: Path | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    metrics_port: int = 9102
    max_upload_bytes: int = 10 * MB
    # Seconds a client has to send its whole upload.
    upload_timeout_seconds: int = 60
    max_pixels: int = _LIMITS.max_pixels
    max_decoded_pixels: int = _LIMITS.max_decoded_pixels
    # (key id, key) pairs, an id once per key it has; empty: no authentication (development).
    api_keys: tuple[tuple[str, str], ...] = ()
    # Bytes of uploads one ingest holds at once; None: from the container's memory limit.
    upload_budget_bytes: int | None = None
    # Each API key's share of one ingest: uploads per second (0: unlimited) and burst.
    rate_limit_per_second: float = 10.0
    rate_limit_burst: int = 20
    # The ingest's background S3/SQS check behind /readyz.
    backend_check_interval_seconds: float = 5.0
    backend_check_timeout_seconds: float = 2.0
    # Seconds a stopping ingest keeps accepting while it reports not ready.
    shutdown_delay_seconds: int = DEFAULT_SHUTDOWN_DELAY_SECONDS
    cors_origins: tuple[str, ...] = ()
    worker_slots: int = 1
    visibility_timeout_seconds: int = 30
    shutdown_grace_seconds: int = 25
    # The latency objective, enqueue → completed.
    objective_seconds: float = 30.0
    log_level: str = "info"
    log_format: str = "json"
    # NAMESPACE/NAME of the ImagePipeline that deployed this pod (the operator
    # sets it): the `imagepipeline` label of every exported series; empty: none.
    imagepipeline: str = ""
    # Signed webhooks (imagepipe.webhooks): events are emitted only when a URL is set.
    webhook_url: str = ""
    # `whsec_<base64>` (several, space-separated, while rotating); only the deliverer needs it.
    webhook_secret: str = ""
    # Or a file holding them, re-read when it changes (a mounted Secret: rotation without a restart).
    webhook_secret_file: Path | None = None
    webhook_events: tuple[str, ...] = EVENT_TYPES
    # The delivery queue (the outbox); empty: IMAGEPIPE_QUEUE_NAME + WEBHOOK_QUEUE_SUFFIX.
    webhook_queue_url: str = ""
    webhook_queue_name: str = ""
    # How long an event is retried, counted from its state change.
    webhook_horizon_seconds: int = 24 * 3600
    # One attempt, connect to last byte read.
    webhook_timeout_seconds: float = 5.0
    # First retry delay, doubled per attempt up to the maximum (each with jitter).
    webhook_backoff_seconds: float = 5.0
    webhook_backoff_max_seconds: float = 600.0
    # How long a received event stays hidden from every deliverer (longer than
    # one whole delivery); None: the attempt's timeout + 60 s (deliverer.receive_visibility).
    webhook_visibility_seconds: int | None = None
    # Concurrent deliveries per deliverer.
    webhook_concurrency: int = 32
    # Private, loopback and link-local targets are refused unless this is set.
    webhook_allow_private: bool = False
    # A DELETE's deletion intent is resolved this long after it was queued; the DELETE
    # tombstones within half of it or not at all (imagepipe.webhooks.intents).
    webhook_deletion_check_seconds: int = 120

    @property
    def webhooks_enabled(self) -> bool:
        return bool(self.webhook_url)

    def webhook_queue(self) -> tuple[str, str]:
        """(URL, name) of the delivery queue, one of them possibly empty."""
        if self.webhook_queue_url or self.webhook_queue_name:
            return self.webhook_queue_url, self.webhook_queue_name
        name = self.queue_name or self.queue_url.rstrip("/").rsplit("/", 1)[-1]
        return "", f"{name}{WEBHOOK_QUEUE_SUFFIX}"

    def variant_base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        endpoint = self.s3_endpoint_url or f"https://s3.{self.region}.amazonaws.com"
        return f"{endpoint.rstrip('/')}/{self.bucket}"


class _Reader:
    """Parses variables, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def get(self, name: str, parse: Callable[[str], T], default: T, secret: bool = False) -> T:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            shown = "(value hidden)" if secret else repr(raw)
            self.problems.append(f"{name}={shown}: {exc}")
            return default


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a positive integer")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be an integer, 0 or more")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number (1-65535)")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw.lower()

    return parse


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number, 0 or more")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a positive number")
    return value


def _api_keys(raw: str) -> tuple[tuple[str, str], ...]:
    """`id:key,id:key`; an id may repeat (one entry per key: rotation with overlap)."""
    pairs: list[tuple[str, str]] = []
    for position, entry in enumerate(raw.split(","), start=1):
        key_id, sep, key = entry.strip().partition(":")
        if not sep or not key_id or len(key) < 16:
            raise ValueError(f"entry {position} is not id:key with a key of 16+ characters")
        if (key_id, key) in pairs:
            raise ValueError(f"entry {position} repeats the key of id {key_id!r}")
        pairs.append((key_id, key))
    return tuple(pairs)


def _blank_api_keys(env: Mapping[str, str]) -> bool:
    # Blank must not mean "no authentication": that would fail open.
    return "IMAGEPIPE_API_KEYS" in env and not env["IMAGEPIPE_API_KEYS"].strip()


def _existing_file(raw: str) -> Path:
    path = Path(raw)
    if not path.is_file():
        raise ValueError("no such file")
    return path


def _cmyk_profile(raw: str) -> Path:
    # Imported here: the colour step loads lcms2, which only renderers need.
    from imagepipe.steps.colour import read_cmyk_profile

    read_cmyk_profile(Path(raw))
    return Path(raw)


def _resource(raw: str) -> str:
    if not _RESOURCE.match(raw):
        raise ValueError("must be NAMESPACE/NAME of an ImagePipeline (lowercase, one '/')")
    return raw


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")


def _boolean(raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ValueError("must be true or false")


def _webhook_events(raw: str) -> tuple[str, ...]:
    events = tuple(dict.fromkeys(e.strip() for e in raw.split(",") if e.strip()))
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        raise ValueError(f"must be a comma-separated list of {', '.join(EVENT_TYPES)}")
    return events


def _webhook_secret(raw: str) -> str:
    parse_secrets(raw)
    return raw


def _webhook_secret_file(raw: str) -> Path:
    read_secrets(Path(raw))
    return Path(raw)


def _bounded(parse: Callable[[str], T], most: float) -> Callable[[str], T]:
    def check(raw: str) -> T:
        value = parse(raw)
        if float(value) > most:  # type: ignore[arg-type]
            raise ValueError(f"must be at most {int(most) if float(most).is_integer() else most}")
        return value

    return check


def _webhook_settings(r: _Reader) -> dict[str, object]:
    return {
        "webhook_url": r.get("IMAGEPIPE_WEBHOOK_URL", _url, ""),
        "webhook_secret": r.get("IMAGEPIPE_WEBHOOK_SECRET", _webhook_secret, "", secret=True),
        "webhook_secret_file": r.get("IMAGEPIPE_WEBHOOK_SECRET_FILE", _webhook_secret_file, None),
        "webhook_events": r.get("IMAGEPIPE_WEBHOOK_EVENTS", _webhook_events, EVENT_TYPES),
        "webhook_queue_url": r.get("IMAGEPIPE_WEBHOOK_QUEUE_URL", _url, ""),
        "webhook_queue_name": r.get("IMAGEPIPE_WEBHOOK_QUEUE_NAME", str, ""),
        "webhook_horizon_seconds": r.get(
            "IMAGEPIPE_WEBHOOK_HORIZON_SECONDS",
            _bounded(_positive_int, MAX_WEBHOOK_HORIZON_SECONDS),
            24 * 3600,
        ),
        "webhook_timeout_seconds": r.get(
            "IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS", _bounded(_positive_float, 60), 5.0
        ),
        "webhook_backoff_seconds": r.get(
            "IMAGEPIPE_WEBHOOK_BACKOFF_SECONDS", _bounded(_positive_float, MAX_WEBHOOK_BACKOFF_SECONDS), 5.0
        ),
        "webhook_backoff_max_seconds": r.get(
            "IMAGEPIPE_WEBHOOK_BACKOFF_MAX_SECONDS",
            _bounded(_positive_float, MAX_WEBHOOK_BACKOFF_SECONDS),
            600.0,
        ),
        "webhook_visibility_seconds": r.get(
            "IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS", _bounded(_positive_int, MAX_WEBHOOK_BACKOFF_SECONDS), None
        ),
        "webhook_concurrency": r.get("IMAGEPIPE_WEBHOOK_CONCURRENCY", _positive_int, 32),
        "webhook_allow_private": r.get("IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE", _boolean, False),
        "webhook_deletion_check_seconds": r.get(
            "IMAGEPIPE_WEBHOOK_DELETION_CHECK_SECONDS",
            _bounded(_positive_int, MAX_WEBHOOK_DELETION_CHECK_SECONDS),
            120,
        ),
    }


def load_settings(env: Mapping[str, str] | None = None, *, need_backends: bool = True) -> Settings:
    """Read and validate the environment; raise ConfigError naming each bad variable."""
    env = os.environ if env is None else env
    r = _Reader(env)
    endpoint = r.get("IMAGEPIPE_AWS_ENDPOINT_URL", _url, None)
    settings = Settings(
        bucket=r.get("IMAGEPIPE_BUCKET", str, ""),
        queue_url=r.get("IMAGEPIPE_QUEUE_URL", _url, ""),
        queue_name=r.get("IMAGEPIPE_QUEUE_NAME", str, ""),
        s3_endpoint_url=r.get("IMAGEPIPE_S3_ENDPOINT_URL", _url, endpoint),
        sqs_endpoint_url=r.get("IMAGEPIPE_SQS_ENDPOINT_URL", _url, endpoint),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        public_url=r.get("IMAGEPIPE_PUBLIC_URL", _url, ""),
        api_url=r.get("IMAGEPIPE_API_URL", _url, ""),
        pipelines_file=r.get("IMAGEPIPE_PIPELINES_FILE", _existing_file, None),
        host=r.get("IMAGEPIPE_HOST", str, "0.0.0.0"),
        port=r.get("IMAGEPIPE_PORT", _port, 8080),
        metrics_port=r.get("IMAGEPIPE_METRICS_PORT", _port, 9102),
        max_upload_bytes=r.get("IMAGEPIPE_MAX_UPLOAD_BYTES", _positive_int, 10 * MB),
        upload_timeout_seconds=r.get("IMAGEPIPE_UPLOAD_TIMEOUT_SECONDS", _positive_int, 60),
        max_pixels=r.get("IMAGEPIPE_MAX_PIXELS", _positive_int, _LIMITS.max_pixels),
        max_decoded_pixels=r.get("IMAGEPIPE_MAX_DECODED_PIXELS", _positive_int, _LIMITS.max_decoded_pixels),
        api_keys=r.get("IMAGEPIPE_API_KEYS", _api_keys, (), secret=True),
        upload_budget_bytes=r.get("IMAGEPIPE_UPLOAD_BUDGET_BYTES", _positive_int, None),
        rate_limit_per_second=r.get("IMAGEPIPE_RATE_LIMIT_PER_SECOND", _non_negative_float, 10.0),
        rate_limit_burst=r.get("IMAGEPIPE_RATE_LIMIT_BURST", _positive_int, 20),
        backend_check_interval_seconds=r.get(
            "IMAGEPIPE_BACKEND_CHECK_INTERVAL_SECONDS", _positive_float, 5.0
        ),
        backend_check_timeout_seconds=r.get("IMAGEPIPE_BACKEND_CHECK_TIMEOUT_SECONDS", _positive_float, 2.0),
        shutdown_delay_seconds=r.get(
            "IMAGEPIPE_SHUTDOWN_DELAY_SECONDS", _non_negative_int, DEFAULT_SHUTDOWN_DELAY_SECONDS
        ),
        cors_origins=r.get(
            "IMAGEPIPE_CORS_ORIGINS",
            lambda raw: tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip()),
            (),
        ),
        worker_slots=r.get("IMAGEPIPE_WORKER_SLOTS", _positive_int, available_cpus()),
        visibility_timeout_seconds=r.get("IMAGEPIPE_VISIBILITY_TIMEOUT_SECONDS", _positive_int, 30),
        shutdown_grace_seconds=r.get("IMAGEPIPE_SHUTDOWN_GRACE_SECONDS", _positive_int, 25),
        objective_seconds=r.get("IMAGEPIPE_OBJECTIVE_SECONDS", float, 30.0),
        log_level=r.get("IMAGEPIPE_LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info"),
        log_format=r.get("IMAGEPIPE_LOG_FORMAT", _choice("json", "text"), "json"),
        imagepipeline=r.get("IMAGEPIPE_IMAGEPIPELINE", _resource, ""),
        **_webhook_settings(r),  # type: ignore[arg-type]
    )
    # Checked only: render workers read it themselves (steps.colour), in
    # processes that never see these settings.
    r.get("IMAGEPIPE_CMYK_PROFILE", _cmyk_profile, None)
    if _blank_api_keys(env):
        r.problems.append("IMAGEPIPE_API_KEYS: set but blank (unset it to turn authentication off)")
    if need_backends:
        if not settings.bucket:
            r.problems.append("IMAGEPIPE_BUCKET: required (the bucket for originals, status and variants)")
        if not settings.queue_url and not settings.queue_name:
            r.problems.append("IMAGEPIPE_QUEUE_URL or IMAGEPIPE_QUEUE_NAME: one is required")
    if settings.webhook_backoff_seconds > settings.webhook_backoff_max_seconds:
        r.problems.append(
            "IMAGEPIPE_WEBHOOK_BACKOFF_SECONDS: more than IMAGEPIPE_WEBHOOK_BACKOFF_MAX_SECONDS"
        )
    visibility = settings.webhook_visibility_seconds
    if visibility is not None and visibility <= settings.webhook_timeout_seconds:
        r.problems.append(
            "IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS: not more than IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS "
            "(an event would reappear during its own attempt and be sent twice)"
        )
    if settings.webhook_secret and settings.webhook_secret_file:
        r.problems.append(
            "IMAGEPIPE_WEBHOOK_SECRET and IMAGEPIPE_WEBHOOK_SECRET_FILE: both set (set only one)"
        )
    if r.problems:
        raise ConfigError(r.problems)
    return settings


def require_webhook_secret(settings: Settings) -> None:
    """The deliverer's own requirement (the other roles only emit events)."""
    problems = []
    if not settings.webhook_url:
        problems.append("IMAGEPIPE_WEBHOOK_URL: required by the deliverer (where events are sent)")
    if not settings.webhook_secret and not settings.webhook_secret_file:
        problems.append(
            "IMAGEPIPE_WEBHOOK_SECRET or IMAGEPIPE_WEBHOOK_SECRET_FILE: one is required by the deliverer "
            "(whsec_..., signs every event)"
        )
    if problems:
        raise ConfigError(problems)


def upload_budget(settings: Settings, limit: int | None = None) -> int:
    """The ingest's upload budget: IMAGEPIPE_UPLOAD_BUDGET_BYTES, else what the
    container's memory limit leaves (only the ingest needs one; other roles
    may run in smaller containers)."""
    cap = settings.max_upload_bytes
    if settings.upload_budget_bytes is not None:
        if settings.upload_budget_bytes < smallest_budget(cap):
            raise ConfigError(
                [
                    f"IMAGEPIPE_UPLOAD_BUDGET_BYTES={settings.upload_budget_bytes}: less than one maximum "
                    f"upload (IMAGEPIPE_MAX_UPLOAD_BYTES={cap}, held {HELD_COPIES} times)"
                ]
            )
        return settings.upload_budget_bytes
    try:
        return budget_from_limit(container_memory_limit() if limit is None else limit, cap)
    except ValueError as exc:
        raise ConfigError([f"IMAGEPIPE_UPLOAD_BUDGET_BYTES: unset, and {exc}"]) from exc
