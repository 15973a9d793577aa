"""One consumer process against loopback S3+SQS: real corpus images to
completed variants, bad images failed at once, duplicates, spec changes,
poison messages, and the metrics and logs that describe it all."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from PIL import Image

from imagepipe.context import Limits
from imagepipe.jobs import job_message
from imagepipe.jobstore.keys import variant_key, variants_prefix
from imagepipe.processing import probe
from imagepipe.spec import DEFAULT_SPEC, Encoding, Variant, VariantList
from tests.consumer.stack import Consumer, Stack
from tests.support.backend import MotoServer

GOOD = [
    "recurser/Landscape_6.jpg",
    "recurser/Portrait_3.jpg",
    "sharp/2569067123_aca715a2ee_o.jpg",
    "sharp/Channel_digital_image_CMYK_color.jpg",
    "sharp/5_webp_a.webp",
    "sharp/Flag_of_the_Netherlands-alpha.png",
    "sharp/16-bit-grey-alpha.png",
    "libvips/sample-xyb.jpg",
    "sharp/2x2_fdcce6.png",
    "thumbor/IMG_6494.JPG",
]
BAD = {
    "sharp/truncated.jpg": "corrupt_image",
    "sharp/corrupt-header.jpg": "corrupt_image",
    "sharp/giant-image.jpg": "too_many_pixels",
}


@pytest.fixture(scope="module")
def running(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Consumer]]:
    stack = Stack(moto.endpoint, visibility=3, max_receives=3)
    consumer = Consumer(stack, tmp_path_factory.mktemp("e2e"))
    yield stack, consumer
    consumer.close()


def fetch(url: str) -> tuple[int, Message, bytes]:
    """GET without credentials; headers are case-insensitive."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def metrics_text(consumer: Consumer) -> str:
    return fetch(f"http://127.0.0.1:{consumer.metrics_port}/metrics")[2].decode()


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def expected_sizes(data: bytes, spec: VariantList) -> dict[str, tuple[int, int]]:
    """What the spec asks for, from the source size a viewer sees."""
    source = probe(data, spec, Limits())
    sizes = {}
    for v in spec.variants:
        if v.method == "cover":
            sizes[v.name] = (v.width, v.height)
        else:
            scale = min(1.0, v.width / source.width, v.height / source.height)
            sizes[v.name] = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
    return sizes


def test_corpus_images_complete_with_their_variants(
    running: tuple[Stack, Consumer], corpus_dir: Path
) -> None:
    stack, consumer = running
    datas = {name: (corpus_dir / name).read_bytes() for name in GOOD}
    jobs = {stack.submit(data): name for name, data in datas.items()}
    done = stack.wait_for(jobs, timeout=90)
    for job_id, name in jobs.items():
        doc = done[job_id]
        assert doc["status"] == "completed", (name, doc)
        assert doc["attempts"] == 1 and doc["error"] is None and doc["owner"] == "tester"
        assert set(doc["timings"]) == {"download", "decode", "resize", "encode", "upload"}
        assert doc["source"]["bytes"] == len(datas[name]) and doc["source"]["width"] > 0
        assert doc["placeholder"]["average_color"].startswith("#"), doc
        expected = expected_sizes(datas[name], DEFAULT_SPEC)
        for variant in DEFAULT_SPEC.variants:
            entry = doc["variants"][variant.name]
            assert abs(entry["width"] - expected[variant.name][0]) <= 1, (name, variant.name, entry)
            assert abs(entry["height"] - expected[variant.name][1]) <= 1, (name, variant.name, entry)
            if variant.method == "fit":
                source = doc["source"]
                assert entry["crop"] == {"x": 0, "y": 0, "width": source["width"], "height": source["height"]}
            key = variant_key(job_id, DEFAULT_SPEC.spec_hash, variant.name, "webp")
            assert entry["url"] == f"{stack.endpoint}/{stack.bucket}/{key}"
            status, headers, body = fetch(entry["url"])  # anonymous: the bucket policy allows variants/*
            assert status == 200 and headers["Content-Type"] == "image/webp"
            assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert len(body) == entry["bytes"]
            with Image.open(io.BytesIO(body)) as image:
                assert (image.format, image.size) == ("WEBP", (entry["width"], entry["height"]))
    # Originals and status documents stay private.
    job_id = next(iter(jobs))
    assert fetch(f"{stack.endpoint}/{stack.bucket}/originals/{job_id}")[0] == 403
    assert fetch(f"{stack.endpoint}/{stack.bucket}/jobs/{job_id}.json")[0] == 403
    stack.settled(20)
    text = metrics_text(consumer)
    assert sample(text, "imagepipe_jobs_total", outcome="completed", pipeline="default") >= len(GOOD)
    assert sample(text, "imagepipe_job_latency_seconds_bucket", le="30.0") >= len(GOOD)
    assert sample(text, "imagepipe_queue_wait_seconds_count") >= len(GOOD)
    for stage in ("download", "decode", "resize", "encode", "upload"):
        assert sample(text, "imagepipe_stage_duration_seconds_count", stage=stage) >= len(GOOD)
    assert sample(text, "imagepipe_messages_deleted_total") >= len(GOOD)
    assert sample(text, "imagepipe_worker_slots") == 2
    # Every log line about a job carries its job id and trace id.
    job_lines = [line for line in consumer.lines() if line.get("job_id") in jobs]
    assert {line["message"] for line in job_lines} >= {"job started", "job completed"}
    assert all(line["trace_id"] == f"trace-{line['job_id'][:8]}" for line in job_lines)


