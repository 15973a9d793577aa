"""Colour: ICC profiles to sRGB, CMYK and YCCK, 16-bit, 1-bit, palette and grey.

Outputs here are lossless WebP of the full-size (`large`) variant, so the
pixels are compared with a reference one to one; the references are made in
the test with PIL.ImageCms (lcms2) from the file's own profile.

Threshold for "within a few levels": mean absolute difference per channel
<= 1.5 levels, 99th percentile <= 8. Measured: CMYK with its SWOP profile
0.07 / 1 against a perceptual-intent rendering (the pipeline uses relative
colorimetric with black-point compensation, which SWOP maps the same way to
within 5 levels); CMYK without a profile 0.11 / 1; YCCK 0.10 / 1. Wrong
renderings are far outside: naive CMYK->RGB 12.6 / 44, relative colorimetric
without black-point compensation 7.2 / 28.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageCms, ImageOps

from imagepipe.processing import render
from imagepipe.steps.colour import DEFAULT_CMYK_PROFILE
from tests.core.imaging import LOSSLESS_SPEC, encoded, grey, outputs, render_file, rgb
from tests.support.ssim import ssim

SRGB = ImageCms.createProfile("sRGB")
MAX_MEAN = 1.5
MAX_P99 = 8.0


def large(path: Path) -> Image.Image:
    return outputs(render_file(path, LOSSLESS_SPEC))["large"]


def managed(image: Image.Image, profile: bytes) -> Image.Image:
    """`image` through `profile` to sRGB, the profile's default (perceptual) intent."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    out = ImageCms.profileToProfile(image, source, SRGB, outputMode="RGB")
    assert out is not None
    return out


def difference(ours: Image.Image, reference: Image.Image) -> tuple[float, float]:
    assert ours.size == reference.size
    d: NDArray[np.float64] = np.abs(rgb(ours) - rgb(reference))
    return float(d.mean()), float(np.percentile(d, 99))


def assert_close(ours: Image.Image, reference: Image.Image) -> None:
    mean, p99 = difference(ours, reference)
    assert mean <= MAX_MEAN and p99 <= MAX_P99, f"mean {mean:.2f}, p99 {p99:.0f} levels"


