"""All children of an ImagePipeline, in apply order (the ConfigMap first)."""

from __future__ import annotations

from .builders import Manifest, build_configmap, build_ingest_service, build_ingress, build_pdb
from .imagepipeline import ImagePipeline
from .keda import build_scaled_object, build_trigger_authentication
from .monitoring import build_prometheus_rule
from .workloads import build_consumer_deployment, build_ingest_deployment


def build_children(p: ImagePipeline, *, prometheus_rules: bool = True) -> list[Manifest]:
    """The manifests the operator applies; the PrometheusRule only where its CRD exists."""
    optional = [
        build_ingress(p),
        build_prometheus_rule(p) if prometheus_rules else None,
        build_trigger_authentication(p),
        build_scaled_object(p),
    ]
    required = [
        build_configmap(p),
        build_ingest_deployment(p),
        build_ingest_service(p),
        build_consumer_deployment(p),
        build_pdb(p),
    ]
    return required + [m for m in optional if m is not None]