def test_bad_images_fail_at_once_with_their_code(running: tuple[Stack, Consumer], corpus_dir: Path) -> None:
    stack, consumer = running
    jobs = {stack.submit((corpus_dir / name).read_bytes()): code for name, code in BAD.items()}
    done = stack.wait_for(jobs, timeout=30)
    for job_id, code in jobs.items():
        assert done[job_id]["status"] == "failed" and done[job_id]["error"]["code"] == code
        assert done[job_id]["attempts"] == 1
        assert stack.keys(variants_prefix(job_id)) == {}
    stack.settled(20)
    received_again = [
        line
        for line in consumer.lines()
        if line.get("job_id") in jobs and "already finished elsewhere" in line["message"]
    ]
    assert received_again == [], "bad images are not retried"
    text = metrics_text(consumer)
    assert sample(text, "imagepipe_jobs_total", outcome="failed", code="corrupt_image") >= 2
    assert sample(text, "imagepipe_jobs_total", outcome="failed", code="too_many_pixels") >= 1


def test_duplicate_message_yields_one_set_of_variants(
    running: tuple[Stack, Consumer], corpus_dir: Path
) -> None:
    stack, _ = running
    job_id = stack.submit((corpus_dir / "recurser/Landscape_1.jpg").read_bytes())
    first = stack.wait_for([job_id])[job_id]
    objects = stack.keys(variants_prefix(job_id))
    # The same message again (at-least-once delivery): skipped as completed.
    doc = stack.status(job_id)
    assert doc is not None
    stack.send(job_message(job_id, "default", DEFAULT_SPEC, doc["created_at"]).to_json())
    stack.settled(20)
    assert stack.status(job_id) == first
    after = stack.keys(variants_prefix(job_id))
    assert after.keys() == objects.keys() and len(after) == 3
    assert all(after[k]["LastModified"] == objects[k]["LastModified"] for k in after)


def test_spec_change_writes_new_keys_and_overwrites_nothing(
    running: tuple[Stack, Consumer], corpus_dir: Path
) -> None:
    stack, _ = running
    data = (corpus_dir / "recurser/Portrait_1.jpg").read_bytes()
    old = stack.submit(data)
    stack.wait_for([old])
    before = {k: v["ETag"] for k, v in stack.keys("variants/").items()}
    changed = VariantList((*DEFAULT_SPEC.variants, Variant("tiny", 64, 64, "cover", Encoding("jpeg", 80, 0))))
    assert changed.spec_hash != DEFAULT_SPEC.spec_hash
    new = stack.submit(data, spec=changed)
    doc = stack.wait_for([new])[new]
    assert doc["status"] == "completed" and doc["spec"] == changed.spec_hash
    tiny = doc["variants"]["tiny"]
    assert tiny["url"].endswith(variant_key(new, changed.spec_hash, "tiny", "jpg"))
    status, headers, _ = fetch(tiny["url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert len(stack.keys(f"variants/{new}/{changed.spec_hash}/")) == 4
    after = {k: v["ETag"] for k, v in stack.keys("variants/").items()}
    assert {k: after[k] for k in before} == before


def test_poison_messages_end_failed_or_swept_from_dead_letters(
    running: tuple[Stack, Consumer], corpus_dir: Path
) -> None:
    stack, consumer = running
    # No original: failed with not_found at once, message deleted.
    missing = stack.submit(b"", with_original=False)
    doc = stack.wait_for([missing])[missing]
    assert doc["status"] == "failed" and doc["error"]["code"] == "not_found"
    # Unparseable: handed back until the redrive policy moves it to the DLQ,
    # where the sweeper logs its id and size and deletes it; nothing is marked.
    stack.send("{not json", trace_id="trace-poison")
    swept = consumer.wait_for_line("unparseable dead-lettered message deleted", timeout=90)
    assert swept["bytes"] == len("{not json") and swept["message_id"]
    lines = [line for line in consumer.lines() if line["message"].startswith("unparseable message")]
    assert len(lines) == stack.max_receives
    stack.settled(20, dead_letters=True)


def test_health_and_unknown_version(running: tuple[Stack, Consumer]) -> None:
    stack, consumer = running
    status, _, body = fetch(f"http://127.0.0.1:{consumer.metrics_port}/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    stack.send(json.dumps({"v": 99, "job_id": "from-the-future"}))
    line = consumer.wait_for_line("newer consumer", timeout=30)
    assert line["visibility"] >= 60
    assert stack.counts() == (0, 1), "left hidden for a newer consumer, not deleted"
