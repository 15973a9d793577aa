"""Step: turn the pixels the way the EXIF orientation says a viewer sees them."""

from __future__ import annotations

from PIL import Image

from imagepipe.context import Context

TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def orient(ctx: Context) -> None:
    method = TRANSPOSE.get(ctx.orientation)
    if method is not None:
        ctx.image = ctx.working_image().transpose(method)
