"""Limits on what an upload may cost, checked before any pixel is decoded."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from imagepipe.context import SEGMENT_BYTES, Context, Limits
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
        _check_segments(_jpeg_scan_flags(data, limits), len(data), limits)
    elif pillow_format == "PNG":
        _check_segments((kind == b"IDAT" for kind in chunk_types(data)), len(data), limits)


def _jpeg_scan_flags(data: bytes, limits: Limits) -> Iterator[bool]:
    """Per JPEG segment: whether it is a scan; refuses too many scans."""
    scans = 0
    for marker, _ in markers(data):
        if marker == SOS:
            scans += 1
            if scans > limits.max_jpeg_scans:
                raise TooComplex(
                    f"the JPEG has more than {limits.max_jpeg_scans} scans "
                    "(each one is a pass over the whole image)"
                )
        yield marker == SOS


def _check_segments(pixel_data_flags: Iterable[bool], size: int, limits: Limits) -> None:
    """Count segments, given per segment whether it holds pixel data."""
    most = max(limits.max_segments, size // SEGMENT_BYTES)
    in_header = True
    for count, pixel_data in enumerate(pixel_data_flags, 1):
        in_header = in_header and not pixel_data
        if in_header and count > limits.max_header_segments:
            raise TooComplex(
                f"more than {limits.max_header_segments} metadata segments before the pixel data"
            )
        if count > most:
            raise TooComplex(f"more than {most} segments in a file of {size} bytes")


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
