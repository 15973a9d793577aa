"""Pixel limits, checked from headers before any pixel is decoded."""

from __future__ import annotations

from imagepipe.context import Context, Limits
from imagepipe.errors import TooManyPixels


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def check_source_pixels(ctx: Context) -> None:
    """Step: refuse images whose header promises more pixels than we allow."""
    source = ctx.source_info()
    pixels = source.width * source.height
    if pixels > ctx.limits.max_pixels:
        raise TooManyPixels(
            f"the image is {source.width}x{source.height} ({megapixels(pixels)}); "
            f"the limit is {megapixels(ctx.limits.max_pixels)}"
        )


def check_decoded_pixels(size: tuple[int, int], limits: Limits) -> None:
    """Refuse a decode that would hold more pixels in memory than we allow."""
    pixels = size[0] * size[1]
    if pixels > limits.max_decoded_pixels:
        raise TooManyPixels(
            f"decoding needs {size[0]}x{size[1]} pixels ({megapixels(pixels)}) in memory; "
            f"the limit is {megapixels(limits.max_decoded_pixels)}"
        )
