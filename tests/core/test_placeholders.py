"""Placeholders: our encoders against independent ones, alpha, colours, the LQIP."""

from __future__ import annotations

import base64
import inspect
import io
import math
from collections.abc import Callable
from pathlib import Path

import blurhash as reference_blurhash
import numpy as np
import pytest
import thumbhash as reference_thumbhash
from PIL import Image

from imagepipe.context import Context
from imagepipe.placeholders import LQIP_MAX_CHARS, LQIP_SIDE, placeholder
from imagepipe.processing import RENDER, render, run
from imagepipe.spec import DEFAULT_SPEC, Variant, VariantList
from imagepipe.steps.placeholder import hash_image, make_placeholder

PHOTOS = [
    "recurser/Landscape_1.jpg",
    "recurser/Portrait_1.jpg",  # 67x100
    "sharp/2569067123_aca715a2ee_o.jpg",
    "thumbor/IMG_6494.JPG",
    "sharp/embedgravitybird.png",
    "libvips/1.webp",
]
# Sources with transparency (reduced to 100x100, 83x100, 100x75).
ALPHA = ["sharp/5_webp_a.webp", "sharp/trim-mc.png", "thumbor/paletted-transparent.png"]


def reference_thumbhash_with_alpha() -> Callable[[int, int, list[int]], list[int]]:
    """`thumbhash` 0.1.2's encoder with its one alpha bug fixed: it unpacks
    `encode_channel(a, 5, 5) if has_alpha else 1.0, [], 1.0` (a 3-tuple whose
    first item is the conditional), so every image with alpha fails; here
    the conditional is parenthesised, nothing else changed."""
    source = inspect.getsource(reference_thumbhash.rgba_to_thumb_hash)
    broken = "encode_channel(a, 5, 5) if has_alpha else 1.0, [], 1.0"
    assert broken in source, "the reference changed: check whether its alpha bug is fixed"
    namespace = dict(vars(reference_thumbhash))
    exec(source.replace(broken, "encode_channel(a, 5, 5) if has_alpha else (1.0, [], 1.0)"), namespace)
    encoder: Callable[[int, int, list[int]], list[int]] = namespace["rgba_to_thumb_hash"]
    return encoder


def small_image(data: bytes, spec: VariantList = DEFAULT_SPEC) -> Image.Image:
    ctx = Context(data=data, spec=spec)
    run(ctx, RENDER[: RENDER.index(make_placeholder)])
    return hash_image(ctx)


def assert_hashes_equal_the_reference_encoders(small: Image.Image) -> None:
    px = np.asarray(small)
    assert px[..., 3].min() == 255
    ours = placeholder(small)
    theirs = bytes(reference_thumbhash.rgba_to_thumb_hash(small.width, small.height, list(small.tobytes())))
    assert base64.b64decode(ours.thumbhash) == theirs
    assert ours.blurhash == reference_blurhash.encode(px[..., :3].tolist(), 4, 3)


@pytest.mark.parametrize("name", PHOTOS)
def test_hashes_equal_the_reference_encoders(corpus_dir: Path, name: str) -> None:
    small = small_image((corpus_dir / name).read_bytes())
    assert max(small.size) == 100
    assert_hashes_equal_the_reference_encoders(small)


