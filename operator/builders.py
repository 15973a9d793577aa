"""Pure builders of an ImagePipeline's small children: labels, the ConfigMap
(the pipelines file), the ingest Service and Ingress, the PDBs, the
optional NetworkPolicies.

Every builder takes a validated `ImagePipeline` and returns a manifest as data;
handlers adopt (owner references) and apply them.
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from .imagepipeline import ImagePipeline

PIPELINES_FILE = "pipelines.yaml"
CONFIG_MOUNT = "/etc/imagepipe"
CONFIG_HASH_ANNOTATION = "imagepipe.io/config-hash"
# Manifests carrying this annotation keep `spec.replicas` only at creation.
REPLICAS_OWNER_ANNOTATION = "imagepipe.io/replicas-owner"
INGEST_PORT = 8080
METRICS_PORT = 9102

Manifest = dict[str, Any]


def labels(p: ImagePipeline, component: str | None = None) -> dict[str, str]:
    """The labels of docs/design.md; `component` is ingest, consumer or deliverer."""
    result = {
        "app.kubernetes.io/name": "imagepipe",
        "app.kubernetes.io/instance": p.name,
        "app.kubernetes.io/part-of": "imagepipe",
        "app.kubernetes.io/managed-by": "imagepipe-operator",
    }
    if component:
        result["app.kubernetes.io/component"] = component
    return result


def selector(p: ImagePipeline, component: str) -> dict[str, str]:
    """The immutable Deployment selector: a subset of `labels`."""
    return {
        "app.kubernetes.io/name": "imagepipe",
        "app.kubernetes.io/instance": p.name,
        "app.kubernetes.io/component": component,
    }


def metadata(p: ImagePipeline, name: str, component: str | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": p.namespace, "labels": labels(p, component)}


def pipelines_file(p: ImagePipeline) -> str:
    """The pipelines file the roles read (IMAGEPIPE_PIPELINES_FILE), canonical YAML."""
    data = {name: spec.to_file_data() for name, spec in sorted(p.pipelines.items())}
    return yaml.safe_dump(data, sort_keys=True)


def build_configmap(p: ImagePipeline) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(p, p.child("config")),
        "data": {PIPELINES_FILE: pipelines_file(p)},
    }


def config_hash(configmap: Manifest) -> str:
    """A short hash of the ConfigMap's data; in the pod template, a change rolls the pods."""
    text = yaml.safe_dump(configmap.get("data", {}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_ingest_service(p: ImagePipeline) -> Manifest:
    service = p.ingest.service
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(p, p.child("ingest"), "ingest"),
        "spec": {
            "type": service.type,
            "selector": selector(p, "ingest"),
            "ports": [{"name": "http", "port": service.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


# What the Ingress routes: the API and its document, never /healthz, /readyz or /metrics.
PUBLIC_PATHS = (("/v1/", "Prefix"), ("/images/", "Prefix"), ("/openapi.json", "Exact"))


def build_ingress(p: ImagePipeline) -> Manifest | None:
    """The Ingress when `spec.ingest.ingress.host` is set, else None."""
    ingress = p.ingest.ingress
    if ingress is None:
        return None
    backend = {"service": {"name": p.child("ingest"), "port": {"name": "http"}}}
    # The API only: health, readiness and metrics stay inside the cluster.
    paths = [{"path": path, "pathType": kind, "backend": backend} for path, kind in PUBLIC_PATHS]
    rule = {"host": ingress.host, "http": {"paths": paths}}
    spec: dict[str, Any] = {"rules": [rule]}
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(p, p.child("ingest"), "ingest"),
        "spec": spec,
    }


def build_pdb(p: ImagePipeline, role: str = "consumer") -> Manifest:
    """At most one pod of a role evicted at a time: a consumer's drain hands its
    jobs back in order; an ingest's drains its uploads while the others serve."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(p, p.child(role), role),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(p, role)}},
    }


def build_network_policy(p: ImagePipeline, role: str) -> Manifest | None:
    """With `spec.networkPolicy.enabled`: the role's pods admit traffic only on
    their one port (the ingest's HTTP from anywhere, the consumers' and the
    deliverer's metrics from within the cluster). Outbound traffic (S3, SQS,
    DNS, and the deliverer's webhook receiver) is left open: none of them has
    addresses a policy could name (the deliverer vets the receiver's itself)."""
    if not p.network_policy:
        return None
    rule: dict[str, Any] = {"ports": [{"port": "http" if role == "ingest" else "metrics", "protocol": "TCP"}]}
    if role != "ingest":
        rule["from"] = [{"namespaceSelector": {}}]  # any pod of this cluster (Prometheus, the operator)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(p, p.child(role), role),
        "spec": {
            "podSelector": {"matchLabels": selector(p, role)},
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
    }
