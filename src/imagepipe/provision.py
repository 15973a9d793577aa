"""Create what a pipeline needs in S3 and SQS when it is missing: the bucket
with its `variants/*` public-read policy and its expiry rules, the job queue
and its dead-letter queue with a redrive policy. Used by `imagepipe dev` and
by the operator when `provision` is on; production stacks usually own these
in infrastructure code instead."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# Leftovers of uploads that failed half-way are unreachable (random ids, no
# message): expire originals after a week. Idempotency records are useless
# after their 24 h window. Status documents and variants are kept.
LIFECYCLE = {
    "Rules": [
        {
            "ID": "expire-originals",
            "Filter": {"Prefix": "originals/"},
            "Status": "Enabled",
            "Expiration": {"Days": 7},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        },
        {
            "ID": "expire-idempotency",
            "Filter": {"Prefix": "idempotency/"},
            "Status": "Enabled",
            "Expiration": {"Days": 2},
        },
    ]
}


def variants_read_policy(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadVariants",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{bucket}/variants/*",
                }
            ],
        }
    )


@dataclass(frozen=True)
class Queues:
    queue_url: str
    dlq_url: str
    dlq_arn: str


async def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        await s3.head_bucket(Bucket=bucket)
    except ClientError:
        args: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        await s3.create_bucket(**args)
    await s3.put_bucket_policy(Bucket=bucket, Policy=variants_read_policy(bucket))
    await s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=LIFECYCLE)


async def ensure_queues(
    sqs: Any, queue_name: str, dlq_name: str, max_receives: int, visibility_timeout: int
) -> Queues:
    dlq_url = (await sqs.create_queue(QueueName=dlq_name, Attributes={"MessageRetentionPeriod": "1209600"}))[
        "QueueUrl"
    ]
    dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(visibility_timeout),
        "ReceiveMessageWaitTimeSeconds": "20",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
    }
    queue_url = (await sqs.create_queue(QueueName=queue_name))["QueueUrl"]
    await sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    return Queues(queue_url=queue_url, dlq_url=dlq_url, dlq_arn=dlq_arn)
