"""Step: bring any decoded pixel format to one we resize and encode faithfully."""

from __future__ import annotations

from functools import cache

from PIL import Image

from imagepipe.context import Context
from imagepipe.errors import UnsupportedFormat


@cache
def _sixteen_to_eight() -> list[int]:
    """16-bit to 8-bit by scaling, not by clipping (Pillow's convert clips at
    255); built on first use: 9 ms at import for every process otherwise."""
    return [(v * 255 + 32767) // 65535 for v in range(65536)]


_CONVERT = {
    "1": "L",
    "P": "RGB",
    "PA": "RGBA",
    "La": "LA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}
# Modes the later steps take as they are.
_KEPT = {"L", "LA", "RGB", "RGBA", "CMYK"}


def normalise_mode(ctx: Context) -> None:
    ctx.image = to_working_mode(ctx.working_image())


def to_working_mode(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode.startswith("I"):
        return image.convert("I").point(_sixteen_to_eight(), "L")
    if mode in ("P", "L", "RGB") and image.has_transparency_data:
        # Palette and tRNS transparency become a real alpha channel.
        return image.convert("RGBA")
    if mode in _CONVERT:
        return image.convert(_CONVERT[mode])
    if mode in _KEPT:
        return image
    raise UnsupportedFormat(f"pixel format {mode} is not supported")
