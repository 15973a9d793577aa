"""The provisioning decisions as tables: lifecycle merge by rule ID, whether
the public-read policy may be written, what Block Public Access and a
missing CDN mean."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe.bucket_rules import (
    PUBLIC_READ_SID,
    contains,
    decide_policy,
    effective_public_read,
    lifecycle_lost,
    merge_lifecycle,
    public_access_problem,
    public_read_statement,
    serving_problem,
)
from imagepipe.lifecycle import lifecycle_rules

OURS = lifecycle_rules()
OWN = {"ID": "owner-logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 30}}
STALE = {**OURS[0], "Expiration": {"Days": 1}}
# What a server hands back: our rule with a field of its own added.
ECHOED = [{**rule, "Filter": {**rule["Filter"], "ObjectSizeGreaterThan": 0}} for rule in OURS]


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], OURS),
        ([OWN], [OWN, *OURS]),
        ([OWN, *OURS], None),
        (ECHOED, None),
        ([STALE, OWN], [OWN, *OURS]),
        ([OURS[1], OWN], [OWN, *OURS]),
    ],
    ids=[
        "empty",
        "owner-kept-ours-added",
        "already-there",
        "server-added-fields",
        "ours-stale",
        "ours-partial",
    ],
)
def test_merge_lifecycle(existing: list[dict[str, Any]], expected: list[dict[str, Any]] | None) -> None:
    assert merge_lifecycle(existing, OURS) == expected


def test_lifecycle_lost_names_the_missing_rules() -> None:
    assert lifecycle_lost([OWN, *OURS], [OWN, *OURS]) == []
    assert lifecycle_lost([], [OWN, OURS[0]]) == ["owner-logs", "expire-originals"]
    assert lifecycle_lost([STALE], [OURS[0]]) == ["expire-originals"]


def test_contains_is_a_deep_subset() -> None:
    assert contains({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 1}})
    assert not contains({"a": {"b": 2}}, {"a": {"b": 1}})
    assert not contains(None, {"a": 1})


BUCKET = "photos"
OURS_ONLY = {"Version": "2012-10-17", "Statement": [public_read_statement(BUCKET)]}
# AWS may store `"*"` as {"AWS": "*"} and a single action as a list.
OURS_AS_STORED = {
    "Version": "2012-10-17",
    "Statement": [
        {**public_read_statement(BUCKET), "Principal": {"AWS": "*"}, "Action": ["s3:GetObject"]},
    ],
}
FOREIGN = {"Sid": "DenyHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
OWNERS = {"Version": "2012-10-17", "Statement": FOREIGN}
MIXED = {"Version": "2012-10-17", "Statement": [FOREIGN, public_read_statement(BUCKET)]}
OURS_OTHER_BUCKET = {"Version": "2012-10-17", "Statement": [public_read_statement("elsewhere")]}


@pytest.mark.parametrize(
    ("existing", "public_read", "action"),
    [
        (None, True, "put"),
        (None, False, "keep"),
        (OURS_ONLY, True, "keep"),
        (OURS_AS_STORED, True, "keep"),
        (OURS_ONLY, False, "delete"),
        (OWNERS, True, "conflict"),
        (OWNERS, False, "keep"),
        (MIXED, True, "keep"),
        (MIXED, False, "keep"),
        (OURS_OTHER_BUCKET, True, "put"),
    ],
    ids=[
        "none-wanted",
        "none-unwanted",
        "ours",
        "ours-as-aws-stores-it",
        "ours-no-longer-wanted",
        "owners-wanted",
        "owners-unwanted",
        "owner-added-ours",
        "owner-added-ours-unwanted",
        "ours-stale",
    ],
)
def test_decide_policy(existing: dict[str, Any] | None, public_read: bool, action: str) -> None:
    decision = decide_policy(existing, BUCKET, public_read)
    assert decision.action == action
    if action == "put":
        assert decision.document == OURS_ONLY
        assert decision.document["Statement"][0]["Sid"] == PUBLIC_READ_SID


@pytest.mark.parametrize(
    ("block", "public_read", "reason"),
    [
        (None, True, None),
        ({"BlockPublicAcls": True, "IgnorePublicAcls": True}, True, None),
        ({"BlockPublicPolicy": True}, True, "PublicAccessBlocked"),
        ({"RestrictPublicBuckets": True}, True, "PublicAccessBlocked"),
        ({"BlockPublicPolicy": True, "RestrictPublicBuckets": True}, False, None),
    ],
)
def test_public_access_block(block: dict[str, bool] | None, public_read: bool, reason: str | None) -> None:
    problem = public_access_problem(BUCKET, block, public_read)
    assert (problem.reason if problem else None) == reason
    if problem:
        assert BUCKET in problem.message and "publicUrl" in problem.message


@pytest.mark.parametrize(
    ("asked", "created", "public"),
    [(None, True, True), (None, False, False), (True, False, True), (False, True, False)],
)
def test_public_read_defaults_to_whether_we_created_the_bucket(
    asked: bool | None, created: bool, public: bool
) -> None:
    assert effective_public_read(asked, created) is public


@pytest.mark.parametrize(
    ("public_read", "public_url", "unservable"),
    [(True, None, False), (False, "https://cdn.example", False), (False, None, True)],
)
def test_variants_need_a_way_to_be_served(
    public_read: bool, public_url: str | None, unservable: bool
) -> None:
    problem = serving_problem(BUCKET, public_read, public_url)
    assert (problem is not None) is unservable
    if problem:
        assert problem.reason == "VariantsUnservable"
