"""Each role under its own IAM policy (imagepipe.iam), on a moto server that
enforces IAM: the operator provisions and checks, a real `imagepipe serve`
and `imagepipe consume` take an upload to completed and then DELETE it, a
real `imagepipe deliver` delivers an event and records it, and a call
outside each policy is refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from imagepipe.iam import ROLES
from imagepipe.jobs import new_job_id, now_iso
from imagepipe.jobstore.keys import delivery_key, status_key
from imagepipe.operator.backend import check_backend
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.webhooks.events import event_for, to_message
from imagepipe.webhooks.intents import deletion_intent, intent_message
from tests.support.backend import free_port
from tests.support.iam_moto import IamMoto, iam_moto
from tests.support.webhook_receiver import Receiver, new_secret

pytestmark = pytest.mark.system
IMAGEPIPE = str(Path(sys.executable).with_name("imagepipe"))
BUCKET, QUEUE = "iam-photos", "iam-jobs"


@contextmanager
def iam_backend() -> Iterator[IamMoto]:
    with iam_moto() as server:
        for role in ROLES:
            server.add_role(role, BUCKET, QUEUE, f"{QUEUE}-dlq")
        yield server


@pytest.fixture(scope="module")
def aws() -> Iterator[IamMoto]:
    with iam_backend() as server:
        yield server


@pytest.fixture
def fresh_aws() -> Iterator[IamMoto]:
    """A server of its own: a long poll of an earlier test's stopped consumer outlives
    it on the shared one (docs/testing.md) and would take this test's message, hidden
    for the queue's visibility timeout."""
    with iam_backend() as server:
        yield server


