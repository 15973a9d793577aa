"""Every role refuses, at start-up, an S3 server that ignores conditional
writes: the job store's compare-and-swap would silently stop protecting
anything. Real processes, real SQS (moto); S3 is the fake that answers 200 to
every PutObject whatever its If-None-Match."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from imagepipe.config import load_settings
from tests.support.backend import CREDENTIALS, MotoServer, free_port, provision
from tests.support.fake_s3 import fake_s3

COMMANDS = {
    "serve": lambda: ["serve", "--host", "127.0.0.1", "--port", str(free_port())],
    "consume": lambda: ["consume", "--metrics-host", "127.0.0.1", "--metrics-port", "0"],
    "jobs": lambda: ["jobs", "list", "--status", "failed"],
}


@pytest.fixture
def environment(moto: MotoServer) -> Iterator[dict[str, str]]:
    moto.reset()
    names = {**CREDENTIALS, "IMAGEPIPE_BUCKET": "photos", "IMAGEPIPE_QUEUE_NAME": "jobs"}
    provision(load_settings({**names, "IMAGEPIPE_AWS_ENDPOINT_URL": moto.endpoint}))
    with fake_s3("forgetful") as s3:
        yield {
            **os.environ,
            **names,
            "IMAGEPIPE_S3_ENDPOINT_URL": s3,
            "IMAGEPIPE_SQS_ENDPOINT_URL": moto.endpoint,
            "IMAGEPIPE_LOG_FORMAT": "text",
        }


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_role_refuses_a_backend_without_conditional_writes(
    environment: dict[str, str], command: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "imagepipe.cli", *COMMANDS[command]()],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "accepted a second PutObject with If-None-Match" in done.stderr
    assert "'photos'" in done.stderr
