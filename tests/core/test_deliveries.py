"""The delivery record: the pure update as a table (prior state of the event,
attempt → the event's new entry), and its compare-and-swap write through the
real job store against the moto server, raced by concurrent writers."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest

from imagepipe.aws import open_clients
from imagepipe.config import load_settings
from imagepipe.jobs import new_job_id
from imagepipe.jobstore.deliveries import (
    ABANDONED,
    DELIVERED,
    PENDING,
    Attempt,
    event_state,
    is_settled,
    listed,
    record_attempt,
)
from imagepipe.jobstore.keys import delivery_key
from imagepipe.jobstore.store import JobStore
from tests.support.backend import CREDENTIALS, MotoServer, provision

T0, T1, T2 = "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:05.000Z", "2026-01-01T00:00:20.000Z"
FAILED_503 = Attempt(T1, {"status": 503}, PENDING, next_attempt_at=T2)
TIMED_OUT = Attempt(T1, {"error": "timeout"}, PENDING, next_attempt_at=T2)
ACCEPTED = Attempt(T1, {"status": 204}, DELIVERED)
GIVEN_UP = Attempt(T1, {"status": 500}, ABANDONED, next_attempt_at=T2)


def prior(state: str | None) -> dict[str, Any] | None:
    """A record in which event `e` has had one attempt ending in `state` (None: no record)."""
    if state is None:
        return None
    entry = {
        "event": "image.completed",
        "state": state,
        "attempts": 1,
        "first_attempt_at": T0,
        "last_attempt_at": T0,
        "last_result": {"status": 200 if state == DELIVERED else 500},
        "next_attempt_at": T1 if state == PENDING else None,
        "delivered_at": T0 if state == DELIVERED else None,
    }
    return {"job_id": "j", "deliveries": {"e": entry, "other": {**entry, "state": PENDING}}}


# (prior state of `e`, attempt) → (state, attempts, first_attempt_at, last_result, next, delivered_at);
# None: the record does not change.
TABLE: list[tuple[str | None, Attempt, tuple[Any, ...] | None]] = [
    (None, FAILED_503, (PENDING, 1, T1, {"status": 503}, T2, None)),
    (None, TIMED_OUT, (PENDING, 1, T1, {"error": "timeout"}, T2, None)),
    (None, ACCEPTED, (DELIVERED, 1, T1, {"status": 204}, None, T1)),
    (None, GIVEN_UP, (ABANDONED, 1, T1, {"status": 500}, None, None)),
    (PENDING, FAILED_503, (PENDING, 2, T0, {"status": 503}, T2, None)),
    (PENDING, ACCEPTED, (DELIVERED, 2, T0, {"status": 204}, None, T1)),
    (PENDING, GIVEN_UP, (ABANDONED, 2, T0, {"status": 500}, None, None)),
    (DELIVERED, FAILED_503, None),
    (DELIVERED, ACCEPTED, None),
    (DELIVERED, GIVEN_UP, None),
    (ABANDONED, ACCEPTED, None),
    (ABANDONED, FAILED_503, None),
]


@pytest.mark.parametrize(("state", "attempt", "expected"), TABLE)
def test_an_attempt_moves_the_record(
    state: str | None, attempt: Attempt, expected: tuple[Any, ...] | None
) -> None:
    before = prior(state)
    after = record_attempt(before, "j", "e", "image.completed", attempt)
    if expected is None:
        assert after is None, "a delivered or abandoned event never changes"
        assert is_settled(before, "e")
        return
    assert after is not None
    entry = after["deliveries"]["e"]
    fields = ("state", "attempts", "first_attempt_at", "last_result", "next_attempt_at", "delivered_at")
    assert tuple(entry[f] for f in fields) == expected
    assert (entry["event"], entry["last_attempt_at"], after["job_id"]) == ("image.completed", T1, "j")
    if before is not None:
        assert after["deliveries"]["other"] == before["deliveries"]["other"], "other events are kept"


def test_an_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown delivery state"):
        record_attempt(None, "j", "e", "image.completed", Attempt(T1, {}, "maybe"))


def test_reading_tolerates_a_malformed_record() -> None:
    assert event_state({"deliveries": {"e": "x"}}, "e") is None
    assert listed({"deliveries": []}) == []
    assert listed(None) == []


def test_listed_oldest_first_with_ids() -> None:
    record = record_attempt(None, "j", "late", "image.deleted", Attempt(T2, {"status": 204}, DELIVERED))
    record = record_attempt(record, "j", "early", "image.completed", FAILED_503)
    assert [(d["id"], d["event"]) for d in listed(record)] == [
        ("early", "image.completed"),
        ("late", "image.deleted"),
    ]


@pytest.fixture
def settings(moto: MotoServer) -> Any:
    moto.reset()
    env = {
        **CREDENTIALS,
        "IMAGEPIPE_AWS_ENDPOINT_URL": moto.endpoint,
        "IMAGEPIPE_BUCKET": "delivery-records",
        "IMAGEPIPE_QUEUE_NAME": "delivery-records-jobs",
    }
    found = load_settings(env)
    provision(found)
    return found


async def _with_store(settings: Any, work: Any) -> Any:
    async with AsyncExitStack() as exits:
        s3, _ = await open_clients(settings, exits)
        return await work(JobStore(s3, settings.bucket))


def test_concurrent_attempts_are_each_counted_once(settings: Any) -> None:
    """Writers racing on one record (as deliverers holding duplicate messages do): every
    attempt is counted, none overwritten, and the other event's entry survives."""
    job_id, attempts = new_job_id(), 12

    async def race(store: JobStore) -> list[dict[str, Any]]:
        await store.record_delivery(job_id, "other", "image.completed", FAILED_503)
        await asyncio.gather(
            *(store.record_delivery(job_id, "e", "image.deleted", FAILED_503) for _ in range(attempts))
        )
        return await store.deliveries(job_id)

    found = {d["id"]: d for d in asyncio.run(_with_store(settings, race))}
    assert found["e"]["attempts"] == attempts
    assert found["other"]["attempts"] == 1


def test_a_delivered_event_is_not_written_again(settings: Any) -> None:
    job_id = new_job_id()
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")

    async def deliver(store: JobStore) -> tuple[Any, Any, list[dict[str, Any]]]:
        assert await store.deliveries(job_id) == []
        first = await store.record_delivery(job_id, "e", "image.completed", ACCEPTED)
        etag = s3.head_object(Bucket=settings.bucket, Key=delivery_key(job_id))["ETag"]
        again = await store.record_delivery(job_id, "e", "image.completed", FAILED_503)
        assert s3.head_object(Bucket=settings.bucket, Key=delivery_key(job_id))["ETag"] == etag
        return first, again, await store.deliveries(job_id)

    first, again, shown = asyncio.run(_with_store(settings, deliver))
    assert first is not None and again is None
    assert [(d["id"], d["state"], d["attempts"]) for d in shown] == [("e", DELIVERED, 1)]
