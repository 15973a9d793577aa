"""The chart's RBAC against the operator's code: every Kubernetes API call
that operator/ makes (apply.py, handlers.py, deliverer_pods.py, autoscaling/observe.py and
autoscaling/loop.py, driven through a recording client with every option on,
children missing, ours and drifted, or ours and no longer wanted)
becomes a (group, resource, verb), and the rendered rules grant exactly
those plus what kopf itself needs. A call added to the code without a grant,
or a grant nobody calls, fails here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, cast

import kopf
import pytest
import yaml

from imagepipe.operator.apply import PROMETHEUS_API, apply_children
from imagepipe.operator.autoscaling.loop import Autoscaler
from imagepipe.operator.backend import QueueDepth
from imagepipe.operator.children import PRUNABLE, build_children
from imagepipe.operator.deliverer_pods import read_deliverer_problem
from imagepipe.operator.handlers import KEDA_API
from imagepipe.operator.imagepipeline import ImagePipeline, parse_imagepipeline
from imagepipe.operator.kube import PLURALS, Kube
from imagepipe.operator.metrics import OperatorMetrics

from .helpers import (
    NAMESPACE,
    REPO,
    VALUES_ALL,
    Grant,
    by_kind,
    documents,
    grants_of,
    group_of,
    load_values,
    render,
)

# What kopf does on its own (not through operator/kube.py): follows ImagePipelines, keeps its
# progress annotations on them, writes their status, and posts kopf.info/warn as Events.
KOPF_NAMESPACED: set[Grant] = {
    ("imagepipe.io", "imagepipelines", "list"),
    ("imagepipe.io", "imagepipelines", "watch"),
    ("imagepipe.io", "imagepipelines", "patch"),
    ("imagepipe.io", "imagepipelines/status", "patch"),
    ("", "events", "create"),
}
KOPF_PEERING = ("get", "list", "watch", "patch")
KOPF_CLUSTER: set[Grant] = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
}

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/[^/]+/(?P<resource>[^/?]+)"
    r"(?:/(?P<name>[^/?]+)(?:/(?P<sub>[^/?]+))?)?(?:\?.*)?$"
)
_DISCOVERY = re.compile(r"^/apis/[^/]+/[^/]+$")  # non-resource URLs: every user may read them
VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


def grant_of(method: str, path: str) -> Grant | None:
    if method == "GET" and _DISCOVERY.match(path):
        return None
    match = _PATH.match(path)
    assert match, f"unrecognised API path {path}"
    resource = match["resource"] + (f"/{match['sub']}" if match["sub"] else "")
    verb = ("get" if match["name"] else "list") if method == "GET" else VERBS[method]
    return (match["group"] or "", resource, verb)


class RecordingKube(Kube):
    """An API server where the children are missing (`exists=False`: apply creates them) or
    exist and have drifted (apply patches them); records every request."""

    def __init__(self, exists: bool, prometheus: bool = True) -> None:  # no HTTP session
        self.server = ""
        self.exists_already = exists
        self.prometheus = prometheus
        self.calls: list[tuple[str, str]] = []

    async def request(self, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
        self.calls.append((method, path))
        if method != "GET":
            return {}
        if path == PROMETHEUS_API and not self.prometheus:
            return None  # the PrometheusRule is not built, so an old one of ours is pruned
        if path in (PROMETHEUS_API, KEDA_API):
            return {"resources": []}  # both installed: every optional child is built
        if "/pods" in path:
            return {"items": []}
        # Ours (controller reference to uid-1) and drifted: apply patches, prune deletes.
        ours = {"metadata": {"uid": "u", "ownerReferences": [{"controller": True, "uid": "uid-1"}]}}
        if "/deployments/" in path and path.endswith("-consumer"):  # the autoscaler reads it
            return {**ours, "spec": {"replicas": 1}, "status": {"readyReplicas": 1}}
        return ours if self.exists_already else None


def manifest(engine: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((REPO / "examples" / "full.yaml").read_text())
    body["metadata"]["uid"] = "uid-1"
    body["spec"]["scaling"]["engine"] = engine
    body["spec"]["scaling"].pop("prometheusUrl")  # the autoscaler scrapes the pods itself
    body["spec"]["backend"]["credentialsSecret"] = "aws"
    return body


async def backlog(p: ImagePipeline) -> QueueDepth:
    return QueueDepth(visible=10_000, in_flight=0, delayed=0, dead_letter=0)


async def drive(kube: RecordingKube, raw: dict[str, Any]) -> None:
    body = kopf.Body(cast(kopf.RawBody, raw))
    p = parse_imagepipeline(raw)
    # Existing children in the recorder run another image: the ingest's patch
    # waits for the consumers' rollout (a retry), the consumer's is still made.
    with contextlib.suppress(kopf.TemporaryError):
        await apply_children(kube, body, p, logging.getLogger("test"))
    await read_deliverer_problem(kube, p)  # the deliverer's pods, for a missing Secret
    scaler = Autoscaler(OperatorMetrics(), read_depth=backlog)
    try:
        await scaler._tick(kube, p, body.status, kopf.Patch())
    finally:
        await scaler.close()


def operator_calls() -> set[Grant]:
    """(group, resource, verb) of every API request the operator's code makes."""
    grants: set[Grant] = set()
    for engine in ("builtin", "keda"):
        for exists, optional in ((False, True), (True, True), (True, False)):
            kube = RecordingKube(exists, prometheus=optional)
            body = manifest(engine)
            if not optional:  # no Ingress, PrometheusRule or deliverer asked for: all pruned
                del body["spec"]["ingest"]["ingress"]
                del body["spec"]["networkPolicy"]
                del body["spec"]["webhook"]
            asyncio.run(drive(kube, body))
            grants |= {g for method, path in kube.calls if (g := grant_of(method, path))}
    return grants


