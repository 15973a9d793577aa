"""What an ImagePipeline may ask of the operator: the operator's own settings
(IMAGEPIPE_OPERATOR_*, from the chart's `operator.policy` values), read once
at start-up, and the pure check of a resource against them.

Whoever may create an ImagePipeline chooses the image the operator deploys,
the service account and credentials Secret its pods run as, the bucket and
queue the operator's own AWS identity provisions and reads, URLs the
operator fetches (endpointUrl, prometheusUrl), and where the deliverer sends
events (spec.webhook.url: global addresses only unless allowed here; its host
is held to the same allowed URL hosts, by webhook_target, which refuses the
deliverer only). Each
of these can be bounded here; unset means unrestricted, except private
webhook targets, refused unless allowed (docs/design.md, "Trust boundary").
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from .imagepipeline import ROLES, ImagePipeline, InvalidPipeline, parse_imagepipeline

MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class PolicyError(Exception):
    """A bad IMAGEPIPE_OPERATOR_* setting; the message names the variable."""


@dataclass(frozen=True)
class TrustPolicy:
    # Image references must start with one of these; empty: any image.
    image_prefixes: tuple[str, ...] = ()
    # spec.backend.serviceAccountName must be one of these; empty: any.
    service_accounts: tuple[str, ...] = ()
    # Whether spec.backend.credentialsSecret may be used at all.
    credentials_secret: bool = True
    # Full-match patterns for bucket and queue names ("{namespace}" stands
    # for the pipeline's namespace); empty: any.
    bucket_pattern: str = ""
    queue_pattern: str = ""
    # Hosts endpointUrl, prometheusUrl and webhook.url may name: exact, or "*.suffix"; empty: any.
    url_hosts: tuple[str, ...] = ()
    # The most the operator reads of one consumer /metrics or Prometheus answer.
    max_response_bytes: int = MAX_RESPONSE_BYTES
    # Whether spec.webhook.url may reach private, loopback and link-local
    # addresses (in-cluster receivers); the deliverer then gets
    # IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE=true. Link-local includes the cloud
    # metadata service: allow only where pods cannot reach one (or that is meant).
    allow_private_webhooks: bool = False


Env = Mapping[str, str]


def _raw(env: Env, name: str) -> str:
    return env.get(name, "").strip()


def _list(env: Env, name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in _raw(env, name).split(",") if item.strip())


def _pattern(env: Env, name: str) -> str:
    raw = _raw(env, name)
    try:
        re.compile(raw.replace("{namespace}", "ns"))
    except re.error as exc:
        raise PolicyError(f"{name}: not a regular expression: {exc}") from exc
    return raw


def _flag(env: Env, name: str, default: bool) -> bool:
    raw = _raw(env, name).lower()
    if raw and raw not in ("true", "false"):
        raise PolicyError(f"{name}: expected true or false, got {raw!r}")
    return raw == "true" if raw else default


def _positive(env: Env, name: str, default: int) -> int:
    raw = _raw(env, name)
    if raw and (not raw.isdigit() or int(raw) < 1):
        raise PolicyError(f"{name}: expected a positive number of bytes, got {raw!r}")
    return int(raw) if raw else default


def policy_from_env(env: Env = os.environ) -> TrustPolicy:
    """The policy from IMAGEPIPE_OPERATOR_*; raises PolicyError naming a bad variable."""
    return TrustPolicy(
        image_prefixes=_list(env, "IMAGEPIPE_OPERATOR_ALLOWED_IMAGES"),
        service_accounts=_list(env, "IMAGEPIPE_OPERATOR_ALLOWED_SERVICE_ACCOUNTS"),
        credentials_secret=_flag(env, "IMAGEPIPE_OPERATOR_ALLOW_CREDENTIALS_SECRET", True),
        bucket_pattern=_pattern(env, "IMAGEPIPE_OPERATOR_BUCKET_PATTERN"),
        queue_pattern=_pattern(env, "IMAGEPIPE_OPERATOR_QUEUE_PATTERN"),
        url_hosts=_list(env, "IMAGEPIPE_OPERATOR_ALLOWED_URL_HOSTS"),
        max_response_bytes=_positive(env, "IMAGEPIPE_OPERATOR_MAX_RESPONSE_BYTES", MAX_RESPONSE_BYTES),
        allow_private_webhooks=_flag(env, "IMAGEPIPE_OPERATOR_ALLOW_PRIVATE_WEBHOOKS", False),
    )


def host_allowed(url: str, hosts: tuple[str, ...]) -> bool:
    if not hosts:
        return True
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    allowed = [h.lower() for h in hosts]
    return any(host == h or (h.startswith("*.") and host.endswith(h[1:])) for h in allowed)


def _matches(pattern: str, namespace: str, value: str) -> bool:
    if not pattern:
        return True
    return re.fullmatch(pattern.replace("{namespace}", re.escape(namespace)), value) is not None


def _queue_name(queue: str) -> str:
    return queue.rstrip("/").rsplit("/", 1)[-1]


def violations(p: ImagePipeline, policy: TrustPolicy) -> list[str]:
    """Every choice of `p` the operator's policy does not allow, each naming the field."""
    found = []
    if policy.image_prefixes and not p.image.startswith(policy.image_prefixes):
        found.append(f"spec.image: {p.image!r} is not under an allowed prefix {list(policy.image_prefixes)}")
    for role in ROLES:
        account = p.service_account(role)
        if account and policy.service_accounts and account not in policy.service_accounts:
            section = "webhook" if role == "deliverer" else role
            found.append(f"spec.{section}.serviceAccountName: {account!r} is not allowed")
    if p.backend.credentials_secret and not policy.credentials_secret:
        found.append("spec.backend.credentialsSecret: not allowed by the operator (use a service account)")
    if not _matches(policy.bucket_pattern, p.namespace, p.backend.bucket):
        found.append(f"spec.backend.bucket: {p.backend.bucket!r} does not match {policy.bucket_pattern!r}")
    for field, queue in (("queue", p.backend.queue), ("deadLetterQueue", p.backend.dead_letter_queue)):
        if not _matches(policy.queue_pattern, p.namespace, _queue_name(queue)):
            found.append(f"spec.backend.{field}: {queue!r} does not match {policy.queue_pattern!r}")
    for field, url in (
        ("spec.backend.endpointUrl", p.backend.endpoint_url),
        ("spec.scaling.prometheusUrl", p.scaling.prometheus_url),
    ):
        if url and not host_allowed(url, policy.url_hosts):
            found.append(f"{field}: host of {url!r} is not among {list(policy.url_hosts)}")
    return found


def admit(body: Mapping[str, object], policy: TrustPolicy) -> ImagePipeline:
    """The parsed resource, or InvalidPipeline (reason NotAllowed when only the policy refuses it)."""
    p = parse_imagepipeline(body)
    found = violations(p, policy)
    if found:
        raise InvalidPipeline("; ".join(found), reason="NotAllowed")
    return p
