"""Step: resample every variant, each from the cheapest image that is good enough.

The largest variant is made from the decoded source; a smaller one may be
made from an already resized full-frame variant when that still has at least
DERIVE_MARGIN times the pixels it needs, which keeps it indistinguishable
from resizing the source (SSIM ≥ 0.97) at a fraction of the cost.
"""

from __future__ import annotations

from PIL import Image

from imagepipe.context import Context
from imagepipe.geometry import Plan

DERIVE_MARGIN = 1.5
# Beyond this factor a resize first box-reduces by a whole factor. LANCZOS
# alone precomputes six weights per source pixel along each axis it shrinks:
# a 78 KB PNG of 1x20,000,000 pixels took 7 s and 1 GB to fit in 1080 rows.
# Pillow documents 3 as indistinguishable from the fair resize; no corpus
# output changes, since no resize there shrinks that much.
REDUCING_GAP = 3.0
# Alpha modes are resized with colours premultiplied, so that the colours of
# transparent pixels do not bleed into their neighbours.
PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}


def resize_variants(ctx: Context) -> None:
    source = ctx.source_info()
    decoded = ctx.working_image()
    bases: list[tuple[Plan, Image.Image]] = []
    # Variants with the same plan share one image, so later steps can tell
    # equal pixels by identity (encode once per distinct output).
    made: dict[Plan, Image.Image] = {}
    order = sorted(ctx.spec.variants, key=lambda v: ctx.plans[v.name].scale, reverse=True)
    for variant in order:
        plan = ctx.plans[variant.name]
        if plan in made:
            ctx.resized[variant.name] = made[plan]
            continue
        base = _cheapest_base(plan, bases)
        if base is None:
            # A scaled JPEG decode is ceil(size / s) pixels: its size ratio to
            # the source is not the scale, and using it shifts the picture.
            base = decoded
            box = plan.crop.scaled(ctx.decode_scale, ctx.decode_scale)
        else:
            # A full-frame variant covers exactly the source, edge to edge.
            box = plan.crop.scaled(base.width / source.width, base.height / source.height)
        resized = resample(base, (plan.width, plan.height), box)
        # Only a reduction of the decoded image is a cheaper base: an upscaled
        # one (a cover thumbnail of a small square source) holds no more
        # detail than the decoded image and would blur what is made from it.
        if plan.full_frame(source.width, source.height) and plan.scale < ctx.decode_scale:
            bases.append((plan, resized))
        made[plan] = ctx.resized[variant.name] = resized


def _cheapest_base(plan: Plan, bases: list[tuple[Plan, Image.Image]]) -> Image.Image | None:
    good = [(p.scale, image) for p, image in bases if p.scale >= plan.scale * DERIVE_MARGIN]
    return min(good, key=lambda item: item[0])[1] if good else None


def resample(
    image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]
) -> Image.Image:
    if size == image.size and box == (0, 0, image.width, image.height):
        # Nothing after this step changes pixels, so the image serves as is.
        return image
    if image.mode in PREMULTIPLIED:
        # Pillow resizes these premultiplied too, but then ignores reducing_gap.
        premultiplied = image.convert(PREMULTIPLIED[image.mode])
        return _lanczos(premultiplied, size, box).convert(image.mode)
    return _lanczos(image, size, box)


def _lanczos(
    image: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float]
) -> Image.Image:
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=REDUCING_GAP)
