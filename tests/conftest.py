"""Fixtures shared by every suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backend import CREDENTIALS, MotoServer, moto_server
from tests.support.faultproxy import FaultProxy

REPO = Path(__file__).resolve().parents[1]
# The real test images live outside the repository (their licences are their
# own): the one place the tests name a path outside it (docs/testing.md).
CORPUS = Path(os.environ.get("IMAGEPIPE_CORPUS") or REPO.parent / "shared" / "corpus").resolve()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    assert CORPUS.is_dir(), f"the test corpus is missing at {CORPUS}; set IMAGEPIPE_CORPUS to its folder"
    return CORPUS


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto(aws_credentials: None) -> Iterator[MotoServer]:
    """One S3+SQS server for the session; reset it per test with `moto.reset()`."""
    with moto_server() as server:
        yield server


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the session's moto server, in `pass` mode:
    point a role's endpoint at `http://127.0.0.1:{proxy.port}` to cut it off."""
    with FaultProxy.to(moto.endpoint) as running:
        yield running
