"""`spec.webhook` as typed, frozen data: where signed events go, the Secret
that signs them, which events, how long each is retried.

The CRD schema has checked types and bounds already (`schema.problems`);
this adds what a schema cannot say. Defaults that belong to the roles stay
theirs: an unset `horizonSeconds` leaves IMAGEPIPE_WEBHOOK_HORIZON_SECONDS
unset, so the deliverer's own default applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagepipe.config import WEBHOOK_QUEUE_SUFFIX, Settings
from imagepipe.webhooks.events import EVENT_TYPES
from imagepipe.webhooks.targets import parse_target


@dataclass(frozen=True)
class WebhookSecret:
    """`spec.webhook.secretRef`: the Secret key holding `whsec_…`."""

    name: str
    key: str


@dataclass(frozen=True)
class Webhook:
    """`spec.webhook`, present only when the pipeline names one."""

    url: str
    secret: WebhookSecret
    events: tuple[str, ...]  # in the order given; all of EVENT_TYPES when unset
    horizon_seconds: int | None  # None: the deliverer's default
    service_account_name: str | None  # spec.webhook's, else spec.backend's

    def horizon(self) -> int:
        """The horizon the deliverer applies: spec.webhook.horizonSeconds, else its default."""
        return self.horizon_seconds or Settings().webhook_horizon_seconds


def parse_webhook(raw: dict[str, Any] | None, backend_account: str | None) -> Webhook | None:
    """The typed webhook, or None; ValueError names the field."""
    if not raw:
        return None
    url = raw["url"]
    try:
        parse_target(url)  # the deliverer's URL rules; addresses are judged later (webhook_target.py)
    except ValueError as exc:
        raise ValueError(f"spec.webhook.url: {url!r} {exc}") from None
    events = tuple(raw.get("events") or EVENT_TYPES)
    repeated = sorted({e for e in events if events.count(e) > 1})
    if repeated:
        raise ValueError(f"spec.webhook.events: {', '.join(repeated)} given more than once")
    ref = raw["secretRef"]
    return Webhook(
        url=url,
        secret=WebhookSecret(name=ref["name"], key=ref["key"]),
        events=events,
        horizon_seconds=raw.get("horizonSeconds"),
        service_account_name=raw.get("serviceAccountName") or backend_account,
    )


def delivery_queue(queue: str) -> tuple[str, str]:
    """(variable, value) naming the delivery queue beside the job queue `queue`
    (a name or a URL): QUEUE + WEBHOOK_QUEUE_SUFFIX, as a URL when the job queue is one."""
    if queue.startswith(("http://", "https://")):
        return "IMAGEPIPE_WEBHOOK_QUEUE_URL", queue.rstrip("/") + WEBHOOK_QUEUE_SUFFIX
    return "IMAGEPIPE_WEBHOOK_QUEUE_NAME", queue + WEBHOOK_QUEUE_SUFFIX
