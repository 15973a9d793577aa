"""What the operator may do to each child of an ImagePipeline (pure).

A child is ours when its controller owner reference names this
ImagePipeline's uid (compared here, on the client side: the operator reads
children by their deterministic names, never by label selector). The plan
for one reconcile, from the desired manifests and what the API server has:

* missing → create;
* ours and drifted → merge-patch (without create-only fields, and without
  `ownerReferences`: ours is there already, and a merge patch would replace
  the whole list);
* desired, present but not ours → a conflict: left untouched, never adopted,
  and the pipeline reports it; while any name is taken nothing is applied, so
  no pod ever mounts a foreign ConfigMap or sits behind a foreign Service;
* ours but no longer desired (among the kinds the operator prunes) → delete;
* not desired and not ours → nothing: it is not in the way (so a new optional
  child, such as NAME-deliverer, never blocks a pipeline that does not ask for it).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]
# (apiVersion, kind, name): one child in the pipeline's namespace.
Key = tuple[str, str, str]


def key(manifest: Mapping[str, Any]) -> Key:
    return (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])


def controller_uid(found: Mapping[str, Any]) -> str | None:
    """The uid of `found`'s controller owner reference; None when nothing controls it."""
    for ref in (found.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def is_ours(found: Mapping[str, Any], owner_uid: str) -> bool:
    return bool(owner_uid) and controller_uid(found) == owner_uid


def describe(child: Key) -> str:
    return f"{child[1]} {child[2]}"


@dataclass(frozen=True)
class Plan:
    create: list[Manifest] = field(default_factory=list)
    patch: list[Manifest] = field(default_factory=list)  # the merge-patch bodies
    prune: list[tuple[Key, str]] = field(default_factory=list)  # with the uid to delete
    conflicts: list[Key] = field(default_factory=list)
    # A change held back until another child has rolled out (rollout.py).
    waiting: bool = False

    @property
    def acts(self) -> bool:
        return bool(self.create or self.patch or self.prune)


def plan(
    desired: Iterable[tuple[Manifest, tuple[str, ...]]],
    current: Mapping[Key, Mapping[str, Any] | None],
    prunable: Iterable[Key],
    owner_uid: str,
) -> Plan:
    """`desired`: each manifest with its create-only paths; `current`: what GET
    returned for every desired and prunable key (None: not there)."""
    wanted = list(desired)
    wanted_keys = {key(m) for m, _ in wanted}
    conflicts = [
        k for k in wanted_keys if (found := current.get(k)) is not None and not is_ours(found, owner_uid)
    ]
    if conflicts:
        return Plan(conflicts=sorted(set(conflicts)))
    result = Plan()
    for manifest, create_only in wanted:
        found = current.get(key(manifest))
        if found is None:
            result.create.append(manifest)
            continue
        body = without(manifest, (*create_only, "metadata.ownerReferences"))
        if not is_subset(body, found):
            result.patch.append(body)
    for k in prunable:
        found = current.get(k)
        if k not in wanted_keys and found is not None and is_ours(found, owner_uid):
            result.prune.append((k, str(found["metadata"].get("uid", ""))))
    return result


def without(manifest: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy without the dotted `paths` (e.g. "spec.replicas")."""
    result = copy.deepcopy(manifest)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = result
        for key in parents:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return result


def is_subset(desired: Any, actual: Any) -> bool:
    """Whether `actual` already has everything of `desired` (extra fields set by the server are fine)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(is_subset(v, actual.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)
