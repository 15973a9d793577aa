"""Variant specs as data: defaults, the spec hash, parsing and its errors."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import features

from imagepipe.errors import InvalidSpec
from imagepipe.spec import (
    DEFAULT_PIPELINE,
    DEFAULT_SPEC,
    Encoding,
    Variant,
    VariantList,
    load_pipelines,
)


def variant(**fields: Any) -> dict[str, Any]:
    return {"name": "v", "width": 100, "height": 80, "method": "fit", **fields}


def test_default_spec_is_the_product_spec() -> None:
    assert [(v.name, v.width, v.height, v.method) for v in DEFAULT_SPEC.variants] == [
        ("thumbnail", 150, 150, "cover"),
        ("medium", 800, 600, "fit"),
        ("large", 1920, 1080, "fit"),
    ]
    for v in DEFAULT_SPEC.variants:
        assert v.encoding == Encoding(format="webp", quality=85, effort=4, lossless=False)
        assert (v.extension, v.content_type) == ("webp", "image/webp")


def test_spec_hash_is_stable() -> None:
    # Variant keys in S3 (variants/{job}/{spec}/...) are cached as immutable:
    # the default spec's hash must not drift with refactoring.
    assert DEFAULT_SPEC.spec_hash == "713b1bfafdf5"
    assert re.fullmatch(r"[0-9a-f]{12}", DEFAULT_SPEC.spec_hash)
    again = VariantList.from_data(json.loads(json.dumps(DEFAULT_SPEC.to_data())))
    assert again == DEFAULT_SPEC and again.spec_hash == DEFAULT_SPEC.spec_hash


@pytest.mark.parametrize(
    "change",
    [
        {"name": "small"},
        {"width": 151},
        {"height": 149},
        {"method": "fit"},
        {"encoding": Encoding(quality=86)},
        {"encoding": Encoding(effort=5)},
        {"encoding": Encoding(lossless=True)},
        {"encoding": Encoding(format="png", effort=4)},
    ],
    ids=lambda change: next(iter(change)) + "=" + str(next(iter(change.values()))),
)
def test_spec_hash_changes_with_any_field(change: dict[str, Any]) -> None:
    first, *rest = DEFAULT_SPEC.variants
    changed = VariantList((replace(first, **change), *rest))
    assert changed.spec_hash != DEFAULT_SPEC.spec_hash


def test_spec_hash_depends_on_variant_order() -> None:
    reordered = VariantList(tuple(reversed(DEFAULT_SPEC.variants)))
    assert reordered.spec_hash != DEFAULT_SPEC.spec_hash


def test_parse_applies_encoding_defaults_per_format() -> None:
    spec = VariantList.from_data(
        [
            variant(name="w"),
            variant(name="j", encoding={"format": "jpeg", "quality": 70}),
            variant(name="p", encoding={"format": "png"}),
            variant(name="l", encoding={"lossless": True, "effort": 6}),
        ]
    )
    assert [v.encoding for v in spec.variants] == [
        Encoding("webp", 85, 4, False),
        Encoding("jpeg", 70, 0, False),
        Encoding("png", 85, 6, False),
        Encoding("webp", 85, 6, True),
    ]
    assert [v.extension for v in spec.variants] == ["webp", "jpg", "png", "webp"]
    # What the queue message carries parses back to the same spec.
    assert VariantList.from_data(spec.to_data()) == spec


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([variant(width=0)], r"variants\[0\]\.width: expected an integer from 1 to 16383, got 0"),
        ([variant(width=16384)], r"variants\[0\]\.width: .* got 16384"),
        ([variant(height="600")], r"variants\[0\]\.height: .* got '600'"),
        ([variant(height=True)], r"variants\[0\]\.height: .* got True"),
        ([variant(width=1.5)], r"variants\[0\]\.width: .* got 1\.5"),
        ([{"name": "v", "height": 1, "method": "fit"}], r"variants\[0\]\.width: required"),
        ([variant(method="fill")], r"variants\[0\]\.method: expected one of \['cover', 'fit'\]"),
        ([{"name": "v", "width": 1, "height": 1}], r"variants\[0\]\.method: .* got None"),
        ([variant(name="a"), variant(name="a")], r"duplicate variant names \['a'\]"),
        ([variant(colour="red")], r"variants\[0\]: unknown fields \['colour'\]"),
        ([variant(name="1st")], r"variants\[0\]\.name: expected a short identifier"),
        ([variant(name="a/b")], r"variants\[0\]\.name"),
        ([variant(), variant(name="x", encoding={"format": "gif"})], r"variants\[1\]\.encoding\.format"),
        ([variant(encoding={"quality": 0})], r"variants\[0\]\.encoding\.quality"),
        ([variant(encoding={"effort": 7})], r"variants\[0\]\.encoding\.effort: .* 0 to 6"),
        ([variant(encoding={"format": "jpeg", "effort": 4})], r"encoding\.effort: .* 0 to 0"),
        ([variant(encoding={"lossless": "yes"})], r"variants\[0\]\.encoding\.lossless"),
        ([variant(encoding={"speed": 1})], r"variants\[0\]\.encoding: unknown fields \['speed'\]"),
        ([variant(encoding="webp")], r"variants\[0\]\.encoding: expected a mapping"),
        (["thumbnail"], r"variants\[0\]: expected a mapping"),
        ([], r"variants: expected a non-empty list"),
        ({"name": "v"}, r"variants: expected a non-empty list"),
    ],
)
def test_parse_errors_name_the_field(variants: Any, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message) as caught:
        VariantList.from_data(variants)
    assert caught.value.code == "invalid_spec"


@pytest.mark.skipif(bool(features.check("avif")), reason="this build encodes AVIF")
def test_avif_is_refused_when_the_build_cannot_encode_it() -> None:
    with pytest.raises(InvalidSpec, match=r"variants\[0\]\.encoding\.format: .*AVIF"):
        VariantList.from_data([variant(encoding={"format": "avif"})])


def test_load_pipelines_reads_yaml(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        """
default:
  - {name: thumbnail, width: 150, height: 150, method: cover}
  - {name: medium, width: 800, height: 600, method: fit}
  - {name: large, width: 1920, height: 1080, method: fit}
