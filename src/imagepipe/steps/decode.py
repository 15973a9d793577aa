"""Step: decode the pixels (the first frame of an animation)."""

from __future__ import annotations

from imagepipe.context import Context
from imagepipe.errors import CorruptImage, UnsupportedFormat
from imagepipe.jpeg import is_lossless
from imagepipe.steps.open import HEADER_ERRORS


def decode(ctx: Context) -> None:
    try:
        ctx.working_image().load()
    except HEADER_ERRORS as exc:
        if ctx.source_info().format == "jpeg" and is_lossless(ctx.data):
            # libjpeg-turbo before 3.0 has no lossless (SOF3) decoder.
            raise UnsupportedFormat("lossless JPEG (SOF3) cannot be decoded by this build's libjpeg") from exc
        raise CorruptImage(f"cannot decode the image: {exc}") from exc
