"""All children of an ImagePipeline, in apply order (the ConfigMap first), and
the optional ones the operator deletes when the spec stops asking for them."""

from __future__ import annotations

from .builders import (
    REPLICAS_OWNER_ANNOTATION,
    Manifest,
    build_configmap,
    build_ingest_service,
    build_ingress,
    build_network_policy,
    build_pdb,
)
from .deliverer import BUILD, DelivererChoice, build_deliverer_deployment
from .imagepipeline import ImagePipeline
from .keda import build_scaled_object, build_trigger_authentication
from .monitoring import build_prometheus_rule
from .ownership import Key
from .workloads import build_consumer_deployment, build_ingest_deployment

# (apiVersion, kind, child suffix) of every child that exists only while the
# spec asks for it: the operator prunes these (and RBAC grants delete on them).
PRUNABLE = (
    ("networking.k8s.io/v1", "Ingress", "ingest"),
    ("keda.sh/v1alpha1", "ScaledObject", "consumer"),
    ("keda.sh/v1alpha1", "TriggerAuthentication", "consumer"),
    ("monitoring.coreos.com/v1", "PrometheusRule", "slo"),
    ("networking.k8s.io/v1", "NetworkPolicy", "ingest"),
    ("networking.k8s.io/v1", "NetworkPolicy", "consumer"),
    ("apps/v1", "Deployment", "deliverer"),
    ("networking.k8s.io/v1", "NetworkPolicy", "deliverer"),
)


def build_children(
    p: ImagePipeline, *, prometheus_rules: bool = True, deliverer: DelivererChoice = BUILD
) -> list[Manifest]:
    """The manifests the operator applies; the PrometheusRule only where its CRD exists,
    the deliverer (and its NetworkPolicy) only with spec.webhook and as `deliverer` says."""
    delivering = build_deliverer_deployment(p, deliverer)
    optional = [
        build_ingress(p),
        build_prometheus_rule(p) if prometheus_rules else None,
        build_trigger_authentication(p),
        build_scaled_object(p),
        build_network_policy(p, "ingest"),
        build_network_policy(p, "consumer"),
        delivering,
        build_network_policy(p, "deliverer") if delivering else None,
    ]
    required = [
        build_configmap(p),
        build_ingest_deployment(p),
        build_ingest_service(p),
        build_consumer_deployment(p),
        build_pdb(p),
        build_pdb(p, "ingest"),
    ]
    return required + [m for m in optional if m is not None]


def prunable(p: ImagePipeline) -> list[Key]:
    return [(api_version, kind, p.child(suffix)) for api_version, kind, suffix in PRUNABLE]


def create_only(child: Manifest) -> tuple[str, ...]:
    """Fields set at creation only: the consumer's `spec.replicas` belongs to the autoscaler."""
    annotations = child["metadata"].get("annotations") or {}
    return ("spec.replicas",) if REPLICAS_OWNER_ANNOTATION in annotations else ()