avatars:
  - name: small
    width: 64
    height: 64
    method: cover
    encoding: {format: png, effort: 9}
  - name: jpeg
    width: 256
    height: 256
    method: fit
    encoding: {format: jpeg, quality: 80}
"""
    )
    pipelines = load_pipelines(path)
    assert list(pipelines) == ["default", "avatars"]
    assert pipelines["default"] == DEFAULT_SPEC
    assert pipelines["avatars"].variants == (
        Variant("small", 64, 64, "cover", Encoding("png", 85, 9, False)),
        Variant("jpeg", 256, 256, "fit", Encoding("jpeg", 80, 0, False)),
    )


def test_load_pipelines_reads_json(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.json"
    path.write_text(json.dumps({"web": DEFAULT_SPEC.to_data()}))
    assert load_pipelines(path) == {"web": DEFAULT_SPEC}


def test_without_a_file_there_is_the_default_pipeline() -> None:
    assert load_pipelines(None) == {DEFAULT_PIPELINE: DEFAULT_SPEC}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("default: [", "cannot read pipelines file"),
        ("", "expected a mapping of pipeline name to variants"),
        ("- a\n- b\n", "expected a mapping of pipeline name to variants"),
        ("'bad name': []\n", "invalid pipeline name 'bad name'"),
        ("web:\n  - {name: t, width: 0, height: 1, method: fit}\n", r"web\[0\]\.width"),
    ],
)
def test_load_pipelines_errors_name_the_file_and_place(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text(content)
    with pytest.raises(InvalidSpec, match=message) as caught:
        load_pipelines(path)
    assert str(path) in caught.value.message


def test_a_missing_pipelines_file_is_an_invalid_spec(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="cannot read pipelines file"):
        load_pipelines(tmp_path / "absent.yaml")
