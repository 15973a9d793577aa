"""Fixtures of the consumer tests: a pipeline's backends on the session's
loopback moto server (`moto`, tests/conftest.py; unique names per stack, so no
reset is needed), and consumer processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.consumer.stack import Consumer, Stack
from tests.support.backend import MotoServer


@pytest.fixture
def stack(moto: MotoServer) -> Stack:
    return Stack(moto.endpoint)


@pytest.fixture
def consumers(tmp_path: Path) -> Iterator[Callable[..., Consumer]]:
    """Start consumers with `consumers(stack, name=..., slow_render=...)`; all are killed at the end."""
    started: list[Consumer] = []

    def start(stack: Stack, **kwargs: object) -> Consumer:
        consumer = Consumer(stack, tmp_path, **kwargs)  # type: ignore[arg-type]
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.close()
