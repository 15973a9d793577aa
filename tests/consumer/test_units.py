"""The consumer's pure parts: backoff, fault classification, message parsing,
metric names and buckets, liveness, and the JSON log lines."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures.process import BrokenProcessPool

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prometheus_client import generate_latest

from imagepipe.consumer.messages import parse_received
from imagepipe.consumer.metrics import Metrics
from imagepipe.consumer.retry import backoff, is_transient, retrying
from imagepipe.errors import BackendUnavailable
from imagepipe.health import Liveness
from imagepipe.logs import JsonFormatter, job_context
from imagepipe.slo import LATENCY_BUCKETS


def wrapped(cause: Exception) -> BackendUnavailable:
    """As the job store raises it."""
    exc = BackendUnavailable("storage or queue unavailable")
    exc.__cause__ = cause
    return exc


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(("attempt", "expected_cap"), [(0, 0.2), (1, 0.4), (2, 0.8), (5, 5.0), (30, 5.0)])
def test_backoff_is_exponential_with_full_jitter(attempt: int, expected_cap: float) -> None:
    assert backoff(attempt, 0.2, 5.0, rand=lambda: 1.0) == pytest.approx(expected_cap)
    assert backoff(attempt, 0.2, 5.0, rand=lambda: 0.0) == 0.0
    assert 0 <= backoff(attempt, 0.2, 5.0) <= expected_cap


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("Throttling", 400), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchKey", 404), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (BrokenProcessPool(), True),
        (ValueError("bug"), False),
        (wrapped(client_error("SlowDown", 503)), True),
        (wrapped(client_error("AccessDenied", 403)), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_retrying_retries_transient_faults_only() -> None:
    calls: list[int] = []
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise client_error("SlowDown", 503)
        return "ok"

    assert asyncio.run(retrying(flaky, attempts=4, sleep=sleep)) == "ok"
    assert len(calls) == 3 and len(slept) == 2

    async def broken() -> None:
        calls.append(1)
        raise client_error("AccessDenied", 403)

    calls.clear()
    with pytest.raises(ClientError):
        asyncio.run(retrying(broken, attempts=4, sleep=sleep))
    assert len(calls) == 1

    async def down() -> None:
        raise client_error("ServiceUnavailable", 503)

    with pytest.raises(ClientError):
        asyncio.run(retrying(down, attempts=3, sleep=sleep))


def test_parse_received_reads_attributes_and_trace_id() -> None:
    message = parse_received(
        {
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": "{}",
            "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000123"},
            "MessageAttributes": {"trace_id": {"DataType": "String", "StringValue": "abc"}},
        }
    )
    assert (message.receive_count, message.sent_at, message.trace_id) == (3, 1700000000.123, "abc")
    bare = parse_received({"MessageId": "m2", "ReceiptHandle": "r2"})
    assert (bare.receive_count, bare.sent_at, bare.trace_id) == (1, None, None)


def test_metrics_have_the_designed_names_and_the_objective_bucket() -> None:
    metrics = Metrics()
    assert 30 in LATENCY_BUCKETS
    assert LATENCY_BUCKETS == (0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 40, 60, 120, 300)
    metrics.jobs.labels("default", "completed", "none").inc()
    metrics.job_latency.labels("default").observe(12)
    metrics.queue_wait.labels("default").observe(1)
    metrics.retried.labels("backend_unavailable").inc()
    text = generate_latest(metrics.registry).decode()
    for name in (
        'imagepipe_job_latency_seconds_bucket{le="30.0",pipeline="default"} 1.0',
        "imagepipe_queue_wait_seconds_count",
        'imagepipe_stage_duration_seconds_count{stage="upload"}',
        'imagepipe_jobs_total{code="none",outcome="completed",pipeline="default"} 1.0',
        "imagepipe_jobs_in_flight",
        "imagepipe_worker_slots",
        "imagepipe_messages_received_total",
        "imagepipe_messages_deleted_total",
        'imagepipe_messages_retried_total{reason="backend_unavailable"}',
        "imagepipe_deadline_misses_total",
    ):
        assert name in text, name
    # A second consumer in the same process does not clash.
    Metrics()


def test_prepared_series_start_at_zero_so_the_first_job_counts() -> None:
    metrics = Metrics()
    metrics.prepare(["default", "avatars"])
    text = generate_latest(metrics.registry).decode()
    for pipeline in ("default", "avatars"):
        assert f'imagepipe_jobs_total{{code="none",outcome="completed",pipeline="{pipeline}"}} 0.0' in text
        failed = f'imagepipe_jobs_total{{code="corrupt_image",outcome="failed",pipeline="{pipeline}"}}'
        assert f"{failed} 0.0" in text
        assert f'imagepipe_job_latency_seconds_count{{pipeline="{pipeline}"}} 0.0' in text
        assert f'imagepipe_deadline_misses_total{{pipeline="{pipeline}"}} 0.0' in text


def test_liveness_fails_when_the_poll_loop_stalls() -> None:
    liveness = Liveness(stall_seconds=10)
    assert liveness.healthy()
    liveness.last_tick -= 11
    assert not liveness.healthy()
    liveness.stopping = True
    assert liveness.healthy(), "a deliberate drain is not a stall"


def test_json_log_lines_carry_job_and_trace_ids() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("imagepipe.consumer.job", logging.INFO, __file__, 1, "job started", None, None)
    record.attempt = 2
    with job_context("job-1", "trace-1"):
        line = json.loads(formatter.format(record))
    assert line["message"] == "job started" and line["level"] == "info"
    assert (line["job_id"], line["trace_id"], line["attempt"]) == ("job-1", "trace-1", 2)
    outside = json.loads(formatter.format(record))
    assert "job_id" not in outside and "trace_id" not in outside
