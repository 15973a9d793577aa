"""A real `imagepipe operator run --standalone` process, logged in through an
ordinary kubeconfig to kmock on loopback, with the loopback S3+SQS server as
the pipeline's backend: issue #12's table black-box. A same-named ConfigMap
made by someone else stays untouched (ChildConflict) until it goes; the
Ingress a spec stops asking for is deleted; a consumer Deployment deleted by
hand comes back; the process starts and stops cleanly. With spec.webhook
(issue #15) and the operator's policy admitting a loopback receiver: the
delivery queue is provisioned beside the job queue, the deliverer gets its
secret by reference, and it goes when the webhook goes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import yaml

from tests.operator.apiserver import DEPLOYMENTS, PIPELINES, ApiServer, eventually
from tests.support.backend import CREDENTIALS, MotoServer

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"


def kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "not-checked"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}],
        "current-context": "kmock",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def operator_process(api: ApiServer, tmp_path: Path, **settings: str) -> Iterator[Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "IMAGEPIPE_"))}
    env.update(CREDENTIALS, KUBECONFIG=str(kubeconfig(tmp_path / "kubeconfig", api.url)), **settings)
    log = tmp_path / "operator.log"
    args = ["operator", "run", "--standalone", "--namespace", "default", "--metrics-port", "0"]
    args += ["--reconcile-interval", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "imagepipe.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield log
        assert process.poll() is None, log.read_text()[-3000:]
    except BaseException:
        print(log.read_text()[-5000:], file=sys.stderr)
        raise
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0, log.read_text()[-3000:]


def ready(api: ApiServer) -> dict[str, Any]:
    status = (api.call("GET", f"{PIPELINES}/photos") or {}).get("status", {})
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def test_the_operator_process_owns_exactly_its_children(
    api: ApiServer, moto: MotoServer, minimal: dict[str, Any], tmp_path: Path
) -> None:
    moto.reset()
    minimal["spec"]["backend"].update(endpointUrl=moto.endpoint, provision=True)
    minimal["spec"]["ingest"] = {"ingress": {"host": "img.example.com"}, "apiKeysSecret": {"name": "keys"}}
    minimal["spec"]["webhook"] = {"url": "http://127.0.0.1:9/hooks", "secretRef": {"name": "hooks"}}
    foreign = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "photos-config", "uid": "b"}}
    api.call("POST", CONFIGMAPS, {**foreign, "data": {"team": "b"}})
    with operator_process(api, tmp_path, IMAGEPIPE_OPERATOR_ALLOW_PRIVATE_WEBHOOKS="true"):
        api.call("POST", PIPELINES, minimal)
        eventually(lambda: ready(api).get("reason") == "ChildConflict", timeout=60)
        kept = api.call("GET", f"{CONFIGMAPS}/photos-config")
        assert kept["data"] == {"team": "b"} and not kept["metadata"].get("ownerReferences")

        api.call("DELETE", f"{CONFIGMAPS}/photos-config")
        eventually(lambda: ready(api).get("status") == "True", timeout=60)
        assert api.call("GET", f"{INGRESSES}/photos-ingest") is not None
        (container,) = api.call("GET", f"{DEPLOYMENTS}/photos-deliverer")["spec"]["template"]["spec"][
            "containers"
        ]
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
        assert env["IMAGEPIPE_WEBHOOK_SECRET_FILE"] == "/var/run/imagepipe/webhook/secret"
        assert env["IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE"] == "true" and container["args"] == ["deliver"]
        sqs = boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1")
        assert sqs.get_queue_url(QueueName="photos-jobs-webhooks")["QueueUrl"]

        spec = {"ingest": {"ingress": None, "apiKeysSecret": None}, "webhook": None}
        api.call("PATCH", f"{PIPELINES}/photos", {"metadata": {"generation": 2}, "spec": spec})
        eventually(lambda: api.call("GET", f"{INGRESSES}/photos-ingest") is None, timeout=60)
        eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-deliverer") is None, timeout=60)

        api.call("DELETE", f"{DEPLOYMENTS}/photos-consumer")
        back = eventually(lambda: api.call("GET", f"{DEPLOYMENTS}/photos-consumer"), timeout=60)
        assert back["metadata"]["ownerReferences"][0]["uid"] == "uid-photos"
