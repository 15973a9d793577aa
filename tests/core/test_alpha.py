"""Transparency survives into WebP; alpha that hides nothing is dropped; animations give frame 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagepipe.processing import render
from imagepipe.spec import DEFAULT_SPEC
from tests.core.imaging import (
    LOSSLESS_SPEC,
    encoded,
    grey,
    outputs,
    reference_variants,
    render_file,
    riff_chunks,
)
from tests.support.ssim import ssim

WITH_ALPHA = [
    "sharp/with-alpha.png",  # RGBA
    "libvips/rgba.png",  # RGBA
    "sharp/5_webp_a.webp",  # WebP with alpha
    "thumbor/paletted-transparent.png",  # palette with tRNS
    "sharp/grey-8bit-alpha.png",  # grey + alpha
    "sharp/full-transparent.png",  # nothing visible at all
]


def source_alpha(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))[..., 3]


@pytest.mark.parametrize("name", WITH_ALPHA)
def test_alpha_is_kept_in_webp(corpus_dir: Path, name: str) -> None:
    path = corpus_dir / name
    rendered = render_file(path)
    images = outputs(rendered)
    for variant in rendered.variants:
        # An extended WebP with an alpha chunk, then the lossy picture.
        assert riff_chunks(variant.data) == ["VP8X", "ALPH", "VP8 "], variant.variant.name
        assert images[variant.variant.name].mode == "RGBA"
    # The full-size variant has the source's alpha (WebP keeps alpha losslessly).
    large = np.asarray(images["large"])[..., 3].astype(int)
    alpha = source_alpha(path).astype(int)
    assert large.shape == alpha.shape
    assert np.abs(large - alpha).max() <= 2


@pytest.mark.parametrize("name", [*WITH_ALPHA[:5], "sharp/alpha-premultiply-2048x1536-paper.png"])
def test_alpha_variants_look_like_the_reference_on_a_page(corpus_dir: Path, name: str) -> None:
    # Resizing must not bleed the colour hidden under transparent pixels
    # (Pillow resamples RGBA premultiplied); compare as shown on white. The
    # 2048x1536 "paper" hides a different picture under alpha 0: measured
    # 0.999 here, about 0.0 against that hidden picture.
    path = corpus_dir / name
    ours = outputs(render_file(path, LOSSLESS_SPEC))
    for variant, reference in reference_variants(path, mode="RGBA").items():
        assert ours[variant].size == reference.size
        score = ssim(grey(ours[variant]), grey(reference))
        assert score >= 0.97, f"{variant}: SSIM {score:.4f}"


@pytest.mark.parametrize("name", ["sharp/alpha-layer-0-background.png", "sharp/embedgravitybird.png"])
def test_fully_opaque_alpha_is_dropped(corpus_dir: Path, name: str) -> None:
    path = corpus_dir / name
    assert source_alpha(path).min() == 255, "the source has an alpha channel, all opaque"
    for variant in render_file(path).variants:
        assert riff_chunks(variant.data) == ["VP8 "], variant.variant.name  # simple lossy WebP
    assert {image.mode for image in outputs(render_file(path)).values()} == {"RGB"}


def test_alpha_is_dropped_per_variant() -> None:
    # Transparent only at the far left: the centre-cropped thumbnail sees none of it.
    image = Image.new("RGBA", (600, 200), (200, 100, 50, 255))
    image.paste((0, 0, 0, 0), (0, 0, 100, 200))
    rendered = render(encoded(image, "PNG"), DEFAULT_SPEC)
    modes = {name: im.mode for name, im in outputs(rendered).items()}
    assert modes == {"thumbnail": "RGB", "medium": "RGBA", "large": "RGBA"}


def test_animated_webp_gives_its_first_frame_as_a_still(corpus_dir: Path) -> None:
    path = corpus_dir / "sharp/animated-loop-3.webp"
    rendered = render_file(path, LOSSLESS_SPEC)
    assert rendered.source.frames == 10
    with Image.open(path) as animation:
        frames = []
        for index in (0, 5):
            animation.seek(index)
            frames.append(animation.convert("RGBA"))
    large = outputs(rendered)["large"]
    assert getattr(large, "n_frames", 1) == 1
    for variant in rendered.variants:
        chunks = riff_chunks(variant.data)
        assert "ANIM" not in chunks and "ANMF" not in chunks, chunks
    assert large.size == frames[0].size
    # Frame 1 exactly (lossless output); a later frame is clearly different.
    assert ssim(grey(large), grey(frames[0])) == pytest.approx(1.0)
    assert ssim(grey(large), grey(frames[1])) < 0.95
