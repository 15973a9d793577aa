"""Shared fixtures of the operator tests: ImagePipeline bodies as kopf sees them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.operator.apiserver import ApiServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    data["metadata"].setdefault("uid", f"uid-{data['metadata']['name']}")
    data["metadata"].setdefault("generation", 1)
    return data


@pytest.fixture
def minimal() -> dict[str, Any]:
    return example("minimal.yaml")


@pytest.fixture
def full() -> dict[str, Any]:
    return example("full.yaml")


@pytest.fixture(params=[False])
def api(request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    """kmock's API server on loopback, in a thread of its own (parametrize
    indirectly with True to serve KEDA's API too)."""
    server = ApiServer(keda=request.param)
    server.start()
    assert server.ready.wait(10)
    yield server
    server.stop()
