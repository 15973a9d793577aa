"""Settings from IMAGEPIPE_* environment variables, validated once at start-up.

Every role reads the same names (docs/design.md, "Configuration"). All problems are collected and
reported together, each naming its variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
MB = 1024 * 1024


class ConfigError(Exception):
    """Invalid configuration; the message lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
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
    pipelines_file: Path | None = None
    host: str = "0.0.0.0"
    port: int = 8080
    metrics_port: int = 9102
    max_upload_bytes: int = 10 * MB
    # Seconds a client has to send its whole upload.
    upload_timeout_seconds: int = 60
    max_pixels: int = 200_000_000
    max_decoded_pixels: int = 50_000_000
    # API key id → key; empty: no authentication (development).
    api_keys: dict[str, str] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    worker_slots: int = 1
    visibility_timeout_seconds: int = 30
    max_receives: int = 5
    shutdown_grace_seconds: int = 25
    # The latency objective, enqueue → completed.
    objective_seconds: float = 30.0
    log_level: str = "info"
    log_format: str = "json"

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


def _api_keys(raw: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for pair in raw.split(","):
        key_id, sep, key = pair.strip().partition(":")
        if not sep or not key_id or len(key) < 16:
            raise ValueError("must be comma-separated id:key pairs with keys of 16+ characters")
        keys[key_id] = key
    return keys


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


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return raw.rstrip("/")


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
        pipelines_file=r.get("IMAGEPIPE_PIPELINES_FILE", _existing_file, None),
        host=r.get("IMAGEPIPE_HOST", str, "0.0.0.0"),
        port=r.get("IMAGEPIPE_PORT", _port, 8080),
        metrics_port=r.get("IMAGEPIPE_METRICS_PORT", _port, 9102),
        max_upload_bytes=r.get("IMAGEPIPE_MAX_UPLOAD_BYTES", _positive_int, 10 * MB),
        upload_timeout_seconds=r.get("IMAGEPIPE_UPLOAD_TIMEOUT_SECONDS", _positive_int, 60),
        max_pixels=r.get("IMAGEPIPE_MAX_PIXELS", _positive_int, 200_000_000),
        max_decoded_pixels=r.get("IMAGEPIPE_MAX_DECODED_PIXELS", _positive_int, 50_000_000),
        api_keys=r.get("IMAGEPIPE_API_KEYS", _api_keys, {}, secret=True),
        cors_origins=r.get(
            "IMAGEPIPE_CORS_ORIGINS",
            lambda raw: tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip()),
            (),
        ),
        worker_slots=r.get("IMAGEPIPE_WORKER_SLOTS", _positive_int, available_cpus()),
        visibility_timeout_seconds=r.get("IMAGEPIPE_VISIBILITY_TIMEOUT_SECONDS", _positive_int, 30),
        max_receives=r.get("IMAGEPIPE_MAX_RECEIVES", _positive_int, 5),
        shutdown_grace_seconds=r.get("IMAGEPIPE_SHUTDOWN_GRACE_SECONDS", _positive_int, 25),
        objective_seconds=r.get("IMAGEPIPE_OBJECTIVE_SECONDS", float, 30.0),
        log_level=r.get("IMAGEPIPE_LOG_LEVEL", _choice("debug", "info", "warning", "error"), "info"),
        log_format=r.get("IMAGEPIPE_LOG_FORMAT", _choice("json", "text"), "json"),
    )
    # Checked only: render workers read it themselves (steps.colour), in
    # processes that never see these settings.
    r.get("IMAGEPIPE_CMYK_PROFILE", _cmyk_profile, None)
    if need_backends:
        if not settings.bucket:
            r.problems.append("IMAGEPIPE_BUCKET: required (the bucket for originals, status and variants)")
        if not settings.queue_url and not settings.queue_name:
            r.problems.append("IMAGEPIPE_QUEUE_URL or IMAGEPIPE_QUEUE_NAME: one is required")
    if r.problems:
        raise ConfigError(r.problems)
    return settings
