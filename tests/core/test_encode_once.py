"""Each distinct output (same pixels, same encoding) is encoded once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imagepipe.steps.encode as encode_step
from imagepipe.processing import render
from imagepipe.spec import DEFAULT_SPEC, Encoding, Variant, VariantList
from tests.core.imaging import encoded


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[int, int], Encoding]]:
    """Records each call of the real encoder."""
    calls: list[tuple[tuple[int, int], Encoding]] = []
    real = encode_step.encode

    def counting(image: Image.Image, encoding: Encoding) -> bytes:
        calls.append((image.size, encoding))
        return real(image, encoding)

    monkeypatch.setattr(encode_step, "encode", counting)
    return calls


def _photo(width: int, height: int) -> bytes:
    rng = np.random.default_rng(7)
    return encoded(Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)), "JPEG")


def test_a_small_source_encodes_medium_and_large_once(
    encodes: list[tuple[tuple[int, int], Encoding]],
) -> None:
    rendered = render(_photo(600, 450), DEFAULT_SPEC)
    by_name = {r.variant.name: r for r in rendered.variants}
    assert by_name["medium"].data is by_name["large"].data
    assert (by_name["medium"].width, by_name["medium"].height) == (600, 450)
    assert [size for size, _ in encodes] == [(150, 150), (600, 450)]


def test_a_large_source_encodes_every_variant(encodes: list[tuple[tuple[int, int], Encoding]]) -> None:
    rendered = render(_photo(2400, 1600), DEFAULT_SPEC)
    assert len({id(r.data) for r in rendered.variants}) == 3
    assert sorted(size for size, _ in encodes) == [(150, 150), (800, 533), (1620, 1080)]


def test_same_pixels_in_another_encoding_are_encoded_again(
    encodes: list[tuple[tuple[int, int], Encoding]],
) -> None:
    spec = VariantList(
        (
            Variant("webp", 800, 600, "fit"),
            Variant("jpeg", 800, 600, "fit", Encoding(format="jpeg")),
            Variant("also_webp", 1000, 1000, "fit"),
        )
    )
    rendered = render(_photo(400, 300), spec)
    data = {r.variant.name: r.data for r in rendered.variants}
    assert data["webp"] is data["also_webp"]
    assert data["jpeg"][:3] == b"\xff\xd8\xff" and data["webp"][:4] == b"RIFF"
    assert len(encodes) == 2


def test_shared_outputs_match_a_separate_render(corpus_dir: Path) -> None:
    data = (corpus_dir / "sharp" / "Landscape_5.jpg").read_bytes()
    shared = {r.variant.name: r.data for r in render(data, DEFAULT_SPEC).variants}
    alone = render(data, VariantList((DEFAULT_SPEC.variants[2],))).variants[0].data
    assert shared["large"] == alone == shared["medium"]
