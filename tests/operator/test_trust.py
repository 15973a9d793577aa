"""What an ImagePipeline may choose: the operator's IMAGEPIPE_OPERATOR_* policy
as a table, its start-up errors, the bounded reads, and NotAllowed in the
real operator loop."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import aiohttp
import pytest

from imagepipe.operator.autoscaling.observe import scrape_pods
from imagepipe.operator.handlers import OperatorRuntime
from imagepipe.operator.imagepipeline import InvalidPipeline, parse_imagepipeline
from imagepipe.operator.trust import (
    PolicyError,
    TrustPolicy,
    admit,
    host_allowed,
    policy_from_env,
    violations,
)
from tests.operator.apiserver import (
    DEPLOYMENTS,
    PIPELINES,
    ApiServer,
    backend_ready,
    empty_queue,
    eventually,
    operator_runner,
)
from tests.operator.test_autoscaler_loop import http_server

STRICT = TrustPolicy(
    image_prefixes=("registry.example.com/imagepipe:",),
    service_accounts=("imagepipe-media",),
    credentials_secret=False,
    bucket_pattern="{namespace}-.+",
    queue_pattern="{namespace}-.+",
    url_hosts=("*.svc.cluster.local", "prometheus.example.com"),
)


def pipeline(full: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(full)
    body["metadata"]["namespace"] = "media"
    spec = body["spec"]
    spec["image"] = "registry.example.com/imagepipe:1.0"
    spec["backend"].update(
        bucket="media-photos",
        queue="media-jobs",
        serviceAccountName="imagepipe-media",
        endpointUrl="http://s3.store.svc.cluster.local:9000",
    )
    spec["backend"].pop("credentialsSecret", None)
    spec["backend"].pop("deadLetterQueue", None)
    spec["scaling"]["prometheusUrl"] = "https://prometheus.example.com"
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = spec
        for part in parents:
            node = node[part]
        node[last] = value
    return body


ROWS = {
    "allowed": ({}, []),
    "image elsewhere": ({"image": "evil.example.org/miner:1"}, ["spec.image"]),
    "prefix is a prefix, not a substring": ({"image": "x/registry.example.com/imagepipe:1"}, ["spec.image"]),
    "another service account": (
        {"backend__serviceAccountName": "kube-system-admin"},
        [
            "spec.ingest.serviceAccountName",
            "spec.consumer.serviceAccountName",
            "spec.webhook.serviceAccountName",
        ],
    ),
    "the deliverer's own account": (
        {"webhook__serviceAccountName": "default"},
        ["spec.webhook.serviceAccountName"],
    ),
    "one role's own account": (
        {"consumer__serviceAccountName": "default"},
        ["spec.consumer.serviceAccountName"],
    ),
    "credentials secret": ({"backend__credentialsSecret": "aws"}, ["credentialsSecret"]),
    "another team's bucket": ({"backend__bucket": "finance-ledger"}, ["spec.backend.bucket"]),
    "another team's queue": ({"backend__queue": "finance-jobs"}, ["spec.backend.queue", "deadLetterQueue"]),
    "queue by URL is checked by name": (
        {"backend__queue": "https://sqs.us-east-1.amazonaws.com/1/media-jobs"},
        [],
    ),
    "endpoint elsewhere": ({"backend__endpointUrl": "http://169.254.169.254/"}, ["endpointUrl"]),
    "suffix is a domain suffix": ({"backend__endpointUrl": "http://evilsvc.cluster.local/"}, ["endpointUrl"]),
    "prometheus elsewhere": ({"scaling__prometheusUrl": "http://attacker.example.org"}, ["prometheusUrl"]),
}


@pytest.mark.parametrize("row", sorted(ROWS))
def test_policy(full: dict[str, Any], row: str) -> None:
    changes, named = ROWS[row]
    found = violations(parse_imagepipeline(pipeline(full, **changes)), STRICT)
    assert len(found) == len(named), found
    for fragment, problem in zip(named, found, strict=True):
        assert fragment in problem


def test_the_default_policy_allows_everything(full: dict[str, Any]) -> None:
    body = pipeline(full, image="anything/at:all", backend__credentialsSecret="aws")
    assert violations(parse_imagepipeline(body), TrustPolicy()) == []
    with pytest.raises(InvalidPipeline) as caught:
        admit(body, STRICT)
    assert caught.value.reason == "NotAllowed"


def test_policy_from_env_and_its_errors() -> None:
    env = {
        "IMAGEPIPE_OPERATOR_ALLOWED_IMAGES": "a/, b/",
        "IMAGEPIPE_OPERATOR_ALLOW_CREDENTIALS_SECRET": "false",
        "IMAGEPIPE_OPERATOR_BUCKET_PATTERN": "{namespace}-.+",
        "IMAGEPIPE_OPERATOR_MAX_RESPONSE_BYTES": "1024",
    }
    policy = policy_from_env(env)
    assert policy.image_prefixes == ("a/", "b/") and not policy.credentials_secret
    assert policy.max_response_bytes == 1024 and policy.url_hosts == ()
    for name, bad in (
        ("IMAGEPIPE_OPERATOR_ALLOW_CREDENTIALS_SECRET", "maybe"),
        ("IMAGEPIPE_OPERATOR_BUCKET_PATTERN", "(["),
        ("IMAGEPIPE_OPERATOR_MAX_RESPONSE_BYTES", "0"),
    ):
        with pytest.raises(PolicyError, match=name):
            policy_from_env({name: bad})


def test_hosts() -> None:
    assert host_allowed("http://anything", ())
    assert host_allowed("https://a.b.svc.cluster.local:9000/x", ("*.svc.cluster.local",))
    assert not host_allowed("https://svc.cluster.local.evil.org/", ("*.svc.cluster.local",))
    assert not host_allowed("http://user@evil.org", ("prometheus.example.com",))


def test_a_scrape_larger_than_the_bound_is_dropped() -> None:
    big = b"# " + b"x" * 200_000 + b"\n"
    with http_server(lambda _: ("text/plain", big)) as port:

        async def scrape(limit: int) -> dict[str, Any]:
            async with aiohttp.ClientSession() as session:
                return await scrape_pods(session, {"pod": f"http://127.0.0.1:{port}/metrics"}, limit)

        assert asyncio.run(scrape(100_000)) == {}  # refused (and logged), not read whole
        assert set(asyncio.run(scrape(1_000_000))) == {"pod"}


def test_a_resource_outside_the_policy_is_not_allowed(api: ApiServer, minimal: dict[str, Any]) -> None:
    runtime = OperatorRuntime(
        check_backend=backend_ready,
        read_queue_depth=empty_queue,
        metrics_port=None,
        policy=TrustPolicy(image_prefixes=("registry.example.com/",)),
    )
    with operator_runner(api, runtime, autoscale_interval=3600) as running:
        api.call("POST", PIPELINES, minimal)  # its image is imagepipe:0.1.0 (examples/minimal.yaml)

        def refused() -> Any:
            status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
            return next((c for c in status.get("conditions", []) if c["reason"] == "NotAllowed"), None)

        condition = eventually(refused)
        assert condition["status"] == "False" and "spec.image" in condition["message"]
        assert api.call("GET", f"{DEPLOYMENTS}/photos-consumer") is None
    assert running.exception is None


def test_a_bad_policy_setting_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from imagepipe.cli import main

    monkeypatch.setenv("IMAGEPIPE_OPERATOR_ALLOW_CREDENTIALS_SECRET", "maybe")
    assert main(["operator", "run", "--standalone"]) == 2
    err = capsys.readouterr().err.strip()
    assert "IMAGEPIPE_OPERATOR_ALLOW_CREDENTIALS_SECRET" in err and "\n" not in err and "Traceback" not in err
