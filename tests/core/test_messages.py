"""Queue messages and pipelines files: new optional fields stay out of old bodies."""

from __future__ import annotations

import json

import pytest

from imagepipe.errors import InvalidSpec
from imagepipe.geometry import Focus
from imagepipe.jobs import (
    MESSAGE_VERSION,
    BadMessage,
    UnknownVersion,
    job_message,
    new_job_id,
    now_iso,
    parse_message,
)
from imagepipe.spec import DEFAULT_SPEC, Variant, VariantList, parse_pipelines

VARIANTS = DEFAULT_SPEC.to_data()


def test_a_default_message_body_has_no_new_fields() -> None:
    body = json.loads(job_message(new_job_id(), "default", DEFAULT_SPEC, now_iso()).to_json())
    assert set(body) == {"job_id", "pipeline", "spec", "variants", "original_key", "enqueued_at", "v"}
    assert body["v"] == MESSAGE_VERSION


def test_placeholders_off_travels_in_the_message() -> None:
    off = VariantList(DEFAULT_SPEC.variants, placeholder=False)
    message = parse_message(job_message(new_job_id(), "default", off, now_iso()).to_json())
    assert message.variant_list() == off
    body = json.loads(message.to_json())
    body["placeholder"] = "no"
    with pytest.raises(BadMessage, match="placeholder"):
        parse_message(json.dumps(body))


@pytest.mark.parametrize(
    ("pipeline", "placeholder"),
    [(VARIANTS, True), ({"variants": VARIANTS}, True), ({"variants": VARIANTS, "placeholder": False}, False)],
)
def test_a_pipeline_is_a_list_or_a_mapping(pipeline: object, placeholder: bool) -> None:
    spec = parse_pipelines({"p": pipeline}, "file")["p"]
    assert spec.placeholder is placeholder
    assert spec.spec_hash == DEFAULT_SPEC.spec_hash


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ({"variants": VARIANTS, "placeholder": "off"}, "file: p.placeholder: expected true or false"),
        ({"variants": VARIANTS, "colours": True}, "file: p: unknown fields ['colours']"),
        ({"placeholder": False}, "file: p.variants: expected a non-empty list"),
    ],
)
def test_bad_pipeline_mappings_name_the_field(pipeline: object, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_pipelines({"p": pipeline}, "file")


def test_gravity_and_focus_travel_in_the_message() -> None:
    moved = VariantList((Variant("t", 150, 150, "cover", gravity="attention"),))
    body = job_message(new_job_id(), "default", DEFAULT_SPEC, now_iso(), Focus(0.2, 0.8)).to_json()
    message = parse_message(body)
    assert (message.v, message.job_focus()) == (MESSAGE_VERSION, Focus(0.2, 0.8))
    assert parse_message(job_message(new_job_id(), "p", moved, now_iso()).to_json()).variant_list() == moved


@pytest.mark.parametrize("focus", [[0.5], [0.5, 2], ["0.5", "0.5"], [True, 0.5], "0.5,0.5"])
def test_a_bad_focus_is_a_bad_message(focus: object) -> None:
    body = json.loads(
        job_message(new_job_id(), "default", DEFAULT_SPEC, now_iso(), Focus(0.5, 0.5)).to_json()
    )
    body["focus"] = focus
    with pytest.raises(BadMessage, match="focus"):
        parse_message(json.dumps(body))


def test_a_newer_version_waits_and_an_unknown_one_is_bad() -> None:
    body = json.loads(job_message(new_job_id(), "default", DEFAULT_SPEC, now_iso()).to_json())
    with pytest.raises(UnknownVersion):
        parse_message(json.dumps({**body, "v": MESSAGE_VERSION + 1}))
    for bad in (0, True, "1"):
        with pytest.raises(BadMessage):
            parse_message(json.dumps({**body, "v": bad}))
