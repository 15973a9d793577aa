"""Step: decode JPEGs at the smallest DCT scale that still covers every variant,
and bound the pixels that will really be decoded."""

from __future__ import annotations

from imagepipe.context import Context
from imagepipe.geometry import jpeg_draft_size, needed_scale
from imagepipe.jpeg import is_lossless
from imagepipe.steps.limits import check_decoded_pixels


def shrink_on_load(ctx: Context) -> None:
    image = ctx.working_image()
    # Lossless JPEGs have no DCT to scale: they decode at full size.
    if ctx.source_info().format == "jpeg" and not is_lossless(ctx.data):
        scale = needed_scale(ctx.plans.values())
        if scale < 1.0:
            # The scale is uniform, so the stored (unrotated) size serves as is.
            stored_width = image.width
            drafted = image.draft(None, jpeg_draft_size(image.width, image.height, scale))
            if drafted is not None:
                # The source's extent in decoded pixels: (0, 0, w / s, h / s).
                ctx.decode_scale = drafted[1][2] / stored_width
    check_decoded_pixels(image.size, ctx.limits)
