"""The deliverer as the operator deploys it: the container of `NAME-deliverer`
(its args after the image's entrypoint, its environment with the signing
secret resolved from the Secret the way the kubelet does) run as a real
process against moto and a real receiver. Only what a pod gets from its node
and not from the manifest is supplied here: the AWS identity (dummy keys for
the local endpoint), PATH and HOME, and the metrics port (the manifest's
fixed container port would collide on one machine). It signs with the
Secret's value, answers the manifest's probes, and stops cleanly within the
manifest's grace period."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from imagepipe.loopback import DUMMY_CREDENTIALS, LoopbackStack, free_port
from imagepipe.operator.deliverer import DelivererChoice, build_deliverer_deployment
from imagepipe.operator.imagepipeline import parse_imagepipeline
from imagepipe.processes import start_process
from tests.operator.conftest import example
from tests.support.webhook_receiver import Receiver, new_secret
from tests.system.test_webhook_delivery import assert_each_accepted_once, send_events

pytestmark = pytest.mark.system
SECRET_NAME = "photos-webhook"


def kubelet_env(container: dict[str, Any], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The container's environment as the kubelet resolves it; a reference it
    cannot resolve fails the test, as it would fail the pod."""
    assert "envFrom" not in container, "this pipeline names no credentials Secret"
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        env[item["name"]] = secrets[(ref["name"], ref["key"])]
    return env


def probe_ok(container: dict[str, Any], probe: str, port: int) -> bool:
    get = container[probe]["httpGet"]
    assert get["port"] == "metrics" and container["ports"][0]["name"] == "metrics"
    try:
        return requests.get(f"http://127.0.0.1:{port}{get['path']}", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def test_the_deployed_deliverer_signs_with_the_secret_and_stops_in_its_grace(tmp_path: Path) -> None:
    with Receiver(new_secret()) as receiver:
        hook = {"IMAGEPIPE_WEBHOOK_URL": receiver.url, "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE": "true"}
        with LoopbackStack(bucket="photos-imagepipe", queue="photos-jobs", extra_env=hook) as stack:
            body = example("minimal.yaml")
            body["spec"]["backend"].update(endpointUrl=stack.endpoint, region="us-east-1")
            body["spec"]["webhook"] = {"url": receiver.url, "secretRef": {"name": SECRET_NAME}}
            # Loopback is a private target: the operator's policy must allow it, as the tests' does.
            deployment = build_deliverer_deployment(
                parse_imagepipeline(body), DelivererChoice(allow_private=True)
            )
            assert deployment is not None
            pod = deployment["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            env = kubelet_env(container, {(SECRET_NAME, "secret"): receiver.secret})
            metrics_port = free_port()
            env |= DUMMY_CREDENTIALS | {
                "PATH": str(Path(sys.executable).parent),
                "HOME": str(tmp_path),
                "IMAGEPIPE_METRICS_PORT": str(metrics_port),
            }
            entrypoint = str(Path(sys.executable).parent / "imagepipe")  # the image's ENTRYPOINT
            log = tmp_path / "deliverer.log"
            deliverer = start_process([entrypoint, *container["args"]], env, log=log, cwd=tmp_path)
            try:
                deadline = time.monotonic() + 60
                while not probe_ok(container, "readinessProbe", metrics_port):
                    assert deliverer.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
                assert probe_ok(container, "livenessProbe", metrics_port)
                events = send_events(stack, 3)
                receiver.wait_for(lambda r: len(r.accepted()) == len(events), "every event accepted")
            finally:
                deliverer.send_signal(signal.SIGTERM)
                returncode = deliverer.wait(pod["terminationGracePeriodSeconds"])
    assert returncode == 0, log.read_text()
    assert_each_accepted_once(receiver, {e.id for e in events})
    seen = receiver.requests()[0].payload
    assert seen["data"]["job_id"] in {e.job_id for e in events}
