"""A pipeline's backends on the core's loopback S3+SQS server, and consumers as
real processes started by the core (imagepipe.processes), each in its own
process group, so that tests can kill them whole.

Jobs are submitted the way ingest does it: original, then the `queued`
status, then the message (built with the jobs.py helpers)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]

from imagepipe.config import load_settings
from imagepipe.context import SourceInfo
from imagepipe.jobs import job_message, new_job_id, now_iso
from imagepipe.jobstore.documents import queued_doc
from imagepipe.jobstore.keys import original_key, status_key
from imagepipe.processes import start_process
from imagepipe.spec import DEFAULT_SPEC, VariantList
from tests.support.backend import CREDENTIALS, provision

REPO = Path(__file__).resolve().parents[2]
FINISHED = frozenset({"completed", "failed"})


@dataclass
class Stack:
    endpoint: str
    visibility: int = 3
    max_receives: int = 3
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")

    def __post_init__(self) -> None:
        self.bucket = f"{self.name}-bucket"
        self.env = {
            **CREDENTIALS,
            "IMAGEPIPE_AWS_ENDPOINT_URL": self.endpoint,
            "IMAGEPIPE_BUCKET": self.bucket,
            "IMAGEPIPE_QUEUE_NAME": f"{self.name}-jobs",
            "IMAGEPIPE_VISIBILITY_TIMEOUT_SECONDS": str(self.visibility),
            "IMAGEPIPE_SHUTDOWN_GRACE_SECONDS": "10",
            "IMAGEPIPE_WORKER_SLOTS": "2",
            "IMAGEPIPE_LOG_LEVEL": "debug",
        }
        queues = provision(load_settings(self.env), self.max_receives, self.visibility)
        self.queue_url, self.dlq_url = queues.queue_url, queues.dlq_url
        self.env["IMAGEPIPE_QUEUE_URL"] = self.queue_url
        kwargs: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.s3 = boto3.client("s3", **kwargs)
        self.sqs = boto3.client("sqs", **kwargs)

    # --- submitting ---------------------------------------------------------

    def submit(
        self,
        data: bytes,
        spec: VariantList = DEFAULT_SPEC,
        pipeline: str = "default",
        job_id: str | None = None,
        trace_id: str | None = None,
        with_original: bool = True,
    ) -> str:
        job_id = job_id or new_job_id()
        if with_original:
            self.s3.put_object(Bucket=self.bucket, Key=original_key(job_id), Body=data)
        source = SourceInfo(format="jpeg", width=0, height=0, frames=1, bytes=len(data))
        doc = queued_doc(job_id, pipeline, spec, source, "tester", now_iso())
        self.s3.put_object(Bucket=self.bucket, Key=status_key(job_id), Body=json.dumps(doc).encode())
        self.send(job_message(job_id, pipeline, spec, now_iso()).to_json(), trace_id or f"trace-{job_id[:8]}")
        return job_id

    def send(self, body: str, trace_id: str = "trace-raw") -> None:
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={"trace_id": {"DataType": "String", "StringValue": trace_id}},
        )

    # --- observing ----------------------------------------------------------

    def status(self, job_id: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=status_key(job_id))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        doc: dict[str, Any] = json.loads(body)
        return doc

    def wait_for(
        self, job_ids: Iterable[str], timeout: float = 60, statuses: frozenset[str] = FINISHED
    ) -> dict[str, dict[str, Any]]:
        pending, done = set(job_ids), {}
        deadline = time.monotonic() + timeout
        while pending:
            for job_id in list(pending):
                doc = self.status(job_id)
                if doc and doc["status"] in statuses:
                    done[job_id] = doc
                    pending.discard(job_id)
            if pending:
                assert time.monotonic() < deadline, {j: (self.status(j) or {}).get("status") for j in pending}
                time.sleep(0.1)
        return done

    def keys(self, prefix: str) -> dict[str, dict[str, Any]]:
        listing = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return {o["Key"]: o for o in listing.get("Contents", [])}

    def counts(self, queue_url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of the queue (default: the job queue)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def settled(self, timeout: float = 60, dead_letters: bool = False) -> None:
        """Wait until the job queue (and, if asked, the dead-letter queue) holds nothing,
        visible or in flight.

        A consumer deletes a message only after it wrote the job's last state and emitted
        its event, so a test that has just seen that state must wait for the delete, not
        assert it at once. A message that is never deleted keeps the queue busy: it
        reappears after each visibility timeout until the redrive policy moves it, and
        the dead-letter queue then holds it.
        """
        urls = [self.queue_url, self.dlq_url] if dead_letters else [self.queue_url]
        deadline = time.monotonic() + timeout
        while (counts := [self.counts(url) for url in urls]) != [(0, 0)] * len(urls):
            assert time.monotonic() < deadline, f"messages left (visible, in flight): {counts}"
            time.sleep(0.1)

    def dead_letters(self, wait: float = 0) -> list[dict[str, Any]]:
        """The DLQ's messages, received (and so hidden) for a while."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + wait
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
            ).get("Messages", [])
            messages += got
            if messages or time.monotonic() >= deadline:
                return messages
            time.sleep(0.2)


class Consumer:
    """`imagepipe consume` as a child process in a session of its own."""

    def __init__(
        self,
        stack: Stack,
        log_dir: Path,
        name: str = "consumer",
        slow_render: float = 0.0,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.log_path = log_dir / f"{name}.log"
        module = "tests.consumer.slow_consumer" if slow_render else "imagepipe.cli"
        full_env = {
            **os.environ,
            **stack.env,
            **(env or {}),
            "SLOW_RENDER_SECONDS": str(slow_render),
            "PYTHONPATH": str(REPO),
        }
        command = [
            sys.executable,
            "-m",
            module,
            "consume",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            "0",
        ]
        self.log_path.write_bytes(b"")
        self.process = start_process(
            [*command, *args], full_env, log=self.log_path, cwd=REPO, own_session=True
        )
        self.metrics_port = int(self.wait_for_line("consumer started", timeout=30)["metrics_port"])

    def lines(self) -> list[dict[str, Any]]:
        parsed = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                parsed.append(json.loads(raw))
            except json.JSONDecodeError:
                parsed.append({"message": raw, "unparsed": True})
        return parsed

    def wait_for_line(self, message: str, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if message in line.get("message", "") and all(line.get(k) == v for k, v in fields.items()):
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line {message!r} {fields}; log:\n{self.log_path.read_text()[-4000:]}")

    def signal(self, sig: int, group: bool = True) -> None:
        if group:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        else:
            # The pool's workers may outlive a parent that died first.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
