"""Rotating the signing secret without a restart: a real `imagepipe deliver`
reads IMAGEPIPE_WEBHOOK_SECRET_FILE, laid out and swapped mid-run the way
the kubelet updates a mounted Secret (tests/support/mounted_secret.py). The
Standard Webhooks procedure, step by step, against a receiver verifying
with the `standardwebhooks` package (an unverified request is answered 503,
so a stale signature would show as a request not verified): the old secret;
old and new side by side while the receiver switches; the new alone; then
a broken file, which keeps the new secret signing and is counted on
/metrics. Then a version unreadable at first, which is read again without
changing. Events of a step are sent after its swap, so each of their
attempts stats the file after it changed; every wait polls."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from imagepipe.jobs import new_job_id, now_iso
from imagepipe.loopback import LoopbackStack
from imagepipe.processes import ROLE_COMMAND, start_process
from imagepipe.webhooks.events import event_for, to_message
from tests.support.mounted_secret import MountedSecret
from tests.support.webhook_receiver import Receiver, new_secret
from tests.system.test_webhook_delivery import client, webhook_env

pytestmark = pytest.mark.system


def secret_file_env(receiver: Receiver, mounted: MountedSecret) -> dict[str, str]:
    """The stack's webhook settings with the secret read from the mounted file, not the variable."""
    env = webhook_env(receiver)
    del env["IMAGEPIPE_WEBHOOK_SECRET"]
    env["IMAGEPIPE_WEBHOOK_SECRET_FILE"] = str(mounted.path("secret"))
    return env


def send_events(stack: LoopbackStack, base_url: str, count: int) -> None:
    """As test_webhook_delivery's, with the variant base read once: the test's own
    settings loader would refuse the broken secret file."""
    assert stack.queues is not None
    sqs = client(stack, "sqs")
    for _ in range(count):
        doc = {"job_id": new_job_id(), "status": "completed", "completed_at": now_iso(), "variants": {}}
        event = event_for(doc, base_url)
        assert event is not None
        sqs.send_message(QueueUrl=stack.queues.webhook_queue_url, MessageBody=to_message(event))


def reloads(stack: LoopbackStack) -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{stack.deliverer_metrics_port}/metrics", timeout=10).text
    return {
        sample.labels["result"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "imagepipe_webhook_secret_reloads"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_the_secret_file_is_followed_through_a_rotation(tmp_path: Path) -> None:
    old, new = new_secret(), new_secret()
    mounted = MountedSecret(tmp_path / "webhook", {"secret": old + "\n"})
    with (
        Receiver(old) as receiver,
        LoopbackStack(extra_env=secret_file_env(receiver, mounted), log_dir=tmp_path) as stack,
    ):
        stack.start_deliverer()
        stack.wait_ready()
        sent, base_url = 0, stack.variant_base_url

        def delivered(count: int, step: str) -> None:
            nonlocal sent
            send_events(stack, base_url, count)
            sent += count
            receiver.wait_for(lambda r: len(r.accepted()) == sent, f"every event {step}")

        delivered(2, "signed with the old secret")
        # Step 1: the new secret beside the old; the receiver may switch at any time after.
        mounted.update({"secret": f"{old} {new}\n"})
        delivered(2, "signed with both, verified with the old")
        receiver.secret = new
        delivered(2, "signed with both, verified with the new")
        # Step 2: the old one removed.
        mounted.update({"secret": new + "\n"})
        delivered(2, "signed with the new secret")
        # A broken version: the last good secret goes on signing.
        mounted.update({"secret": "whsec_not-a-secret\n"})
        delivered(2, "still signed with the new secret")
        # The broken version is read again (after a backoff) for as long as it stays.
        counted = reloads(stack)
        assert counted["loaded"] == 2 and counted["failed"] >= 1
        assert stack.exited() == []
    assert all(seen.verified for seen in receiver.requests()), "no attempt was signed with a stale secret"
    assert len(receiver.requests()) == sent == 10
    log = (tmp_path / "deliverer.log").read_text()
    assert "webhook secret file unusable" in log and old[6:] not in log and new[6:] not in log


def start_deliverer_as_a_reader(stack: LoopbackStack, log_dir: Path) -> None:
    """As stack.start_deliverer, but a root one runs without CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH, so that file modes deny it as they deny the image's user."""
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    port = str(stack.deliverer_metrics_port)
    command = [*drop, *ROLE_COMMAND, "deliver", "--metrics-port", port]
    stack.roles["deliverer"] = start_process(command, stack.env, log=log_dir / "deliverer.log", cwd=log_dir)


def test_a_version_unreadable_at_first_is_read_again_unchanged(tmp_path: Path) -> None:
    """A new version caught unreadable (its mode applied after it appeared, as a kubelet
    swap seen mid-way) keeps the old secret signing; once readable, with its content,
    inode, size and mtime as they were, the deliverer reads it again by itself and
    signs with the new secret. Before the retries existed it waited for the next change."""
    old, new = new_secret(), new_secret()
    mounted = MountedSecret(tmp_path / "webhook", {"secret": old + "\n"})
    with (
        Receiver(old) as receiver,
        LoopbackStack(extra_env=secret_file_env(receiver, mounted), log_dir=tmp_path) as stack,
    ):
        start_deliverer_as_a_reader(stack, tmp_path)
        stack.wait_ready()
        base_url = stack.variant_base_url
        send_events(stack, base_url, 2)
        receiver.wait_for(lambda r: len(r.accepted()) == 2, "two events signed with the old secret")
        mounted.update({"secret": new + "\n"}, mode=0o000)
        send_events(stack, base_url, 2)
        receiver.wait_for(lambda r: len(r.accepted()) == 4, "the old secret signing meanwhile")
        poll_until(lambda: reloads(stack)["failed"] >= 1, "a failed read counted")
        assert reloads(stack)["loaded"] == 0
        version = os.stat(mounted.path("secret"))
        os.chmod(mounted.path("secret"), 0o440)
        receiver.secret = new
        send_events(stack, base_url, 2)
        receiver.wait_for(lambda r: len(r.accepted()) == 6, "two events signed with the new secret")
        assert reloads(stack)["loaded"] == 1
        assert stack.exited() == []
    after = os.stat(mounted.path("secret"))
    unchanged = ("st_dev", "st_ino", "st_size", "st_mtime_ns")
    assert [getattr(after, f) for f in unchanged] == [getattr(version, f) for f in unchanged]
    log = (tmp_path / "deliverer.log").read_text()
    assert "Permission denied" in log and old[6:] not in log and new[6:] not in log


def poll_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