@pytest.fixture(scope="module")
def needed() -> set[Grant]:
    return operator_calls()


def test_the_recorder_sees_the_calls_that_matter(needed: set[Grant]) -> None:
    """Guards the driver: the autoscaler's reads and writes and every child's apply."""
    assert ("", "pods", "list") in needed  # the ready consumer pods to scrape
    assert ("apps", "deployments", "get") in needed and ("apps", "deployments", "patch") in needed
    for engine in ("builtin", "keda"):
        for child in build_children(parse_imagepipeline(manifest(engine)), prometheus_rules=True):
            kind = (group_of(child), PLURALS[child["kind"]])
            assert {(*kind, v) for v in ("get", "create", "patch")} <= needed, kind
    pruned = {(group_of({"apiVersion": v}), PLURALS[kind], "delete") for v, kind, _ in PRUNABLE}
    assert {g for g in needed if g[2] == "delete"} == pruned
    assert not [g for g in needed if g[2] in ("update", "deletecollection")]


def test_by_default_only_the_release_namespace_is_watched(needed: set[Grant]) -> None:
    docs = documents(render({}))
    (cluster_role,) = by_kind(docs, "ClusterRole")
    namespaces = {("", "namespaces", v) for v in ("list", "watch")}
    assert grants_of(cluster_role["rules"]) == KOPF_CLUSTER | namespaces  # nothing on children
    (role,) = by_kind(docs, "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    peering = {("kopf.dev", "kopfpeerings", v) for v in KOPF_PEERING}
    assert grants_of(role["rules"]) == needed | KOPF_NAMESPACED | peering
    (operator,) = [d for d in by_kind(docs, "Deployment")]
    assert f"--namespace={NAMESPACE}" in operator["spec"]["template"]["spec"]["containers"][0]["args"]
    (kopf_peering,) = by_kind(docs, "KopfPeering")
    assert kopf_peering["metadata"]["namespace"] == NAMESPACE


def test_clusterwide_rules_are_exactly_what_the_code_and_kopf_use(needed: set[Grant]) -> None:
    docs = documents(render({"operator": {"clusterWide": True}}))
    (operator,) = [d for d in by_kind(docs, "Deployment")]
    assert not [a for a in operator["spec"]["template"]["spec"]["containers"][0]["args"] if "namespace" in a]
    (role,) = by_kind(docs, "ClusterRole")
    (kopf_peering,) = by_kind(docs, "ClusterKopfPeering")
    assert kopf_peering["metadata"]["name"] == "imagepipe-operator"
    peering = {("kopf.dev", "clusterkopfpeerings", v) for v in KOPF_PEERING}
    want = needed | KOPF_NAMESPACED | KOPF_CLUSTER | peering
    got = grants_of(role["rules"])
    assert got == want, {"missing": sorted(want - got), "unused": sorted(got - want)}


def test_namespaced_rules_are_exactly_what_the_code_and_kopf_use(needed: set[Grant]) -> None:
    docs = documents(render(load_values(VALUES_ALL)))
    (cluster_role,) = by_kind(docs, "ClusterRole")
    namespaces = {("", "namespaces", v) for v in ("list", "watch")}
    assert grants_of(cluster_role["rules"]) == KOPF_CLUSTER | namespaces
    roles = by_kind(docs, "Role")
    assert roles
    peering = {("kopf.dev", "kopfpeerings", v) for v in KOPF_PEERING}
    want = needed | KOPF_NAMESPACED | peering
    for role in roles:
        got = grants_of(role["rules"])
        assert got == want, {"missing": sorted(want - got), "unused": sorted(got - want)}


def test_policy_values_reach_the_operator_as_its_settings() -> None:
    """Chart values → IMAGEPIPE_OPERATOR_* → the TrustPolicy the operator reads at start-up."""
    from imagepipe.operator.trust import TrustPolicy, policy_from_env

    values = {
        "operator": {
            "policy": {
                "allowedImages": ["registry.example.com/imagepipe:", "registry.example.com/mirror/"],
                "allowedServiceAccounts": ["imagepipe-ingest", "imagepipe-consumer"],
                "allowCredentialsSecret": False,
                "bucketPattern": "{namespace}-.+",
                "allowedUrlHosts": ["*.svc.cluster.local"],
                "allowPrivateWebhooks": True,
            }
        }
    }
    (operator,) = by_kind(documents(render(values)), "Deployment")
    env = {
        e["name"]: e.get("value", "") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    policy = policy_from_env(env)
    assert policy.image_prefixes == ("registry.example.com/imagepipe:", "registry.example.com/mirror/")
    assert policy.service_accounts == ("imagepipe-ingest", "imagepipe-consumer")
    assert not policy.credentials_secret and policy.bucket_pattern == "{namespace}-.+"
    assert policy.url_hosts == ("*.svc.cluster.local",) and policy.queue_pattern == ""
    assert policy.allow_private_webhooks
    (default,) = by_kind(documents(render({})), "Deployment")
    default_env = {
        e["name"]: e.get("value", "") for e in default["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert policy_from_env(default_env) == TrustPolicy()