def operator_check(aws: IamMoto, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in aws.env("operator").items():
        monkeypatch.setenv(name, value)
    backend = {"bucket": BUCKET, "queue": QUEUE, "endpointUrl": aws.endpoint, "provision": True}
    body = {
        "metadata": {"name": "photos", "namespace": "default", "uid": "u"},
        "spec": {"image": "x", "backend": backend},
    }
    return asyncio.run(check_backend(parse_imagepipeline(body)))


def start(aws: IamMoto, role: str, command: list[str], log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEPIPE_", "AWS_"))}
    env.update(aws.env(role))  # type: ignore[arg-type]
    env.update(
        IMAGEPIPE_AWS_ENDPOINT_URL=aws.endpoint,
        IMAGEPIPE_BUCKET=BUCKET,
        IMAGEPIPE_QUEUE_NAME=QUEUE,
        IMAGEPIPE_SHUTDOWN_GRACE_SECONDS="5",
        IMAGEPIPE_SHUTDOWN_DELAY_SECONDS="0",
        IMAGEPIPE_LOG_LEVEL="debug",
        **extra,
    )
    with log.open("wb") as out:
        return subprocess.Popen([IMAGEPIPE, *command], env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(check: Callable[[], bool], what: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while not check():
        assert all(p.poll() is None for p in processes), f"a role exited while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def answers(url: str, status: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=5).status_code == status
        except requests.ConnectionError:
            return False

    return check


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def assert_no_denials(*logs: Path) -> None:
    for log in logs:
        text = log.read_text()
        assert "AccessDenied" not in text and "not authorized" not in text, f"{log.name}:\n{text[-3000:]}"


def upload(api: str, photo: Path) -> str:
    with photo.open("rb") as body:
        answer = requests.post(f"{api}/v1/images", files={"file": ("p.jpg", body, "image/jpeg")}, timeout=30)
    assert answer.status_code in (200, 202), answer.text
    return str(answer.json()["job_id"])


def refused(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as denied:
        call()
    error = denied.value.response["Error"]
    assert "AccessDenied" in str(error) or error.get("Code") == "403", error


def test_each_role_runs_under_its_own_policy(
    aws: IamMoto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, corpus_dir: Path
) -> None:
    state = operator_check(aws, monkeypatch)
    assert (state.ready, state.reason) == (True, "BackendReady"), state.message

    port = free_port()
    api = f"http://127.0.0.1:{port}"
    roles = [
        start(aws, "ingest", ["serve", "--host", "127.0.0.1", "--port", str(port)], tmp_path / "ingest.log"),
        start(
            aws, "consumer", ["consume"], tmp_path / "consumer.log", IMAGEPIPE_METRICS_PORT=str(free_port())
        ),
    ]
    try:
        wait_for(
            answers(f"{api}/readyz", 200), "the ingest's readiness (HeadBucket, GetQueueAttributes)", roles
        )
        job_id = upload(api, corpus_dir / "recurser/Landscape_6.jpg")
        status_url = f"{api}/v1/images/{job_id}"

        def finished() -> bool:
            return requests.get(status_url, timeout=5).json()["status"] in ("completed", "failed")

        wait_for(finished, "the job to finish", roles)
        assert requests.get(status_url, timeout=5).json()["status"] == "completed"
        deleted = requests.delete(status_url, timeout=30)
        assert deleted.status_code in (200, 202, 204), deleted.text
        assert requests.get(status_url, timeout=5).status_code == 404
        listing = aws.client("s3").list_objects_v2(Bucket=BUCKET)
        left = [o["Key"] for o in listing.get("Contents", [])]
        assert left == [status_key(job_id)], "DELETE leaves only the tombstone status document"
    finally:
        stop(roles)
    assert_no_denials(tmp_path / "ingest.log", tmp_path / "consumer.log")


def test_the_consumer_settles_dead_letters_under_its_policy(
    fresh_aws: IamMoto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, corpus_dir: Path
) -> None:
    """A job's message moved to the dead-letter queue by hand (as SQS would after the
    last receive): the consumer's sweeper receives it there, fails the job and deletes it."""
    aws = fresh_aws
    assert operator_check(aws, monkeypatch).ready
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    ingest = start(
        aws, "ingest", ["serve", "--host", "127.0.0.1", "--port", str(port)], tmp_path / "ingest.log"
    )
    try:
        wait_for(answers(f"{api}/readyz", 200), "the ingest's readiness", [ingest])
        job_id = upload(api, corpus_dir / "recurser/Landscape_6.jpg")
        sqs = aws.client("sqs")
        queue, dlq = (sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in (QUEUE, f"{QUEUE}-dlq"))
        found: list[dict[str, Any]] = []

        def received() -> bool:
            found.extend(
                sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"], WaitTimeSeconds=20).get(
                    "Messages", []
                )
            )
            return bool(found)

        wait_for(received, "the job's message", [ingest])
        (message,) = found
        attributes = message.get("MessageAttributes", {})
        sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"], MessageAttributes=attributes)
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        consumer = start(
            aws, "consumer", ["consume"], tmp_path / "consumer.log", IMAGEPIPE_METRICS_PORT=str(free_port())
        )
        try:
            status_url = f"{api}/v1/images/{job_id}"
            wait_for(
                lambda: requests.get(status_url, timeout=5).json()["status"] == "failed",
                "the sweep",
                [consumer],
            )
            assert requests.get(status_url, timeout=5).json()["error"]["code"] == "retries_exhausted"
            wait_for(
                lambda: "Messages" not in sqs.receive_message(QueueUrl=dlq), "the DLQ to empty", [consumer]
            )
        finally:
            stop([consumer])
    finally:
        stop([ingest])
    assert_no_denials(tmp_path / "ingest.log", tmp_path / "consumer.log")


def test_calls_outside_each_policy_are_refused(aws: IamMoto, monkeypatch: pytest.MonkeyPatch) -> None:
    assert operator_check(aws, monkeypatch).ready
    queue = aws.client("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]
    aws.client("s3").put_object(Bucket=BUCKET, Key="jobs/someone.json", Body=b"{}")
    aws.client("s3").put_object(Bucket=BUCKET, Key="originals/someone", Body=b"x")
    s3, sqs = aws.client("s3", "ingest"), aws.client("sqs", "ingest")
    refused(lambda: s3.put_object(Bucket=BUCKET, Key="variants/a/b/c.webp", Body=b"defaced"))
    refused(lambda: s3.get_object(Bucket=BUCKET, Key="originals/someone"))
    refused(lambda: s3.put_bucket_policy(Bucket=BUCKET, Policy="{}"))
    refused(lambda: sqs.receive_message(QueueUrl=queue))
    s3, sqs = aws.client("s3", "consumer"), aws.client("sqs", "consumer")
    refused(lambda: sqs.send_message(QueueUrl=queue, MessageBody="{}"))
    refused(lambda: s3.delete_object(Bucket=BUCKET, Key="originals/someone"))
    refused(lambda: s3.put_object(Bucket=BUCKET, Key="originals/someone", Body=b"replaced"))
    s3, sqs = aws.client("s3", "operator"), aws.client("sqs", "operator")
    refused(lambda: s3.get_object(Bucket=BUCKET, Key="jobs/someone.json"))
    refused(lambda: s3.delete_object(Bucket=BUCKET, Key="originals/someone"))
    refused(lambda: sqs.send_message(QueueUrl=queue, MessageBody="{}"))


def test_the_deliverer_runs_under_its_policy(aws: IamMoto, tmp_path: Path) -> None:
    """A real `imagepipe deliver` under the deliverer's policy: it receives an event,
    posts it, writes the delivery record and deletes the message; it resolves a
    deletion intent by reading the job's tombstone; it cannot write a job's status
    document nor send a message."""
    sqs, s3 = aws.client("sqs"), aws.client("s3")
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    url = sqs.create_queue(QueueName=f"{QUEUE}-webhooks")["QueueUrl"]
    doc = {"job_id": new_job_id(), "status": "completed", "completed_at": now_iso(), "variants": {}}
    event = event_for(doc, "http://cdn.test")
    tomb = {"job_id": new_job_id(), "status": "deleted", "owner": None, "deleted_at": now_iso()}
    deleted = event_for(tomb, "http://cdn.test")
    assert event is not None and deleted is not None
    s3.put_object(Bucket=BUCKET, Key=status_key(deleted.job_id), Body=json.dumps(tomb).encode())
    intent = deletion_intent(deleted.job_id, datetime.now(UTC), 1)
    with Receiver(new_secret()) as receiver:
        deliverer = start(
            aws,
            "deliverer",
            ["deliver"],
            tmp_path / "deliverer.log",
            IMAGEPIPE_METRICS_PORT=str(free_port()),
            IMAGEPIPE_WEBHOOK_URL=receiver.url,
            IMAGEPIPE_WEBHOOK_SECRET=receiver.secret,
            IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE="true",
        )
        try:
            sqs.send_message(QueueUrl=url, MessageBody=to_message(event))
            sqs.send_message(QueueUrl=url, MessageBody=intent_message(intent))
            wanted = {event.id: 1, deleted.id: 1}
            wait_for(lambda: receiver.accepted() == wanted, "the event and the intent delivered", [deliverer])

            def recorded() -> bool:
                listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=delivery_key(event.job_id))
                return bool(listing.get("KeyCount"))

            wait_for(recorded, "the delivery record", [deliverer])
        finally:
            stop([deliverer])
    assert_no_denials(tmp_path / "deliverer.log")
    mine_s3, mine_sqs = aws.client("s3", "deliverer"), aws.client("sqs", "deliverer")
    refused(lambda: mine_s3.put_object(Bucket=BUCKET, Key=status_key(deleted.job_id), Body=b"{}"))
    refused(lambda: mine_sqs.send_message(QueueUrl=url, MessageBody="{}"))
