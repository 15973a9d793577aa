"""Each processing step on its own, on small synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFile

from imagepipe.context import Context
from imagepipe.errors import UnsupportedFormat
from imagepipe.processing import PROBE, render, run
from imagepipe.spec import DEFAULT_SPEC, Encoding, Variant, VariantList
from imagepipe.steps.alpha import drop_opaque_alpha, without_opaque_alpha
from imagepipe.steps.mode import normalise_mode, to_working_mode
from imagepipe.steps.open import EXIF_ORIENTATION, open_source
from imagepipe.steps.orient import orient
from imagepipe.steps.resize import resample
from tests.core.imaging import decode, encoded
from tests.support.ssim import ssim


def pixels(image: Image.Image) -> list[tuple[int, ...]]:
    bands = len(image.getbands())
    return [tuple(p) for p in np.asarray(image).reshape(-1, bands).tolist()]


# --- normalise_mode ---------------------------------------------------------


def test_one_bit_becomes_black_and_white_grey() -> None:
    image = Image.fromarray(np.array([[True, False], [False, True]]))
    assert image.mode == "1"
    out = to_working_mode(image)
    assert out.mode == "L"
    assert np.asarray(out).tolist() == [[255, 0], [0, 255]]


def test_palette_becomes_rgb() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putpixel((1, 0), 1)
    out = to_working_mode(image)
    assert out.mode == "RGB"
    assert pixels(out) == [(255, 0, 0), (0, 0, 255)]


def test_palette_transparency_becomes_an_alpha_channel() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 1
    out = to_working_mode(image)
    assert out.mode == "RGBA"
    assert pixels(out) == [(255, 0, 0, 255), (0, 0, 255, 0)]


def test_palette_with_per_entry_alpha_from_a_png() -> None:
    image = Image.new("P", (3, 1))
    image.putpalette([10, 20, 30, 40, 50, 60, 70, 80, 90])
    image.putdata([0, 1, 2])
    image = decode(encoded(image, "PNG", transparency=bytes([255, 128, 0])))
    out = to_working_mode(image)
    assert out.mode == "RGBA"
    assert [p[3] for p in pixels(out)] == [255, 128, 0]


@pytest.mark.parametrize(("mode", "colour"), [("L", 7), ("RGB", (1, 2, 3))])
def test_trns_colour_key_becomes_an_alpha_channel(mode: str, colour: int | tuple[int, ...]) -> None:
    image = Image.new(mode, (2, 1), colour)
    image.putpixel((1, 0), 200 if mode == "L" else (200, 200, 200))
    image = decode(encoded(image, "PNG", transparency=colour))
    out = to_working_mode(image)
    assert out.mode in ("RGBA", "LA")
    assert [p[-1] for p in pixels(out)] == [0, 255]


def sixteen_bit_grey() -> tuple[Image.Image, NDArray[np.uint16]]:
    values = np.array([[0, 1, 128, 255, 256, 257, 32767, 32768, 65279, 65535]], dtype=np.uint16)
    image = decode(encoded(Image.fromarray(values), "PNG"))  # a real 16-bit grey PNG
    assert image.mode.startswith("I;16")
    return image, values


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    image, values = sixteen_bit_grey()
    out = to_working_mode(image)
    assert out.mode == "L"
    expected = np.round(values.astype(np.float64) * 255 / 65535).astype(int)
    assert np.asarray(out).astype(int).tolist() == expected.tolist()
    # Pillow's own conversion clips everything above 255 to white.
    assert np.asarray(image.convert("L"))[0, 4:].tolist() == [255] * 6


def test_sixteen_bit_grey_renders_as_its_8_bit_look() -> None:
    gradient = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (16, 1))
    rendered = render(encoded(Image.fromarray(gradient), "PNG"), lossless_fit(256, 16))
    out = np.asarray(decode(rendered.variants[0].data).convert("L")).astype(int)
    expected = np.round(gradient.astype(np.float64) * 255 / 65535).astype(int)
    assert np.abs(out - expected).max() <= 1


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("LA", "LA"), ("La", "LA"), ("PA", "RGBA"), ("RGBa", "RGBA"), ("RGBX", "RGB"),
     ("YCbCr", "RGB"), ("L", "L"), ("RGB", "RGB"), ("RGBA", "RGBA"), ("CMYK", "CMYK")],
)  # fmt: skip
def test_other_modes(mode: str, expected: str) -> None:
    assert to_working_mode(Image.new(mode, (2, 2))).mode == expected


def test_la_keeps_grey_and_alpha() -> None:
    image = Image.new("LA", (2, 1), (90, 255))
    image.putpixel((1, 0), (30, 40))
    out = to_working_mode(image)
    assert out.mode == "LA" and pixels(out) == [(90, 255), (30, 40)]


def test_float_pixels_are_unsupported() -> None:
    with pytest.raises(UnsupportedFormat, match="pixel format F"):
        to_working_mode(Image.new("F", (2, 2)))


def test_normalise_mode_step_replaces_the_working_image() -> None:
    ctx = Context(data=b"", spec=DEFAULT_SPEC, image=Image.new("1", (3, 3)))
    normalise_mode(ctx)
    assert ctx.working_image().mode == "L"


# --- drop_opaque_alpha ------------------------------------------------------


def test_fully_opaque_alpha_is_dropped() -> None:
    image = Image.new("RGBA", (4, 3), (10, 20, 30, 255))
    out = without_opaque_alpha(image)
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (10, 20, 30)
    out = without_opaque_alpha(Image.new("LA", (4, 3), (99, 255)))
    assert out.mode == "L" and out.getpixel((3, 2)) == 99


@pytest.mark.parametrize("alpha", [0, 254])
def test_any_transparency_keeps_alpha(alpha: int) -> None:
    image = Image.new("RGBA", (4, 3), (10, 20, 30, 255))
    image.putpixel((3, 2), (10, 20, 30, alpha))
    assert without_opaque_alpha(image) is image


def test_images_without_alpha_pass_through() -> None:
    image = Image.new("RGB", (2, 2))
    assert without_opaque_alpha(image) is image


def test_drop_opaque_alpha_step_works_per_variant() -> None:
    ctx = Context(data=b"", spec=DEFAULT_SPEC)
    see_through = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    ctx.resized = {"a": Image.new("RGBA", (2, 2), (1, 2, 3, 255)), "b": see_through}
    drop_opaque_alpha(ctx)
    assert ctx.resized["a"].mode == "RGB" and ctx.resized["b"] is see_through


# --- orient -----------------------------------------------------------------

# What a viewer shows for each EXIF orientation, in the words of the EXIF
# specification, applied to a stored array with numpy (not Pillow).
STORED = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40  # [[0, 40, 80], [120, 160, 200]]
DISPLAYED = {
    1: STORED,
    2: STORED[:, ::-1],  # mirror horizontal
    3: np.rot90(STORED, 2),  # rotate 180
    4: STORED[::-1, :],  # mirror vertical
    5: np.rot90(STORED[:, ::-1], 1),  # mirror horizontal, rotate 270 CW
    6: np.rot90(STORED, -1),  # rotate 90 CW
    7: np.rot90(STORED[:, ::-1], -1),  # mirror horizontal, rotate 90 CW
    8: np.rot90(STORED, 1),  # rotate 270 CW
}


@pytest.mark.parametrize("orientation", sorted(DISPLAYED))
def test_orient_maps_each_exif_orientation(orientation: int) -> None:
    ctx = Context(data=b"", spec=DEFAULT_SPEC, image=Image.fromarray(STORED))
    ctx.orientation = orientation
    orient(ctx)
    assert np.asarray(ctx.working_image()).tolist() == DISPLAYED[orientation].tolist()


def test_the_eight_orientations_are_distinct() -> None:
    assert len({DISPLAYED[o].tobytes() + bytes(DISPLAYED[o].shape) for o in DISPLAYED}) == 8


# --- open_source: header only, orientation from every format -----------------


def exif(orientation: int) -> Image.Exif:
    data = Image.Exif()
    data[EXIF_ORIENTATION] = orientation
    return data


def not_decoded(image: Image.Image) -> bool:
    """Pillow keeps the tiles to decode until load() has decoded them."""
    assert isinstance(image, ImageFile.ImageFile)
    return bool(image.tile)


def opened(data: bytes) -> Context:
    ctx = Context(data=data, spec=DEFAULT_SPEC)
    open_source(ctx)
    return ctx


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_open_reads_orientation_from_the_header(fmt: str, orientation: int) -> None:
    data = encoded(Image.new("RGB", (40, 20), "red"), fmt, exif=exif(orientation))
    ctx = opened(data)
    assert ctx.orientation == orientation
    source = ctx.source_info()
    assert (source.width, source.height) == ((20, 40) if orientation in (6, 8) else (40, 20))
    assert (source.format, source.frames, source.bytes) == (fmt.lower(), 1, len(data))
    if fmt != "WEBP":  # Pillow's WebP plugin has no tiles; it decodes in load()
        assert not_decoded(ctx.working_image()), "open must not decode the pixels"


def test_open_does_not_decode_a_png_without_exif() -> None:
    # PngImageFile.getexif() decodes the whole image to look for a late eXIf
    # chunk: a 65536x65536 PNG would allocate 4 GB before the pixel limit.
    ctx = opened(encoded(Image.new("RGB", (40, 20)), "PNG"))
    assert ctx.orientation == 1
    assert not_decoded(ctx.working_image()), "open must not decode the pixels"


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_out_of_range_orientation_means_as_stored(value: int) -> None:
    ctx = opened(encoded(Image.new("RGB", (40, 20)), "JPEG", exif=exif(value)))
    assert ctx.orientation == 1


def test_open_keeps_the_icc_profile() -> None:
    profile = b"not really a profile"
    ctx = opened(encoded(Image.new("RGB", (4, 4)), "PNG", icc_profile=profile))
    assert ctx.icc_profile == profile


# --- shrink_on_load and resize: scaled JPEG decoding --------------------------


def lossless_fit(width: int, height: int) -> VariantList:
    return VariantList((Variant("v", width, height, "fit", Encoding(lossless=True, quality=1, effort=0)),))


def test_scaled_decoding_picks_the_smallest_dct_scale_that_covers_the_plans() -> None:
    data = encoded(Image.new("RGB", (1001, 1001), "white"), "JPEG")
    ctx = Context(data=data, spec=lossless_fit(100, 100))
    run(ctx, PROBE)
    # 100 of 1001 pixels: 1/8 gives 126 >= 100, 1/16 does not exist.
    assert ctx.decode_scale == 1 / 8
    assert ctx.working_image().size == (126, 126)  # rounded up: ceil(1001 / 8)

    ctx = Context(data=data, spec=lossless_fit(600, 600))
    run(ctx, PROBE)
    assert ctx.decode_scale == 1 and ctx.working_image().size == (1001, 1001)


def test_png_is_never_scaled_on_load() -> None:
    ctx = Context(data=encoded(Image.new("RGB", (1001, 1001)), "PNG"), spec=lossless_fit(100, 100))
    run(ctx, PROBE)
    assert ctx.decode_scale == 1 and ctx.working_image().size == (1001, 1001)


@pytest.mark.parametrize("width", [1000, 1001, 1007])
def test_scaled_decoding_keeps_the_picture_in_place(width: int) -> None:
    # A vertical edge at x = 900: white to its left, black to its right. The
    # decoded size is rounded up to whole pixels, so mapping the source by the
    # size ratio (126 / 1001 instead of 1/8) would move the edge left.
    pixels = np.zeros((width, width), dtype=np.uint8)
    pixels[:, :900] = 255
    data = encoded(Image.fromarray(pixels), "JPEG", quality=98)
    rendered = render(data, lossless_fit(100, 100))
    out = np.asarray(decode(rendered.variants[0].data).convert("L"), dtype=np.float64)
    edge = out[40:60].sum(axis=1).mean() / 255  # white columns, to a fraction of a pixel
    assert edge == pytest.approx(900 * 100 / width, abs=0.1)


def test_a_large_reduction_looks_like_the_fair_resize() -> None:
    # 12000 -> 1920 across: box-reduced by 2 first (REDUCING_GAP), then LANCZOS.
    image = Image.effect_mandelbrot((12000, 400), (-2.2, -0.6, 1.0, 0.6), 200)
    box = (0.0, 0.0, 12000.0, 400.0)
    ours = resample(image, (1920, 64), box)
    fair = image.resize((1920, 64), Image.Resampling.LANCZOS, box=box)
    assert ours.tobytes() != fair.tobytes()  # the reduction did happen
    assert ssim(np.asarray(ours), np.asarray(fair)) >= 0.97
