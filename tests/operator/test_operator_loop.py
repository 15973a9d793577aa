"""The real operator loop (kopf.testing.KopfRunner) against kmock, an API
server on loopback in a background thread (docs/testing.md): apply an
ImagePipeline → children with content, labels and owner references; change
the variants → new ConfigMap and config hash, replicas untouched; invalid
spec → Ready=False condition and a Warning event."""

from __future__ import annotations

from typing import Any

from kopf.testing import KopfRunner

from imagepipe.operator.builders import CONFIG_HASH_ANNOTATION
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


def runner(api: ApiServer) -> KopfRunner:
    # No metrics port; the autoscaler sees an empty queue and its next loop is far away,
    # so the replicas the test sets by hand stay.
    runtime = OperatorRuntime(check_backend=backend_ready, read_queue_depth=empty_queue, metrics_port=None)
    return operator_runner(api, runtime, autoscale_interval=3600)


def test_children_and_variants_change(api: ApiServer, minimal: dict[str, Any]) -> None:
    with runner(api):
        api.call("POST", PIPELINES, minimal)
        consumer = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-consumer"))
        ingest = api.call("GET", f"{DEPLOYMENTS}/photos-ingest")
        service = api.call("GET", "/api/v1/namespaces/default/services/photos-ingest")
        configmap = api.call("GET", "/api/v1/namespaces/default/configmaps/photos-config")
        pdb = api.call("GET", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/photos-consumer")
        for child in (consumer, ingest, service, configmap, pdb):
            assert child is not None
            (ref,) = child["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"]) == ("ImagePipeline", "photos", "uid-photos")
            assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "imagepipe-operator"
        assert consumer["spec"]["template"]["spec"]["containers"][0]["args"] == ["consume"]
        status = eventually(
            lambda: (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {}).get("phase")
        )
        assert status == "Ready"

        # The autoscaler scales; the operator must not undo it.
        api.call("PATCH", f"{DEPLOYMENTS}/photos-consumer", {"spec": {"replicas": 7}})
        old_hash = consumer["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
        variants = [{"name": "tiny", "width": 64, "height": 64, "method": "cover"}]
        api.call(
            "PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": {"variants": variants}}
        )

        def rolled() -> Any:
            found = api.call("GET", f"{DEPLOYMENTS}/photos-consumer")
            annotations = found["spec"]["template"]["metadata"]["annotations"]
            return found if annotations[CONFIG_HASH_ANNOTATION] != old_hash else None

        consumer = eventually(rolled)
        assert consumer["spec"]["replicas"] == 7
        configmap = api.call("GET", "/api/v1/namespaces/default/configmaps/photos-config")
        assert "tiny" in configmap["data"]["pipelines.yaml"]


def test_invalid_spec_sets_condition_and_event(api: ApiServer, minimal: dict[str, Any]) -> None:
    minimal["spec"]["slo"] = {"latencySeconds": 31}
    with runner(api) as running:
        api.call("POST", PIPELINES, minimal)

        def condition() -> Any:
            status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
            return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)

        ready = eventually(condition)
        assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
        assert "latencySeconds" in ready["message"]
        events = eventually(lambda: (api.call("GET", "/api/v1/namespaces/default/events") or {}).get("items"))
        assert any(e["reason"] == "InvalidSpec" and e["type"] == "Warning" for e in events)
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer") is None
    assert running.exception is None
