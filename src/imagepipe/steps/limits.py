"""Limits on what an upload may cost, checked before any pixel is decoded."""

from __future__ import annotations

from imagepipe.context import Context, Limits
from imagepipe.errors import TooComplex, TooManyPixels
from imagepipe.jpeg import SOS, markers
from imagepipe.png import chunk_types


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP"


def check_layout(data: bytes, pillow_format: str, limits: Limits) -> None:
    """Refuse a file whose layout alone would be costly to parse or decode.

    Runs before Pillow reads the header, since that parse is the first cost.
    """
    if pillow_format == "JPEG":
        segments = scans = 0
        for marker in markers(data):
            if marker == SOS:
                scans += 1
            elif not scans:
                segments += 1
            if scans > limits.max_jpeg_scans:
                raise TooComplex(
                    f"the JPEG has more than {limits.max_jpeg_scans} scans "
                    "(each one is a pass over the whole image)"
                )
            _check_header_segments(segments, limits)
    elif pillow_format == "PNG":
        for before, kind in enumerate(chunk_types(data)):
            if kind == b"IDAT":
                return
            _check_header_segments(before + 1, limits)


def _check_header_segments(segments: int, limits: Limits) -> None:
    if segments > limits.max_header_segments:
        raise TooComplex(f"more than {limits.max_header_segments} metadata segments before the pixel data")


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
