"""What every role adds to the metrics it exports: the `imagepipeline` label.

The operator sets IMAGEPIPE_IMAGEPIPELINE=NAMESPACE/NAME on the pods it
deploys, and every series a role exports then carries
`imagepipeline="NAMESPACE/NAME"`, the same label as the operator's own
series, so recording rules, alerts and the dashboard join on it. (`pipeline`
keeps meaning the variant-list name.) prometheus_client has no constant
labels, so a view of the registry adds it at exposition.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

RESOURCE_LABEL = "imagepipeline"


class ConstantLabels(Collector):
    """`registry`'s metrics with `labels` added to every sample."""

    def __init__(self, registry: Collector, labels: dict[str, str]) -> None:
        self.registry = registry
        self.labels = labels

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [s._replace(labels={**self.labels, **s.labels}) for s in family.samples]
            yield labelled


def exposed(registry: Collector, resource: str) -> Collector:
    """What /metrics serves: the registry, labelled with the ImagePipeline when deployed by one."""
    return ConstantLabels(registry, {RESOURCE_LABEL: resource}) if resource else registry