@pytest.mark.parametrize("size", [(1, 40), (40, 1), (3, 100)])
def test_hashes_of_tiny_images_equal_the_reference_encoders(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    assert_hashes_equal_the_reference_encoders(Image.fromarray(noise, "RGB").convert("RGBA"))


@pytest.mark.parametrize("name", ALPHA)
def test_thumbhash_with_alpha_equals_the_reference_encoder(corpus_dir: Path, name: str) -> None:
    small = small_image((corpus_dir / name).read_bytes())
    assert np.asarray(small)[..., 3].min() < 255
    thumb = base64.b64decode(placeholder(small).thumbhash)
    assert thumb[2] >> 7 == 1, "the alpha flag"
    assert thumb == bytes(reference_thumbhash_with_alpha()(small.width, small.height, list(small.tobytes())))


def spot_on_hidden_green() -> Image.Image:
    """A red disc on a transparent background whose hidden colour is green."""
    image = Image.new("RGBA", (80, 60), (0, 255, 0, 0))
    disc = Image.new("L", (80, 60), 0)
    disc.paste(255, (25, 15, 55, 45))
    image.paste(Image.new("RGBA", (80, 60), (220, 20, 20, 255)), mask=disc)
    return image


def test_transparent_pixels_do_not_count() -> None:
    ours = placeholder(spot_on_hidden_green())
    assert ours.average_color == ours.dominant_color == "#dc1414"
    # ThumbHash keeps the alpha: its flag, and the mean opacity (the disc
    # covers 3/16 of the frame) in the alpha DC. (The reference package's
    # full decoder reuses its first pixel's cosines, so it is not used here.)
    thumb = base64.b64decode(ours.thumbhash)
    assert thumb[2] >> 7 == 1
    assert abs((thumb[5] & 15) / 15 - 3 / 16) <= 1 / 30
    r, g, b, _ = reference_thumbhash.thumb_hash_to_average_rgba(list(thumb))
    assert r > 0.7 and g < 0.2 and b < 0.2
    # BlurHash has no alpha: it sees the hidden background as the visible colour.
    painted = np.asarray(spot_on_hidden_green().convert("RGB")).copy()
    painted[:, :] = (220, 20, 20)
    assert ours.blurhash == reference_blurhash.encode(painted.tolist(), 4, 3)


def test_the_lqip_is_a_small_blurred_webp(corpus_dir: Path) -> None:
    for image in (small_image((corpus_dir / PHOTOS[0]).read_bytes()), spot_on_hidden_green()):
        uri = placeholder(image).lqip
        prefix = "data:image/webp;base64,"
        assert uri.startswith(prefix) and len(uri) <= LQIP_MAX_CHARS
        with Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :]))) as webp:
            assert webp.format == "WEBP" and max(webp.size) <= LQIP_SIDE
            assert (webp.mode == "RGBA") == (np.asarray(image)[..., 3].min() < 255)


def test_noise_still_fits_the_lqip_bound() -> None:
    rng = np.random.default_rng(3)
    noise = Image.fromarray(rng.integers(0, 255, (100, 100, 4), dtype=np.uint8), "RGBA")
    assert len(placeholder(noise).lqip) <= LQIP_MAX_CHARS


def test_the_hash_image_is_the_smallest_whole_frame_variant(corpus_dir: Path) -> None:
    data = (corpus_dir / "recurser" / "Landscape_1.jpg").read_bytes()  # 1800x1200
    assert small_image(data).size == (100, 67)
    covers = VariantList((Variant("wide", 300, 100, "cover"), Variant("square", 60, 60, "cover")))
    assert small_image(data, covers).size == (60, 60)


def test_render_carries_placeholders_unless_turned_off(corpus_dir: Path) -> None:
    data = (corpus_dir / "sharp" / "Landscape_1.jpg").read_bytes()
    assert render(data, DEFAULT_SPEC).placeholder is not None
    off = VariantList(DEFAULT_SPEC.variants, placeholder=False)
    assert off.spec_hash == DEFAULT_SPEC.spec_hash
    assert render(data, off).placeholder is None


def python_dominant_color(small: Image.Image) -> str:
    """The dominant colour as the module defines it, pixel by pixel in Python."""
    pixels = list(zip(*(band.tobytes() for band in small.split()), strict=True))
    coverage = [0] * 512
    for r, g, b, a in pixels:
        coverage[(r >> 5) << 6 | (g >> 5) << 3 | b >> 5] += a
    best = coverage.index(max(coverage))
    cell = [(r, g, b, a) for r, g, b, a in pixels if (r >> 5) << 6 | (g >> 5) << 3 | b >> 5 == best]
    total = sum(a for *_, a in cell)
    if not total:
        return "#000000"
    mean = (math.floor(sum(p[k] * p[3] for p in cell) / total + 0.5) for k in range(3))
    return "#{:02x}{:02x}{:02x}".format(*mean)


@pytest.mark.parametrize("name", [PHOTOS[0], PHOTOS[1], *ALPHA])
def test_dominant_color_equals_a_pixel_by_pixel_count(corpus_dir: Path, name: str) -> None:
    small = small_image((corpus_dir / name).read_bytes())
    assert placeholder(small).dominant_color == python_dominant_color(small)
