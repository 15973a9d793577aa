"""Which children the operator creates, corrects, leaves alone or deletes:
`ownership.plan` as a table."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe.operator.ownership import Key, controller_uid, is_ours, plan

UID = "uid-photos"
CONFIG: Key = ("v1", "ConfigMap", "photos-config")
INGRESS: Key = ("networking.k8s.io/v1", "Ingress", "photos-ingest")
CONSUMER: Key = ("apps/v1", "Deployment", "photos-consumer")


def manifest(k: Key, **spec: Any) -> dict[str, Any]:
    ref = {"apiVersion": "imagepipe.io/v1alpha1", "kind": "ImagePipeline", "uid": UID, "controller": True}
    return {
        "apiVersion": k[0],
        "kind": k[1],
        "metadata": {"name": k[2], "namespace": "default", "ownerReferences": [ref]},
        "spec": spec,
    }


def found(k: Key, owner: str | None = UID, controller: bool = True, **spec: Any) -> dict[str, Any]:
    refs = [{"uid": owner, "controller": controller}] if owner else []
    extra = [{"uid": "someone-else", "controller": False}]
    return {
        "apiVersion": k[0],
        "kind": k[1],
        "metadata": {
            "name": k[2],
            "namespace": "default",
            "uid": f"obj-{k[2]}",
            "ownerReferences": refs + extra,
        },
        "spec": spec,
    }


def test_ours_means_our_controller_reference() -> None:
    assert is_ours(found(CONFIG), UID)
    assert not is_ours(found(CONFIG, owner="another-pipeline"), UID)
    assert not is_ours(found(CONFIG, controller=False), UID)  # an owner, but not the controller
    assert not is_ours({"metadata": {}}, UID) and controller_uid({"metadata": {}}) is None
    assert not is_ours(found(CONFIG), "")  # a pipeline without uid owns nothing


ROWS = {
    # name: (desired, current, expected create / patch / prune / conflicts)
    "missing is created": ([CONFIG], {}, ([CONFIG], [], [], [])),
    "ours and equal is left": ([CONFIG], {CONFIG: found(CONFIG, a=1)}, ([], [], [], [])),
    "ours and drifted is patched": ([CONFIG], {CONFIG: found(CONFIG, a=2)}, ([], [CONFIG], [], [])),
    "foreign with our name is a conflict": (
        [CONFIG],
        {CONFIG: found(CONFIG, owner=None)},
        ([], [], [], [CONFIG]),
    ),
    "another pipeline's is a conflict": (
        [CONFIG],
        {CONFIG: found(CONFIG, owner="x")},
        ([], [], [], [CONFIG]),
    ),
    "ours no longer asked for is pruned": (
        [CONFIG],
        {CONFIG: found(CONFIG, a=1), INGRESS: found(INGRESS)},
        ([], [], [INGRESS], []),
    ),
    "foreign prunable not asked for is left alone, never deleted": (
        [CONFIG],
        {CONFIG: found(CONFIG, a=1), INGRESS: found(INGRESS, owner=None)},
        ([], [], [], []),
    ),
    "another pipeline's prunable not asked for is left alone": (
        [CONFIG],
        {CONFIG: found(CONFIG, a=2), INGRESS: found(INGRESS, owner="x")},
        ([], [CONFIG], [], []),
    ),
    "foreign prunable asked for is a conflict": (
        [CONFIG, INGRESS],
        {CONFIG: found(CONFIG, a=1), INGRESS: found(INGRESS, owner=None)},
        ([], [], [], [INGRESS]),
    ),
    "a conflict stops everything": (
        [CONFIG, CONSUMER],
        {CONFIG: found(CONFIG, owner=None), INGRESS: found(INGRESS)},
        ([], [], [], [CONFIG]),
    ),
    "a wanted prunable kind is applied, not pruned": (
        [INGRESS],
        {INGRESS: found(INGRESS, a=2)},
        ([], [INGRESS], [], []),
    ),
}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_plan(row: str) -> None:
    desired, current, (create, patch, prune, conflicts) = ROWS[row]
    got = plan([(manifest(k, a=1), ()) for k in desired], current, [INGRESS], UID)
    assert [(m["apiVersion"], m["kind"], m["metadata"]["name"]) for m in got.create] == create
    assert [(m["apiVersion"], m["kind"], m["metadata"]["name"]) for m in got.patch] == patch
    assert [k for k, _ in got.prune] == prune
    assert got.conflicts == conflicts


def test_patches_leave_owner_references_and_create_only_fields_alone() -> None:
    """A merge patch replaces lists whole: sending ownerReferences would drop the
    object's other references; the consumer's replicas belong to the autoscaler."""
    desired = manifest(CONSUMER, replicas=1, template={"image": "new"})
    current = found(CONSUMER, replicas=7, template={"image": "old"})
    got = plan([(desired, ("spec.replicas",))], {CONSUMER: current}, [], UID)
    (body,) = got.patch
    assert "ownerReferences" not in body["metadata"] and "replicas" not in body["spec"]
    assert body["spec"]["template"] == {"image": "new"}


def test_prune_deletes_exactly_the_object_seen() -> None:
    got = plan([], {INGRESS: found(INGRESS)}, [INGRESS], UID)
    assert got.prune == [(INGRESS, "obj-photos-ingest")]  # the uid precondition of the DELETE
