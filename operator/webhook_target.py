"""The operator's check of `spec.webhook.url` before it builds the deliverer:
the URL rules and a DNS resolution (`imagepipe.webhooks.targets`, the same
rules the deliverer applies to every attempt), under the operator's policy.

A host outside the operator's IMAGEPIPE_OPERATOR_ALLOWED_URL_HOSTS is refused
first, without resolving it (`WebhookTargetNotAllowed`); then a rule broken,
or an address not allowed (`WebhookTargetUnsafe`). Refused → no deliverer (an
existing one is pruned), `Ready=False` with that reason; the rest of the
pipeline keeps running and events wait in the delivery queue, as for private
addresses, the other webhook policy: a receiver is one feature of a
pipeline, not a reason to stop its images. A name
that does not resolve now is only a warning: the deliverer is built and
retries (refusing it would flap with DNS). The drift timer re-checks every
reconcile, so a name that starts resolving to a private address loses its
deliverer within one interval; between checks the deliverer's own
per-attempt vetting is the guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagepipe.problems import Problem
from imagepipe.webhooks.targets import TargetProblem, check_target

from .deliverer import DelivererChoice
from .imagepipeline import ImagePipeline
from .trust import TrustPolicy, host_allowed

UNSAFE_REASON = "WebhookTargetUnsafe"
NOT_ALLOWED_REASON = "WebhookTargetNotAllowed"
POLICY_HINT = (
    "the operator admits private, loopback and link-local receivers with"
    " operator.policy.allowPrivateWebhooks (IMAGEPIPE_OPERATOR_ALLOW_PRIVATE_WEBHOOKS)"
)


@dataclass(frozen=True)
class TargetVerdict:
    choice: DelivererChoice
    refused: Problem | None = None  # Ready=False with this
    warning: str = ""  # said in the Ready message and as an event


def verdict(found: TargetProblem | None, url: str, allow_private: bool) -> TargetVerdict:
    """What the operator does about a target check's finding (pure)."""
    if found is None:
        return TargetVerdict(DelivererChoice(build=True, allow_private=allow_private))
    if not found.refuse:
        return TargetVerdict(DelivererChoice(build=True, allow_private=allow_private), warning=found.message)
    # The check's hint names the deliverer's variable; here the operator's policy decides.
    message = found.message.split("; IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE", 1)[0]
    hint = "" if allow_private else f"; {POLICY_HINT}"
    problem = Problem(UNSAFE_REASON, f"spec.webhook.url {url!r}: {message}{hint}; no deliverer is running")
    return TargetVerdict(DelivererChoice(build=False, allow_private=allow_private), refused=problem)


def host_refusal(url: str, policy: TrustPolicy) -> TargetVerdict | None:
    """The verdict when `url`'s host is outside the operator's allowed URL hosts (pure)."""
    if host_allowed(url, policy.url_hosts):
        return None
    problem = Problem(
        NOT_ALLOWED_REASON,
        f"spec.webhook.url {url!r}: host is not among {list(policy.url_hosts)}, the operator's"
        " operator.policy.allowedUrlHosts (IMAGEPIPE_OPERATOR_ALLOWED_URL_HOSTS); no deliverer is running",
    )
    return TargetVerdict(DelivererChoice(build=False, allow_private=policy.allow_private_webhooks), problem)


async def judge_target(p: ImagePipeline, policy: TrustPolicy) -> TargetVerdict:
    """The verdict for `p`'s webhook (none: the default choice, nothing to build anyway)."""
    if p.webhook is None:
        return TargetVerdict(DelivererChoice())
    url, allow = p.webhook.url, policy.allow_private_webhooks
    return host_refusal(url, policy) or verdict(await check_target(url, allow), url, allow)
