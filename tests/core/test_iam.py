"""The IAM policies stay derived from the code. The calls in each role's own
modules are granted to that role; the job store and queue modules of the
core run under the ingest's and the consumer's identities, so each of their
calls is granted to one of those; and nothing is granted that no call the
role can reach needs. Which of the shared calls each role really makes, and
with which keys, is what tests/system/test_iam_enforced.py shows under
moto's enforcement."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from imagepipe.iam import GRANTS, METHOD_ACTIONS, ROLES, TAGGED_PUT, WEBHOOK_QUEUE, Role, role_policy

REPO = Path(__file__).resolve().parents[2]
CORE = "src/imagepipe"
OWN: dict[Role, tuple[str, ...]] = {
    "ingest": ("service",),
    "consumer": ("consumer",),
    "deliverer": tuple(f"{CORE}/webhooks/{m}.py" for m in ("deliveryqueue", "delivery", "deliverer")),
    "operator": ("operator", f"{CORE}/provision.py", f"{CORE}/privacy.py"),
}
# The core's job store and queue: used by the ingest, the consumer and the deliverer.
SHARED = (f"{CORE}/jobstore", f"{CORE}/jobqueue.py", f"{CORE}/aws.py", f"{CORE}/webhooks/outbox.py")
DATA_ROLES: tuple[Role, ...] = ("ingest", "consumer", "deliverer")
# `anonymous_s3.get_object(` is the privacy probe's unsigned GET: it needs no grant.
CALL = re.compile(r"\b(?:s3|sqs)\.([a-z0-9_]+)\(")


def calls(sources: tuple[str, ...]) -> set[str]:
    files: list[Path] = []
    for source in sources:
        path = REPO / source
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return {method for file in files for method in CALL.findall(file.read_text())}


def actions(sources: tuple[str, ...]) -> set[str]:
    methods = calls(sources)
    unknown = methods - METHOD_ACTIONS.keys()
    assert not unknown, f"add the IAM action of {sorted(unknown)} to imagepipe.iam.METHOD_ACTIONS"
    return {METHOD_ACTIONS[m] for m in methods}


@pytest.mark.parametrize("role", ROLES)
def test_a_roles_own_calls_are_granted(role: Role) -> None:
    missing = actions(OWN[role]) - set(GRANTS[role])
    assert not missing, f"{role} calls these without a grant in imagepipe.iam.GRANTS"


def test_the_shared_store_and_queue_calls_are_granted_to_a_role_that_uses_them() -> None:
    granted = {action for role in DATA_ROLES for action in GRANTS[role]}
    assert actions(SHARED) - granted == set()


@pytest.mark.parametrize("role", ROLES)
def test_nothing_is_granted_that_no_reachable_call_needs(role: Role) -> None:
    reachable = actions(OWN[role] + (SHARED if role in DATA_ROLES else ()))
    unused = set(GRANTS[role]) - reachable - {TAGGED_PUT}
    assert not unused, f"{role} is granted these but nothing it runs calls them"


def test_the_scan_sees_the_calls_that_matter() -> None:
    assert {"send_message", "head_bucket", "delete_objects", "put_object"} <= calls(SHARED)
    assert {"receive_message", "list_dead_letter_source_queues"} <= calls(OWN["consumer"])
    assert {"put_bucket_policy", "list_dead_letter_source_queues"} <= calls(OWN["operator"])


def test_no_role_may_write_what_another_owns() -> None:
    """The internet-facing ingest cannot write variants; the consumer cannot send jobs
    nor delete originals or status documents; the deliverer writes only delivery
    records (and probes), reads status documents besides (a deletion intent is
    resolved against the tombstone) and uses its queue; none of them configures the bucket."""
    ingest = role_policy("ingest", "b", "arn:q", "arn:d")
    writes = [s for s in ingest["Statement"] if "s3:PutObject" in s["Action"]]
    assert all("variants" not in r for s in writes for r in s["Resource"])
    consumer = GRANTS["consumer"]
    assert consumer["sqs:SendMessage"] == (WEBHOOK_QUEUE,), "events only, never a job"
    assert set(consumer["s3:DeleteObject"]) <= {"variants", "probes"}
    deliverer = GRANTS["deliverer"]
    assert {t for ts in deliverer.values() for t in ts} == {
        "delivery records",
        "status",
        "probes",
        WEBHOOK_QUEUE,
    }
    assert deliverer["s3:GetObject"] == ("status", "delivery records")
    assert deliverer["s3:PutObject"] == ("delivery records", "probes")
    data = {**GRANTS["ingest"], **consumer, **deliverer}
    assert not any(action.startswith(("s3:PutBucket", "s3:CreateBucket", "sqs:Create")) for action in data)


def test_the_chart_readme_prints_each_policy() -> None:
    text = (REPO / "charts/imagepipe/README.md").read_text()
    for role in ROLES:
        block = re.search(rf"### {role}\n\n```json\n(.*?)\n```", text, re.S)
        assert block, f"the chart README has no ### {role} policy"
        queue = "arn:aws:sqs:REGION:ACCOUNT:QUEUE"
        assert json.loads(block.group(1)) == role_policy(role, "BUCKET", queue, f"{queue}-dlq")
