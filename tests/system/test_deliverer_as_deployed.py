"""The deliverer as the operator deploys it: the container of `NAME-deliverer`
(its args after the image's entrypoint, its environment resolved the way the
kubelet does, its Secret volumes materialised as files the way the kubelet
lays them out, tests/support/mounted_secret.py) run as a real process
against moto and a real receiver. One liberty: a volume's mountPath from the
manifest is mapped under the test's tmp_path (and so are the variables that
point into it), as a process here cannot mount at /var/run. Otherwise only
what a pod gets from its node and not from the manifest is supplied: the AWS
identity (dummy keys for the local endpoint), PATH and HOME, and the metrics
port (the manifest's fixed container port would collide on one machine). It
signs with the Secret's value, follows the Secret when the kubelet updates
it (a new secret signs without a restart), answers the manifest's probes,
and stops cleanly within the manifest's grace period."""

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
from tests.support.mounted_secret import MountedSecret
from tests.support.webhook_receiver import Receiver, new_secret
from tests.system.test_webhook_delivery import assert_each_accepted_once, send_events

pytestmark = pytest.mark.system
SECRET_NAME = "photos-webhook"


Secrets = dict[tuple[str, str], str]


def kubelet_env(container: dict[str, Any], secrets: Secrets, root: Path) -> dict[str, str]:
    """The container's environment as the kubelet resolves it (a value pointing
    into a mount is mapped under `root`); a reference it cannot resolve fails
    the test, as it would fail the pod."""
    assert "envFrom" not in container, "this pipeline names no credentials Secret"
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    env: dict[str, str] = {}
    for item in container["env"]:
        if "value" in item:
            value = str(item["value"])
            inside = any(value.startswith(f"{mount}/") for mount in mounts)
            env[item["name"]] = str(root) + value if inside else value
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        env[item["name"]] = secrets[(ref["name"], ref["key"])]
    return env


def kubelet_secret_volumes(pod: dict[str, Any], secrets: Secrets, root: Path) -> dict[str, MountedSecret]:
    """The pod's Secret volumes written under `root` + their mountPath, by volume
    name; an item whose key the Secret lacks is left out (the volumes are optional)."""
    (container,) = pod["containers"]
    paths = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    mounted = {}
    for volume in pod["volumes"]:
        if "secret" not in volume:
            continue
        source = volume["secret"]
        files = {
            item["path"]: secrets[(source["secretName"], item["key"])]
            for item in source["items"]
            if (source["secretName"], item["key"]) in secrets
        }
        mounted[volume["name"]] = MountedSecret(root / paths[volume["name"]].lstrip("/"), files)
    return mounted


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
            secrets = {(SECRET_NAME, "secret"): receiver.secret}
            volumes = kubelet_secret_volumes(pod, secrets, tmp_path)
            env = kubelet_env(container, secrets, tmp_path)
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
                # The Secret changed: the kubelet swaps the mounted files; no restart.
                receiver.secret = new_secret()
                (secret_volume,) = volumes.values()
                secret_volume.update({name: receiver.secret for name in secret_volume.files})
                events += send_events(stack, 2)
                receiver.wait_for(lambda r: len(r.accepted()) == len(events), "signed with the new secret")
            finally:
                deliverer.send_signal(signal.SIGTERM)
                returncode = deliverer.wait(pod["terminationGracePeriodSeconds"])
    assert returncode == 0, log.read_text()
    assert_each_accepted_once(receiver, {e.id for e in events})
    seen = receiver.requests()[0].payload
    assert seen["data"]["job_id"] in {e.job_id for e in events}
