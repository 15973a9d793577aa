"""A moto server of its own that enforces IAM (INITIAL_NO_AUTH_ACTION_COUNT
applies to the whole server, so never the session's shared one): an admin
made with the first unauthenticated calls, then one IAM user per role with
exactly that role's policy from `imagepipe.iam`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3  # type: ignore[import-untyped]

from imagepipe.iam import GRANTS, Role, role_policy
from tests.support.backend import free_port

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
# The three calls that make the admin, before enforcement starts.
UNAUTHENTICATED_CALLS = 3
ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


# Where moto names a permission differently from AWS: AWS's action → moto's.
S3_ALIASES = {
    "s3:ListBucket": "s3:HeadBucket",  # HeadBucket
    "s3:GetBucketPublicAccessBlock": "s3:GetPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock": "s3:PutPublicAccessBlock",
    "s3:DeleteObject": "s3:DeleteObject",  # DeleteObjects: moto checks the bucket, AWS each key
}
SQS_ALIASES = {
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",  # AWS authorises batches as the single call
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
    "sqs:GetQueueUrl": "sqs:GetQueueUrl",  # moto checks "*" for a queue named, not addressed
    "sqs:CreateQueue": "sqs:CreateQueue",  # and for a queue that does not exist yet
}


def moto_quirks(role: Role, bucket: str) -> list[dict[str, Any]]:
    """moto's names for the permissions the role holds under AWS's names (only those)."""
    grants = GRANTS[role]
    s3 = sorted(moto for aws, moto in S3_ALIASES.items() if aws in grants)
    sqs = sorted(moto for aws, moto in SQS_ALIASES.items() if aws in grants)
    found = []
    if s3:
        found.append({"Effect": "Allow", "Action": s3, "Resource": f"arn:aws:s3:::{bucket}"})
    if sqs:
        found.append({"Effect": "Allow", "Action": sqs, "Resource": "*"})
    return found


@dataclass
class IamMoto:
    endpoint: str
    admin: dict[str, str]
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    def client(self, service: str, who: str = "admin") -> Any:
        key = self.admin if who == "admin" else self.keys[who]
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **key)

    def env(self, role: Role) -> dict[str, str]:
        key = self.keys[role]
        return {
            "AWS_ACCESS_KEY_ID": key["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": key["aws_secret_access_key"],
            "AWS_REGION": REGION,
        }

    def add_role(self, role: Role, bucket: str, queue: str, dlq: str) -> None:
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:"
        policy = role_policy(role, bucket, arn + queue, arn + dlq)
        policy["Statement"] += moto_quirks(role, bucket)
        iam = self.client("iam")
        iam.create_user(UserName=role)
        iam.put_user_policy(UserName=role, PolicyName=f"imagepipe-{role}", PolicyDocument=json.dumps(policy))
        self.keys[role] = _key(iam.create_access_key(UserName=role))


def _key(answer: dict[str, Any]) -> dict[str, str]:
    key = answer["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


@contextmanager
def iam_moto() -> Iterator[IamMoto]:
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(UNAUTHENTICATED_CALLS)}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
        )
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(ALL))
        yield IamMoto(endpoint, _key(iam.create_access_key(UserName="admin")))
    finally:
        process.terminate()
        process.wait(10)