def decoded(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


@pytest.fixture(scope="module")
def swop(corpus_dir: Path) -> bytes:
    """U.S. Web Coated (SWOP) v2, as embedded in the CMYK sample."""
    profile = Image.open(corpus_dir / "sharp/Channel_digital_image_CMYK_color.jpg").info
    return bytes(profile["icc_profile"])


def test_cmyk_with_its_profile(corpus_dir: Path, swop: bytes) -> None:
    path = corpus_dir / "sharp/Channel_digital_image_CMYK_color.jpg"
    source = decoded(path)
    assert source.mode == "CMYK"
    assert_close(large(path), managed(source, swop))
    # A naive conversion is far off: the test can tell.
    assert difference(large(path), source.convert("RGB"))[0] > 5 * MAX_MEAN


def test_cmyk_without_a_profile_reads_as_a_press_profile(corpus_dir: Path, swop: bytes) -> None:
    # The same picture with the profile stripped: a standard press profile
    # (Ghostscript's SWOP-like default) must give the colours SWOP gives.
    path = corpus_dir / "sharp/Channel_digital_image_CMYK_color_no_profile.jpg"
    source = decoded(path)
    assert source.mode == "CMYK" and "icc_profile" not in source.info
    assert_close(large(path), managed(source, swop))


def test_ycck_is_not_inverted(corpus_dir: Path) -> None:
    assert DEFAULT_CMYK_PROFILE.is_file(), "install libgs-common (the fallback CMYK profile)"
    path = corpus_dir / "thumbor/ycck.jpg"
    source = decoded(path)
    assert source.mode == "CMYK" and source.info.get("adobe_transform") == 2
    ours = large(path)
    reference = managed(source, DEFAULT_CMYK_PROFILE.read_bytes())
    assert_close(ours, reference)
    assert ssim(grey(ours), grey(reference)) >= 0.99
    # A product shot on white: an inverted or garbled decode is dark.
    assert rgb(ours).mean() > 200


def test_cmyk_flat_colour_with_profile(corpus_dir: Path, swop: bytes) -> None:
    path = corpus_dir / "thumbor/cmyk-icc.jpg"  # Adobe APP14, transform 0 (plain CMYK)
    ours = large(path)
    assert_close(ours, managed(decoded(path), swop))
    assert ours.getpixel((10, 10)) == pytest.approx((149, 213, 213), abs=3)  # light teal


def test_xyb_jpeg_renders_like_the_plain_jpeg(corpus_dir: Path) -> None:
    # sample-xyb.jpg stores XYB values that are only colours through its ICC
    # profile; sample.jpg is the same picture as ordinary (Adobe RGB) JPEG.
    # Measured: mean 1.5 levels, SSIM 0.996; without colour management the
    # XYB file is 24.8 levels off (SSIM 0.91).
    plain = decoded(corpus_dir / "libvips/sample.jpg")
    reference = managed(plain, plain.info["icc_profile"])
    ours = large(corpus_dir / "libvips/sample-xyb.jpg")
    mean, _ = difference(ours, reference)
    assert mean <= 4.0, f"mean {mean:.2f} levels"
    assert ssim(grey(ours), grey(reference)) >= 0.98


@pytest.mark.parametrize("name", ["sharp/p3.png", "sharp/prophoto.png", "sharp/Landscape_2.jpg"])
def test_wide_gamut_and_other_profiles_convert_to_srgb(corpus_dir: Path, name: str) -> None:
    path = corpus_dir / name
    source = decoded(path)
    upright = ImageOps.exif_transpose(source).convert("RGB")
    ours = large(path)
    assert_close(ours, managed(upright, source.info["icc_profile"]))
    # The unconverted values differ: the conversion did something.
    assert difference(ours, upright)[0] > 1.0


def test_sixteen_bit_png_looks_like_its_8_bit_values(corpus_dir: Path) -> None:
    path = corpus_dir / "libvips/sample.png"  # 16 bits per channel, RGB
    ours = large(path)
    # Pillow reads 16-bit RGB as its top 8 bits: the same picture to within a level.
    assert difference(ours, decoded(path).convert("RGB"))[0] <= 0.5
    # And it is the picture of sample.jpg (a lossy JPEG of it): measured 0.972.
    jpeg = decoded(corpus_dir / "libvips/sample.jpg")
    assert ssim(grey(ours), grey(managed(jpeg, jpeg.info["icc_profile"]))) >= 0.95


def test_sixteen_bit_flag_keeps_its_colours(corpus_dir: Path) -> None:
    ours = large(corpus_dir / "sharp/Flag_of_the_Netherlands-16bit.png")
    stripes = [ours.getpixel((450, y)) for y in (50, 300, 550)]
    assert stripes == [(174, 28, 40), (255, 255, 255), (33, 70, 139)]


def test_one_bit_scan_is_resized_in_grey(corpus_dir: Path) -> None:
    path = corpus_dir / "sharp/50020484-00001.png"
    source = decoded(path)
    assert source.mode == "1"
    ours = large(path)
    assert ours.size == (1463, 1080)
    reference = source.convert("L").resize(ours.size, Image.Resampling.LANCZOS)
    assert ssim(grey(ours), np.asarray(reference)) >= 0.99
    # Anti-aliased, not thresholded back to two levels.
    assert len(np.unique(grey(ours))) > 100


@pytest.mark.parametrize(
    "name", ["libvips/indexed.png", "sharp/swiss.png", "sharp/Flag_of_the_Netherlands.png"]
)
def test_palette_images_keep_their_colours(corpus_dir: Path, name: str) -> None:
    path = corpus_dir / name
    reference = decoded(path).convert("RGB")
    ours = large(path)
    if ours.size != reference.size:
        reference = reference.resize(ours.size, Image.Resampling.LANCZOS)
    assert difference(ours, reference)[0] <= 0.5


def test_grey_jpeg_is_colour_managed_and_stays_grey(corpus_dir: Path) -> None:
    path = corpus_dir / "sharp/concert.jpg"  # L, Gray Gamma 2.2 profile
    source = decoded(path)
    assert source.mode == "L"
    ours = large(path)
    assert_close(ours, managed(source, source.info["icc_profile"]))
    pixels = rgb(ours)
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 1], pixels[..., 2])


def test_profile_with_an_undecodable_description_still_renders(corpus_dir: Path) -> None:
    # Found by mutating corpus files: one flipped byte in an sRGB profile's
    # ASCII description made lcms raise from getProfileDescription.
    source = decoded(corpus_dir / "sharp/low-contrast.jpg")
    profile = bytearray(source.info["icc_profile"])
    start = profile.index(b"sRGB IEC61966-2.1")
    profile[start + 5] = 0x89
    with pytest.raises(ImageCms.PyCMSError):
        ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(bytes(profile))))
    data = encoded(source, "PNG", icc_profile=bytes(profile))
    ours = outputs(render(data, LOSSLESS_SPEC))["large"]
    assert_close(ours, managed(source, bytes(profile)))
