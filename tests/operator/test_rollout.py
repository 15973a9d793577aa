"""Consumers roll before the ingest (operator/rollout.py), as a table."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe.operator.rollout import ingest_must_wait, rolled_out

OLD, NEW = "imagepipe:1", "imagepipe:2"


def deployment(image: str, generation: int = 2, replicas: int = 3, **status: int) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"image": image}]}}},
        "status": status,
    }


DONE = {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3}


@pytest.mark.parametrize(
    ("consumer", "expected"),
    [
        (deployment(NEW, **DONE), True),
        (deployment(OLD, **DONE), False),  # the consumers' spec is not changed yet
        (deployment(NEW, observedGeneration=1, updatedReplicas=3, replicas=3), False),  # not seen yet
        (deployment(NEW, observedGeneration=2, updatedReplicas=2, replicas=4), False),  # mid-rollout
        (deployment(NEW, observedGeneration=2, updatedReplicas=3, replicas=4), False),  # an old pod left
        (deployment(NEW, replicas=0, observedGeneration=2), True),  # scaled to zero
        (None, False),
    ],
)
def test_consumer_rolled_out(consumer: dict[str, Any] | None, expected: bool) -> None:
    assert rolled_out(consumer, NEW) is expected


@pytest.mark.parametrize(
    ("ingest", "consumer", "waits"),
    [
        (None, None, False),  # first creation: no old consumers exist
        (deployment(NEW, **DONE), deployment(OLD), False),  # no image change for the ingest
        (deployment(OLD, **DONE), deployment(OLD, **DONE), True),
        (deployment(OLD, **DONE), deployment(NEW, observedGeneration=2, updatedReplicas=1, replicas=3), True),
        (deployment(OLD, **DONE), deployment(NEW, **DONE), False),
    ],
)
def test_ingest_waits_for_the_consumers(
    ingest: dict[str, Any] | None, consumer: dict[str, Any] | None, waits: bool
) -> None:
    assert ingest_must_wait(ingest, NEW, consumer) is waits
