"""Every variant looks like resizing the full-resolution, oriented source.

The reference is plain Pillow with no shortcut: full decode, EXIF transpose,
RGB, then LANCZOS of each variant's region straight from the full-resolution
source (same geometry). The pipeline takes shortcuts (DCT-scaled JPEG
decoding, smaller variants derived from larger ones) that must not show.

Threshold: SSIM >= 0.97 (the product's bar) for the resize itself, measured
on lossless outputs so that encoder noise does not count: the worst variant
measured scores 0.9947 (IMG_6494 large). Through the product's lossy WebP
(quality 85), compared with the reference encoded with the same settings,
the worst is 0.977 (2569067123 large); a lossy encode alone costs 0.02-0.05
against its original, and here both sides carry one, hence 0.96 there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagepipe.spec import DEFAULT_SPEC
from tests.core.imaging import (
    LOSSLESS_SPEC,
    decode,
    encoded,
    grey,
    outputs,
    reference_variants,
    render_file,
    rgb,
)
from tests.support.ssim import ssim

PHOTOS = [
    "thumbor/IMG_6494.JPG",  # 8 MP phone photo, orientation 3
    "sharp/2569067123_aca715a2ee_o.jpg",  # 2725x2225: scaled decode rounds up
    "sharp/gain-map.jpg",  # 3840x2160 Ultra HDR (SDR base image)
    "recurser/Landscape_1.jpg",
    "sharp/gradients-rgb8.png",
    "thumbor/Giunchedi%2C_Filippo_January_2015_01.png",
    "sharp/4.webp",
]
MIN_SSIM = 0.97
MIN_SSIM_LOSSY = 0.96


@pytest.mark.parametrize("name", PHOTOS)
def test_variants_look_like_resizing_the_full_source(corpus_dir: Path, name: str) -> None:
    path = corpus_dir / name
    ours = outputs(render_file(path, LOSSLESS_SPEC))
    refs = reference_variants(path)
    assert list(ours) == list(refs)
    for variant, reference in refs.items():
        assert ours[variant].size == reference.size, variant
        score = ssim(grey(ours[variant]), grey(reference))
        assert score >= MIN_SSIM, f"{variant}: SSIM {score:.4f}"


@pytest.mark.parametrize("name", PHOTOS[:3])
def test_lossy_variants_look_like_the_reference_through_the_same_encoder(corpus_dir: Path, name: str) -> None:
    path = corpus_dir / name
    ours = outputs(render_file(path))
    for variant, reference in reference_variants(path).items():
        encoding = next(v.encoding for v in DEFAULT_SPEC.variants if v.name == variant)
        same_encoder = decode(encoded(reference, "WEBP", quality=encoding.quality, method=encoding.effort))
        score = ssim(grey(ours[variant]), grey(same_encoder))
        assert score >= MIN_SSIM_LOSSY, f"{variant}: SSIM {score:.4f}"


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("sharp/2x2_fdcce6.png", (2, 2)),
        ("sharp/centered_image.jpeg", (75, 105)),
        ("libvips/rgba.png", (128, 128)),
        ("sharp/320x240.jpg", (320, 240)),
        ("sharp/Landscape_1.jpg", (600, 450)),
        ("sharp/4.webp", (1024, 772)),  # medium shrinks, large keeps the size
    ],
)
def test_fit_never_upscales(corpus_dir: Path, name: str, source: tuple[int, int]) -> None:
    rendered = render_file(corpus_dir / name)
    assert (rendered.source.width, rendered.source.height) == source
    sizes = {v.variant.name: (v.width, v.height) for v in rendered.variants}
    assert sizes["thumbnail"] == (150, 150), "cover always gives the exact size"
    for name_ in ("medium", "large"):
        box = {"medium": (800, 600), "large": (1920, 1080)}[name_]
        w, h = sizes[name_]
        assert w <= source[0] and h <= source[1], f"{name_} upscaled to {w}x{h}"
        assert w <= box[0] and h <= box[1]
        assert w == source[0] or h == source[1] or w == box[0] or h == box[1]
    if source[0] <= 800 and source[1] <= 600:
        assert sizes["medium"] == sizes["large"] == source


@pytest.mark.parametrize(
    "name",
    ["sharp/swiss.png", "sharp/2x2_fdcce6.png", "sharp/d.png", "libvips/rgba.png", "sharp/bgbn4a08.png"],
)
def test_small_images_keep_their_pixels(corpus_dir: Path, name: str) -> None:
    # Square sources smaller than the thumbnail: the cover thumbnail is an
    # upscale, and medium and large must come from the source, not from it.
    path = corpus_dir / name
    ours = outputs(render_file(path, LOSSLESS_SPEC))
    with Image.open(path) as source:
        assert ours["thumbnail"].size == (150, 150)
        for variant in ("medium", "large"):
            assert ours[variant].size == source.size
            assert np.array_equal(rgb(ours[variant]), rgb(source)), variant


def test_a_4k_frame_makes_full_hd_large(corpus_dir: Path) -> None:
    rendered = render_file(corpus_dir / "sharp/gain-map.jpg")
    assert (rendered.source.width, rendered.source.height) == (3840, 2160)
    sizes = {v.variant.name: (v.width, v.height) for v in rendered.variants}
    assert sizes == {"thumbnail": (150, 150), "medium": (800, 450), "large": (1920, 1080)}
