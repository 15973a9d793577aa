"""The core's local stack (imagepipe.loopback), which `imagepipe dev`, the
load benchmarks and the tests run on: port checks, provisioning, restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
import requests

from imagepipe.loopback import LoopbackStack, PortsBusy, port_free


@contextmanager
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


def leave_time_wait() -> int:
    """A port whose server closed a connection first and stopped: only TIME_WAIT is
    left. The server sets SO_REUSEADDR as aiohttp's and moto's do (Linux lets a
    new bind past a TIME_WAIT socket only when both sides set it)."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = int(server.getsockname()[1])
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end goes to TIME_WAIT
        client.recv(1)
        client.close()
    return port


def test_a_port_left_in_time_wait_is_free_for_a_restart() -> None:
    port = leave_time_wait()
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the old check did, and why it refused
    assert port_free(port)


def test_every_busy_port_is_reported_at_once() -> None:
    with listening() as ingest, listening() as metrics:
        stack = LoopbackStack(port=ingest, metrics_port=metrics)
        with pytest.raises(PortsBusy) as raised:
            stack.start()
    assert raised.value.busy == {"--port": ingest, "--metrics-port": metrics}
    assert stack.backend is None


def test_dev_names_every_busy_port_in_one_line() -> None:
    with listening() as ingest, listening() as backend:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "imagepipe.cli",
                "dev",
                "--port",
                str(ingest),
                "--backend-port",
                str(backend),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(ingest) in lines[0] and str(backend) in lines[0], result.stderr


def test_provisioned_and_restartable_on_the_same_ports() -> None:
    with LoopbackStack(bucket="stack-test", queue="stack-test-jobs") as stack:
        ports = (stack.backend_port, stack.port, stack.metrics_port)
        env = stack.env
        assert env["IMAGEPIPE_BUCKET"] == "stack-test" and env["IMAGEPIPE_QUEUE_URL"].endswith(
            "stack-test-jobs"
        )
        assert env["AWS_ACCESS_KEY_ID"] == "imagepipe-dev"
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.endpoint,
            region_name="us-east-1",
            aws_access_key_id="imagepipe-dev",
            aws_secret_access_key="imagepipe-dev",
        )
        policy = json.loads(s3.get_bucket_policy(Bucket="stack-test")["Policy"])
        assert policy["Statement"][0]["Resource"] == "arn:aws:s3:::stack-test/variants/*"
        stack.start_ingest()
        stack.wait_ready(timeout=60)
        assert requests.get(f"{stack.api}/healthz", timeout=10).status_code == 200
        ingest = stack.roles["ingest"]
    assert ingest.returncode == 0  # stopped by SIGTERM, drained, exited cleanly
    backend, port, metrics = ports
    again = LoopbackStack(
        bucket="stack-test", queue="stack-test-jobs", backend_port=backend, port=port, metrics_port=metrics
    )
    with again:
        assert again.queues is not None and again.queues.queue_url.endswith("stack-test-jobs")


def aws(stack: LoopbackStack, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id="imagepipe-dev",
        aws_secret_access_key="imagepipe-dev",
    )


def moto_handling_a_request() -> bool:
    # moto runs in this process: werkzeug handles each request in a thread of its own.
    return any("process_request_thread" in t.name for t in threading.enumerate())


def test_a_stopped_stack_leaves_nothing_to_the_next_one() -> None:
    """In-thread moto keeps its state in this process. A stack that stops must take
    its objects and queues with it, and a long poll left waiting inside moto by a
    client that went away (a stopped role's) must not take the next stack's
    messages: that stole two events from a webhook test in CI."""
    first = LoopbackStack().start()
    try:
        assert first.queues is not None
        aws(first, "s3").put_object(Bucket=first.bucket, Key="left/behind", Body=b"x")
        poll, queue_url = aws(first, "sqs"), first.queues.queue_url
        waiting = threading.Thread(
            target=lambda: poll.receive_message(
                QueueUrl=queue_url, WaitTimeSeconds=20, VisibilityTimeout=600
            ),
            daemon=True,
        )
        waiting.start()
        deadline = time.monotonic() + 30
        while not moto_handling_a_request():
            assert time.monotonic() < deadline, "the long poll never reached moto"
            time.sleep(0.05)
    finally:
        first.stop()
    with LoopbackStack() as second:
        assert second.queues is not None
        assert aws(second, "s3").list_objects_v2(Bucket=second.bucket).get("KeyCount") == 0
        sqs = aws(second, "sqs")
        sqs.send_message(QueueUrl=second.queues.queue_url, MessageBody="for the second stack")
        got = sqs.receive_message(QueueUrl=second.queues.queue_url, WaitTimeSeconds=5)
        assert [m["Body"] for m in got.get("Messages", [])] == ["for the second stack"]


def test_the_roles_get_dummy_credentials_never_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREAL")
    with LoopbackStack() as stack:
        assert "AWS_PROFILE" not in stack.env and stack.env["AWS_ACCESS_KEY_ID"] != "AKIAREAL"
        assert os.environ["AWS_PROFILE"] == "production"
