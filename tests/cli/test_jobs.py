"""`imagepipe jobs` as a real process against the loopback moto server: the
failure index lists failed jobs, `retry --all-failed` re-enqueues those a
retry can fix (and says when an original has expired), bad input is one line
and exit status 2."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from contextlib import AsyncExitStack

from imagepipe.aws import open_clients
from imagepipe.config import load_settings
from imagepipe.context import SourceInfo
from imagepipe.geometry import Focus
from imagepipe.jobs import job_message, new_job_id, now_iso, parse_message
from imagepipe.jobstore.documents import queued_doc
from imagepipe.jobstore.keys import original_key
from imagepipe.jobstore.store import JobStore
from imagepipe.jobstore.transitions import Fail, Queue
from imagepipe.spec import DEFAULT_SPEC, VariantList
from tests.consumer.stack import REPO, Stack
from tests.support.backend import MotoServer


def failed_job(
    stack: Stack,
    code: str,
    with_original: bool,
    spec: VariantList = DEFAULT_SPEC,
    focus: Focus | None = None,
) -> str:
    """A job as a consumer leaves it after failing with `code`."""
    job_id = new_job_id()

    async def go() -> None:
        async with AsyncExitStack() as exits:
            s3, _ = await open_clients(load_settings(stack.env), exits)
            store = JobStore(s3, stack.bucket)
            if with_original:
                await store.put_original(job_id, b"jpeg bytes", "image/jpeg")
            source = SourceInfo(format="jpeg", width=1, height=1, frames=1, bytes=10)
            await store.apply(
                job_id, Queue(queued_doc(job_id, "default", spec, source, None, now_iso(), focus))
            )
            await store.apply(job_id, Fail(code, "it failed", now_iso()))

    asyncio.run(go())
    return job_id


def jobs(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "imagepipe.cli", "jobs", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_list_and_retry_failed_jobs(moto: MotoServer) -> None:
    stack = Stack(moto.endpoint)
    retryable = failed_job(stack, "retries_exhausted", with_original=True)
    expired = failed_job(stack, "retries_exhausted", with_original=False)
    bad_image = failed_job(stack, "corrupt_image", with_original=True)

    listed = jobs(stack, "list", "--status", "failed", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["job_id"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {retryable, expired, bad_image}
    assert rows[bad_image]["code"] == "corrupt_image" and rows[retryable]["status"] == "failed"

    retried = jobs(stack, "retry", "--all-failed")
    assert retried.returncode == 1, "one job could not be retried"
    assert f"the original {original_key(expired)} has expired" in retried.stdout
    assert bad_image not in retried.stdout, "a retry cannot fix a bad image"
    assert stack.status(retryable)["status"] == "queued"  # type: ignore[index]
    assert stack.status(expired)["status"] == "failed"  # type: ignore[index]
    (message,) = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    job = parse_message(message["Body"])
    assert job.job_id == retryable and job.spec == DEFAULT_SPEC.spec_hash

    shown = jobs(stack, "show", retryable, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["retries"] == 1
    again = jobs(stack, "retry", retryable, "--json")
    assert again.returncode == 1 and json.loads(again.stdout)[0]["retry"] == "not_failed"


def test_a_retry_asks_for_exactly_what_the_upload_asked(moto: MotoServer) -> None:
    # Every per-job option that changes the output differs from its default here.
    data = [
        {**v, "gravity": "attention"} if v.get("method") == "cover" else v for v in DEFAULT_SPEC.to_data()
    ]
    spec = VariantList.from_data(data, placeholder=False)
    focus = Focus(0.25, 0.75)
    stack = Stack(moto.endpoint)
    job_id = failed_job(stack, "retries_exhausted", with_original=True, spec=spec, focus=focus)
    retried = jobs(stack, "retry", job_id, "--json")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    (message,) = stack.sqs.receive_message(QueueUrl=stack.queue_url)["Messages"]
    job = parse_message(message["Body"])
    asked = job_message(job_id, "default", spec, job.enqueued_at, focus)
    assert job == asked, "the retried message is the uploaded job's message, re-sent"
    assert job.placeholder is False and job.variant_list() == spec


def test_bad_input_is_one_line_and_exit_2(moto: MotoServer) -> None:
    stack = Stack(moto.endpoint)
    for args, named in [
        (("show", "not-a-job"), "'not-a-job' is not a job id"),
        (("list", "--status", "failed", "--since", "yesterday"), "--since 'yesterday'"),
        (("list", "--status", "failed", "--since", "90d"), "keeps 15 days"),
        (("retry",), "job ids or --all-failed"),
        (("show", new_job_id()), "no job"),
    ]:
        result = jobs(stack, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and named in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
