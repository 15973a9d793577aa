"""What provisioning writes into a bucket's configuration, decided without
I/O: our lifecycle rules merged by ID into the owner's, whether the
`variants/*` public-read policy may be written, and what Block Public Access
or a missing CDN means for serving variants. `provision.py` does the calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from imagepipe.problems import Problem

Rule = dict[str, Any]
Statement = dict[str, Any]
# A bucket the operator (or `imagepipe dev`) created carries this tag: only
# such a bucket defaults to public-read variants.
CREATED_TAG = {"Key": "imagepipe.io/created-by", "Value": "imagepipe"}
PUBLIC_READ_SID = "ImagepipePublicReadVariants"
# A bucket we create and serve from: ACLs stay blocked, our policy may apply.
CREATED_PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}


def contains(stored: Any, ours: Any) -> bool:
    """`stored` says at least what `ours` says (servers add fields of their own)."""
    if isinstance(ours, dict):
        return isinstance(stored, dict) and all(contains(stored.get(k), v) for k, v in ours.items())
    return bool(stored == ours)


def merge_lifecycle(existing: list[Rule], ours: list[Rule]) -> list[Rule] | None:
    """The owner's rules with ours put in by ID; None when nothing would change.
    (Lifecycle and CORS rules alike.)"""
    our_ids = {rule["ID"] for rule in ours}
    stored = {rule.get("ID"): rule for rule in existing}
    if all(contains(stored.get(rule["ID"]), rule) for rule in ours):
        return None
    return [rule for rule in existing if rule.get("ID") not in our_ids] + ours


CORS_RULE_ID = "imagepipe-variants"
CORS_MAX_AGE_SECONDS = 3600


def variants_cors_rule(origins: tuple[str, ...]) -> Rule:
    """Pages on these origins may read variants from script (canvas, fetch,
    `<img crossorigin>`). S3 CORS rules cannot name a prefix, but they grant
    no access: the policy keeps originals and status documents private."""
    return {
        "ID": CORS_RULE_ID,
        "AllowedMethods": ["GET", "HEAD"],
        "AllowedOrigins": list(origins),
        "ExposeHeaders": ["ETag", "Content-Length", "Content-Type"],
        "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
    }


def lifecycle_lost(stored: list[Rule], wanted: list[Rule]) -> list[str]:
    """IDs of `wanted` rules a read-back does not show (as written)."""
    by_id = {rule.get("ID"): rule for rule in stored}
    return [str(rule.get("ID")) for rule in wanted if not contains(by_id.get(rule.get("ID")), rule)]


def public_read_statement(bucket: str) -> Statement:
    return {
        "Sid": PUBLIC_READ_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/variants/*",
    }


def statements(policy: dict[str, Any] | None) -> list[Statement]:
    found = (policy or {}).get("Statement", [])
    return [found] if isinstance(found, dict) else list(found)


def _normal(statement: Statement) -> Statement:
    """A statement with one-element lists and `{"AWS": "*"}` read as AWS stores them."""
    out = {}
    for key, value in statement.items():
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if key == "Principal" and value == {"AWS": "*"}:
            value = "*"
        out[key] = value
    return out


def has_public_read(policy: dict[str, Any] | None, bucket: str) -> bool:
    ours = public_read_statement(bucket)
    return any(_normal(s) == ours for s in statements(policy))


@dataclass(frozen=True)
class PolicyDecision:
    """keep: write nothing; put: write `document`; delete: the policy is only ours,
    no longer wanted; conflict: the owner's policy would have to change."""

    action: Literal["keep", "put", "delete", "conflict"]
    document: dict[str, Any] | None = None


def decide_policy(existing: dict[str, Any] | None, bucket: str, public_read: bool) -> PolicyDecision:
    """Never write over a policy that holds statements we did not write."""
    foreign = [s for s in statements(existing) if s.get("Sid") != PUBLIC_READ_SID]
    ours_present = has_public_read(existing, bucket)
    if public_read and not ours_present:
        if foreign:
            return PolicyDecision("conflict")
        document = {"Version": "2012-10-17", "Statement": [public_read_statement(bucket)]}
        return PolicyDecision("put", document)
    if not public_read and existing is not None and not foreign:
        return PolicyDecision("delete")
    return PolicyDecision("keep")


def policy_conflict(bucket: str) -> Problem:
    statement = json.dumps(public_read_statement(bucket), separators=(",", ":"))
    return Problem(
        "BucketPolicyConflict",
        f"bucket {bucket!r} has a policy of its own, which the operator never rewrites: add {statement}"
        " to it yourself, or serve variants through a CDN (publicUrl) with backend.publicRead: false",
    )


def public_access_problem(bucket: str, block: dict[str, Any] | None, public_read: bool) -> Problem | None:
    """Block Public Access that would refuse (or silently void) the public-read policy."""
    blocking = [key for key in ("BlockPublicPolicy", "RestrictPublicBuckets") if (block or {}).get(key)]
    if not public_read or not blocking:
        return None
    return Problem(
        "PublicAccessBlocked",
        f"bucket {bucket!r} has Block Public Access ({', '.join(blocking)}), which refuses a public-read"
        " policy on variants/*: serve variants through a CDN (publicUrl, backend.publicRead: false)"
        " or lift the block",
    )


def effective_public_read(asked: bool | None, created_by_us: bool) -> bool:
    """An explicit `backend.publicRead` wins; unset means public only on a bucket we created."""
    return created_by_us if asked is None else asked


def serving_problem(bucket: str, public_read: bool, public_url: str | None) -> Problem | None:
    if public_read or public_url:
        return None
    return Problem(
        "VariantsUnservable",
        f"variants in bucket {bucket!r} are not public (backend.publicRead is false) and no publicUrl"
        " names a CDN: nothing could serve them; set publicUrl or backend.publicRead: true",
    )
