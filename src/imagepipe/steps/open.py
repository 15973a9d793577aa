"""Step: identify the upload and read its header, without decoding pixels."""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from typing import IO

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from imagepipe.context import Context, SourceInfo
from imagepipe.errors import CorruptImage, EmptyUpload, UnsupportedFormat
from imagepipe.jpeg import frame
from imagepipe.sniff import ACCEPTED, SNIFF_BYTES, sniff_mime
from imagepipe.steps.limits import check_layout

# We enforce our own pixel limits from the header (steps.limits) before any
# decode, so Pillow's fixed bomb threshold would only refuse images we accept.
Image.MAX_IMAGE_PIXELS = None

EXIF_ORIENTATION = 0x0112
# Failures Pillow raises on malformed headers, beyond OSError.
HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error)
# The plugin for each format we accept, called directly: Image.open would
# replace the plugin's reason with "cannot identify image file <BytesIO...>".
OPENERS: dict[str, Callable[[IO[bytes]], ImageFile.ImageFile]] = {
    "JPEG": JpegImagePlugin.jpeg_factory,
    "PNG": PngImagePlugin.PngImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,
}


def open_source(ctx: Context) -> None:
    if not ctx.data:
        raise EmptyUpload("the upload is empty")
    mime = sniff_mime(ctx.data[:SNIFF_BYTES])
    pillow_format = ACCEPTED.get(mime)
    if pillow_format is None:
        raise UnsupportedFormat(f"expected a JPEG, PNG or WebP image, got {mime}")
    check_layout(ctx.data, pillow_format, ctx.limits)
    if pillow_format == "JPEG":
        _check_precision(ctx.data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = OPENERS[pillow_format](io.BytesIO(ctx.data))
    except HEADER_ERRORS as exc:
        raise CorruptImage(f"cannot read the {pillow_format} header: {exc}") from exc
    ctx.image = image
    ctx.orientation = _orientation(image)
    ctx.icc_profile = image.info.get("icc_profile") or None
    width, height = image.size
    if ctx.orientation in (5, 6, 7, 8):
        width, height = height, width
    ctx.source = SourceInfo(
        format=pillow_format.lower(),
        width=width,
        height=height,
        frames=int(getattr(image, "n_frames", 1)),
        bytes=len(ctx.data),
    )


def _check_precision(data: bytes) -> None:
    header = frame(data)
    if header is not None and header.precision != 8:
        # Valid JPEG (medical and raw-converter output), but Pillow decodes 8 bits only.
        raise UnsupportedFormat(f"a {header.precision}-bit JPEG; only 8-bit JPEGs can be read")


def _orientation(image: Image.Image) -> int:
    if image.format == "PNG" and "exif" not in image.info:
        # PngImageFile.getexif() decodes the whole image to look for an eXIf
        # chunk after the pixel data: never do that before the limits are
        # checked (a 65536x65536 PNG would allocate 4 GB here). An eXIf chunk
        # before IDAT is in `info` already.
        return 1
    # A malformed EXIF block must not fail an otherwise good image.
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except HEADER_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
