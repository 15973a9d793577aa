"""kopf handlers of ImagePipeline: validate and default, build the children,
adopt them (owner references: deleting the resource deletes them, no
finalizer), apply and prune them (`apply`, `ownership`), check the
backends, report status.

An invalid spec ends in Ready=False + a Warning event + kopf.PermanentError
(no retry loop); API errors, taken names (ChildConflict), missing
backends, a refused webhook target (WebhookTargetNotAllowed,
WebhookTargetUnsafe: everything but the deliverer is applied) and deliverer
pods that cannot start are retried with backoff (kopf.TemporaryError) and
reported as Ready=False meanwhile. A timer runs the same reconcile every
DRIFT_SECONDS, so children deleted or edited behind the operator's back come
back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import kopf

from .apply import apply_children
from .backend import BackendState, QueueDepth, check_backend, read_queue_depth, retry_delay
from .conditions import ready_status, repeats
from .deliverer_pods import read_deliverer_problem
from .imagepipeline import ImagePipeline, InvalidPipeline
from .kube import ApiError, Kube
from .metrics import DEFAULT_PORT, OperatorMetrics
from .ownership import describe
from .schema import GROUP, PLURAL, VERSION
from .timers import register_quietly
from .trust import TrustPolicy, admit
from .webhook_target import TargetVerdict, judge_target

KEDA_API = "/apis/keda.sh/v1alpha1"
RETRY_APPLY_SECONDS = 15.0
RETRY_BACKEND_SECONDS = 30.0
RETRY_CONFLICT_SECONDS = 60.0
# Children deleted or edited behind the operator's back are put back within this.
DRIFT_SECONDS = 30.0
RECONCILE_TIMER_ID = "reconcile"


@dataclass
class OperatorRuntime:
    """The running operator's shared services (not the core's per-image
    `imagepipe.context.Context`): the API connection (from the login handler),
    the backend check and queue reading (tests replace them), and its metrics."""

    connection: kopf.ConnectionInfo | None = None
    check_backend: Callable[[ImagePipeline], Awaitable[BackendState]] = check_backend
    read_queue_depth: Callable[[ImagePipeline], Awaitable[QueueDepth]] = read_queue_depth
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    # What an ImagePipeline may choose (IMAGEPIPE_OPERATOR_*).
    policy: TrustPolicy = field(default_factory=TrustPolicy)
    # Seconds between the periodic reconciles that put back drifted or deleted children.
    reconcile_interval: float = DRIFT_SECONDS
    # The operator's metrics port (0: any free port; None: not served).
    metrics_port: int | None = DEFAULT_PORT
    _kube: Kube | None = field(default=None, repr=False)
    _kube_for: kopf.ConnectionInfo | None = field(default=None, repr=False)

    def kube(self) -> Kube:
        if self.connection is None:
            raise kopf.TemporaryError("not logged in to the API server yet", delay=5)
        if self._kube is None or self._kube_for is not self.connection:
            self._kube, self._kube_for = Kube(self.connection), self.connection
        return self._kube

    async def close(self) -> None:
        if self._kube is not None:
            await self._kube.close()
            self._kube = None


def _fail(
    runtime: OperatorRuntime,
    body: kopf.Body,
    status: kopf.Status,
    patch: kopf.Patch,
    reason: str,
    message: str,
) -> None:
    generation = int(body.metadata.get("generation") or 0)
    runtime.metrics.record_error(f"{body.metadata.get('namespace')}/{body.metadata.get('name')}", reason)
    if not repeats(status.get("conditions"), False, reason, message):
        kopf.warn(body, reason=reason, message=message)
    patch.status.update(ready_status(status.get("conditions"), False, reason, message, generation))


async def reconcile(
    runtime: OperatorRuntime,
    body: kopf.Body,
    status: kopf.Status,
    patch: kopf.Patch,
    logger: logging.Logger | Any,
    retry: int = 0,
    periodic: bool = False,
) -> None:
    """`periodic`: from the drift timer, which leaves invalid specs to the change handlers."""
    try:
        p = admit(body, runtime.policy)
    except InvalidPipeline as exc:
        if periodic:
            return
        _fail(runtime, body, status, patch, exc.reason, exc.message)
        raise kopf.PermanentError(exc.message) from exc
    kube = runtime.kube()
    try:
        if p.scaling.engine == "keda" and not await kube.exists(KEDA_API):
            _fail(
                runtime,
                body,
                status,
                patch,
                "KedaMissing",
                "scaling.engine is keda but KEDA's CRDs are not installed",
            )
            raise kopf.TemporaryError("KEDA is not installed", delay=RETRY_BACKEND_SECONDS)
        target = await judge_target(p, runtime.policy)
        conflicts = await apply_children(kube, body, p, logger, target.choice)
        pods = await read_deliverer_problem(kube, p) if target.choice.build else None
    except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
        _fail(runtime, body, status, patch, "ApplyFailed", f"applying the children failed: {exc}")
        raise kopf.TemporaryError(str(exc), delay=RETRY_APPLY_SECONDS) from exc
    if conflicts:
        message = (
            f"{', '.join(describe(c) for c in conflicts)} already exist(s) without this ImagePipeline "
            "as controller: left untouched and nothing applied; delete or rename it, or rename the pipeline"
        )
        _fail(runtime, body, status, patch, "ChildConflict", message)
        raise kopf.TemporaryError(message, delay=RETRY_CONFLICT_SECONDS)
    state = await runtime.check_backend(p)
    if not state.ready:
        _fail(runtime, body, status, patch, state.reason, state.message)
        raise kopf.TemporaryError(state.message, delay=retry_delay(retry))
    for problem, delay in ((target.refused, RETRY_CONFLICT_SECONDS), (pods, RETRY_BACKEND_SECONDS)):
        if problem is not None:
            _fail(runtime, body, status, patch, problem.reason, problem.message)
            raise kopf.TemporaryError(problem.message, delay=delay)
    _ready(body, status, patch, p.generation, state, target)


def _ready(
    body: kopf.Body,
    status: kopf.Status,
    patch: kopf.Patch,
    generation: int,
    state: BackendState,
    target: TargetVerdict,
) -> None:
    """Ready=True; a webhook target that does not resolve now is said there and as one event."""
    message = f"{state.message}; webhook: {target.warning}" if target.warning else state.message
    if target.warning and not repeats(status.get("conditions"), True, state.reason, message):
        kopf.warn(body, reason="WebhookTargetUnresolved", message=target.warning)
    patch.status.update(ready_status(status.get("conditions"), True, state.reason, message, generation))


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    """The ImagePipeline handlers, into an explicit registry (tests build fresh ones)."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", registry=registry)
    async def reconcile_pipeline(
        body: kopf.Body,
        status: kopf.Status,
        patch: kopf.Patch,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        retry: int,
        **_: Any,
    ) -> None:
        await reconcile(runtime, body, status, patch, logger, retry)

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        id=RECONCILE_TIMER_ID,
        interval=runtime.reconcile_interval,
        initial_delay=runtime.reconcile_interval,
        registry=registry,
    )
    async def repair_drift(
        body: kopf.Body,
        status: kopf.Status,
        patch: kopf.Patch,
        logger: logging.Logger | logging.LoggerAdapter[Any],
        **_: Any,
    ) -> None:
        """The same reconcile on a clock: what it cannot fix is already in the status."""
        with contextlib.suppress(kopf.PermanentError, kopf.TemporaryError):
            await reconcile(runtime, body, status, patch, logger, periodic=True)

    register_quietly(registry, repair_drift, RECONCILE_TIMER_ID)
