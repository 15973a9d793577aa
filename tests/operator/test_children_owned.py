"""The operator owns exactly its children (issue #12's table), in the real
operator loop (KopfRunner) against kmock: a child the spec stops asking for
is deleted; a same-named object that is not ours is left untouched and
reported (ChildConflict), never adopted; children deleted or edited behind
the operator's back come back from the periodic reconcile; switching between
KEDA and the builtin autoscaler never lowers the running replicas.

kmock has no garbage collector, resourceVersion, server-side apply or delete
preconditions: these tests check owner references and the operator's own
deletes (docs/design.md, "Ownership of children", says what only a real API
server could show)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kopf.testing import KopfRunner

from imagepipe.operator.handlers import OperatorRuntime
from tests.operator.apiserver import (
    DEPLOYMENTS,
    PIPELINES,
    ApiServer,
    backend_ready,
    empty_queue,
    eventually,
    operator_runner,
)

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
EVENTS = "/api/v1/namespaces/default/events"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"
SCALED_OBJECTS = "/apis/keda.sh/v1alpha1/namespaces/default/scaledobjects"


def runner(api: ApiServer, autoscale_interval: float = 3600) -> KopfRunner:
    runtime = OperatorRuntime(
        check_backend=backend_ready, read_queue_depth=empty_queue, metrics_port=None, reconcile_interval=1.0
    )
    return operator_runner(api, runtime, autoscale_interval=autoscale_interval)


def ready(api: ApiServer) -> dict[str, Any] | None:
    status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)


def ready_is(api: ApiServer, value: str, reason: str | None = None) -> dict[str, Any] | None:
    condition = ready(api)
    if condition and condition["status"] == value and reason in (None, condition["reason"]):
        return condition
    return None


def test_a_child_the_spec_no_longer_asks_for_is_deleted(api: ApiServer, minimal: dict[str, Any]) -> None:
    minimal["spec"]["ingest"] = {"ingress": {"host": "img.example.com"}, "apiKeysSecret": {"name": "keys"}}
    with runner(api) as running:
        api.call("POST", PIPELINES, minimal)
        ingress = eventually(lambda: api.call("GET", f"{INGRESSES}/photos-ingest"))
        assert ingress["metadata"]["ownerReferences"][0]["uid"] == "uid-photos"
        spec = {"ingest": {"ingress": None, "apiKeysSecret": None}}
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": spec})
        eventually(lambda: api.call("GET", f"{INGRESSES}/photos-ingest") is None)
        assert api.call("GET", f"{DEPLOYMENTS}/photos-ingest") is not None  # the rest stays
    assert running.exception is None


def test_a_foreign_object_with_our_name_is_left_alone_and_reported(
    api: ApiServer, minimal: dict[str, Any]
) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "photos-config", "namespace": "default", "uid": "team-b-config"},
        "data": {"settings": "team B's"},
    }
    api.call("POST", CONFIGMAPS, foreign)
    with runner(api) as running:
        api.call("POST", PIPELINES, minimal)
        condition = eventually(lambda: ready_is(api, "False", "ChildConflict"))
        assert "ConfigMap photos-config" in condition["message"]
        events = eventually(lambda: (api.call("GET", EVENTS) or {}).get("items"))
        assert any(e["reason"] == "ChildConflict" and e["type"] == "Warning" for e in events)
        # Untouched: no owner reference (deleting the pipeline must not collect it), same data;
        # and nothing else applied, so no pod mounts team B's ConfigMap.
        kept = api.call("GET", f"{CONFIGMAPS}/photos-config")
        assert kept["data"] == foreign["data"] and not kept["metadata"].get("ownerReferences")
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer") is None
        # Once the name is free, the periodic reconcile builds the pipeline.
        api.call("DELETE", f"{CONFIGMAPS}/photos-config")
        eventually(lambda: ready_is(api, "True"), timeout=40)
        ours = api.call("GET", f"{CONFIGMAPS}/photos-config")
        assert ours["metadata"]["ownerReferences"][0]["uid"] == "uid-photos"
    assert running.exception is None


def test_deleted_and_edited_children_come_back(api: ApiServer, minimal: dict[str, Any]) -> None:
    with runner(api) as running:
        api.call("POST", PIPELINES, minimal)
        consumer = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-consumer"))
        image = consumer["spec"]["template"]["spec"]["containers"][0]["image"]
        api.call("DELETE", f"{DEPLOYMENTS}/photos-consumer")
        back = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-consumer"))
        assert back["metadata"]["ownerReferences"][0]["uid"] == "uid-photos"
        # Edited by hand: the template comes back; the replicas (the autoscaler's) stay.
        template = {"spec": {"containers": [{"name": "consumer", "image": "attacker/image:1"}]}}
        api.call("PATCH", f"{DEPLOYMENTS}/photos-consumer", {"spec": {"replicas": 5, "template": template}})

        def restored() -> Any:
            found = api.call("GET", f"{DEPLOYMENTS}/photos-consumer")
            return found if found["spec"]["template"]["spec"]["containers"][0]["image"] == image else None

        assert eventually(restored)["spec"]["replicas"] == 5
        api.call("DELETE", f"{CONFIGMAPS}/photos-config")
        eventually(lambda: api.call("GET", f"{CONFIGMAPS}/photos-config"))
    assert running.exception is None


@pytest.mark.parametrize("api", [True], indirect=True)
def test_switching_engines_never_lowers_the_running_replicas(api: ApiServer, minimal: dict[str, Any]) -> None:
    minimal["spec"]["scaling"] = {"engine": "keda"}
    with runner(api, autoscale_interval=0.5) as running:
        api.call("POST", PIPELINES, minimal)
        scaled = eventually(lambda: api.call("GET", f"{SCALED_OBJECTS}/photos-consumer"))
        assert scaled["spec"]["advanced"]["restoreToOriginalReplicaCount"] is False
        eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-consumer"))
        api.call("PATCH", f"{DEPLOYMENTS}/photos-consumer", {"spec": {"replicas": 6}})  # KEDA's doing
        spec = {"scaling": {"engine": "builtin"}}
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": spec})
        eventually(lambda: api.call("GET", f"{SCALED_OBJECTS}/photos-consumer") is None)

        def builtin_loops(n: int) -> Any:
            status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
            memory = status.get("autoscaler") or {}
            history = memory.get("history") or []
            return status if memory.get("engine") == "builtin" and len(history) >= n else None

        # An empty queue would ask for 1 pod; the loop starts from the 6 running and holds them.
        status = eventually(lambda: builtin_loops(4))
        assert status["desiredReplicas"] == 6 and status["scalingReason"] == "stabilising"
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer")["spec"]["replicas"] == 6
        # And back: KEDA's ScaledObject again, the replicas as they are.
        spec = {"scaling": {"engine": "keda"}}
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 3}, "spec": spec})
        eventually(lambda: api.call("GET", f"{SCALED_OBJECTS}/photos-consumer"))
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer")["spec"]["replicas"] == 6
    assert running.exception is None


def test_an_ingress_without_keys_is_refused(api: ApiServer, minimal: dict[str, Any]) -> None:
    minimal["spec"]["ingest"] = {"ingress": {"host": "img.example.com"}}
    with runner(api) as running:
        api.call("POST", PIPELINES, minimal)
        condition = eventually(lambda: ready_is(api, "False", "InsecureIngress"))
        assert "apiKeysSecret" in condition["message"] and "auth: none" in condition["message"]
        assert api.call("GET", f"{INGRESSES}/photos-ingest") is None
    assert running.exception is None


def test_the_autoscaler_never_scales_a_foreign_deployment(api: ApiServer, minimal: dict[str, Any]) -> None:
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "photos-consumer", "namespace": "default", "uid": "team-b"},
        "spec": {"replicas": 9, "selector": {"matchLabels": {"app": "b"}}, "template": {}},
    }
    api.call("POST", DEPLOYMENTS, foreign)
    with runner(api, autoscale_interval=0.3) as running:
        api.call("POST", PIPELINES, minimal)
        eventually(lambda: ready_is(api, "False", "ChildConflict"))
        time.sleep(2)  # several autoscaler loops: an empty queue would ask for 1 replica
        kept = api.call("GET", f"{DEPLOYMENTS}/photos-consumer")
        assert kept["spec"]["replicas"] == 9 and not kept["metadata"].get("ownerReferences")
        status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
        assert "desiredReplicas" not in status
    assert running.exception is None
