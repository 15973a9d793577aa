"""`imagepipe_status_conflicts_total{reason}`: status transitions refused
(reason: the state that refused them) or writes that lost a race
(`write_conflict`, decided again). Both roles count theirs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from .transitions import STATES

WRITE_CONFLICT = "write_conflict"


def conflicts_counter(registry: CollectorRegistry) -> Counter:
    counter = Counter(
        "imagepipe_status_conflicts_total",
        "Status transitions refused (by the state that refused them) or writes that lost a race.",
        ["reason"],
        registry=registry,
    )
    for reason in (*STATES, WRITE_CONFLICT):
        counter.labels(reason)
    return counter
