"""Issue #12's last row, black-box: a real `imagepipe operator run` process
with `backend.provision: true` naming a bucket that has its own policy and
lifecycle rules. The owner's policy and rules stay, ours are added, variants
are not made public (the bucket is not the operator's) and the pipeline is
Ready only once a publicUrl names what serves them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]

from imagepipe.lifecycle import lifecycle_rules
from tests.operator.apiserver import PIPELINES, ApiServer, eventually
from tests.operator.test_operator_process import operator_process, ready
from tests.support.backend import MotoServer

BUCKET = "photos-imagepipe"
OWN_RULE = {
    "ID": "owner-exports",
    "Filter": {"Prefix": "exports/"},
    "Status": "Enabled",
    "Expiration": {"Days": 90},
}
# moto ignores a statement's Principal (any Allow reads as public): keep it off originals/.
OWN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "OwnerExports",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/exports/*",
        }
    ],
}


def test_the_operator_process_adds_to_an_owners_bucket(
    api: ApiServer, moto: MotoServer, minimal: dict[str, Any], tmp_path: Path
) -> None:
    moto.reset()
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": [OWN_RULE]})
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(OWN_POLICY))
    minimal["spec"]["backend"].update(endpointUrl=moto.endpoint, provision=True)
    with operator_process(api, tmp_path):
        api.call("POST", PIPELINES, minimal)
        eventually(lambda: ready(api).get("reason") == "VariantsUnservable", timeout=60)
        rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
        assert rules.keys() == {OWN_RULE["ID"], *(r["ID"] for r in lifecycle_rules())}
        assert rules[OWN_RULE["ID"]]["Expiration"] == OWN_RULE["Expiration"]
        spec = {"publicUrl": "https://img.example.com"}
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": spec})
        eventually(lambda: ready(api).get("status") == "True", timeout=120)
    assert json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"]) == OWN_POLICY
    assert s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"][0] == OWN_RULE
