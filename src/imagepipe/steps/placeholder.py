"""Step: the placeholders, from the smallest whole-frame variant already made."""

from __future__ import annotations

from PIL import Image

from imagepipe.context import Context
from imagepipe.placeholders import HASH_SIDE, placeholder


def make_placeholder(ctx: Context) -> None:
    if not ctx.spec.placeholder:
        return
    ctx.placeholder = placeholder(hash_image(ctx))


def hash_image(ctx: Context) -> Image.Image:
    """An RGBA copy of at most HASH_SIDE pixels a side of the smallest variant
    that shows the whole frame (else of the smallest variant)."""
    source = ctx.source_info()
    size = (source.width, source.height)
    whole = [ctx.resized[name] for name, plan in ctx.plans.items() if plan.full_frame(*size)]
    image = min(whole or ctx.resized.values(), key=lambda i: i.width * i.height)
    scale = min(1.0, HASH_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if image.mode in ("LA", "RGBA"):
        # Premultiplied, so that colours of transparent pixels do not bleed.
        premultiplied = image.convert({"LA": "La", "RGBA": "RGBa"}[image.mode])
        return premultiplied.resize(size, Image.Resampling.BOX).convert(image.mode).convert("RGBA")
    return image.resize(size, Image.Resampling.BOX).convert("RGBA")
