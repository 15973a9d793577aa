"""Step: drop an alpha channel that is fully opaque (smaller files, same look)."""

from __future__ import annotations

from PIL import Image

from imagepipe.context import Context


def drop_opaque_alpha(ctx: Context) -> None:
    # Keyed by identity: variants sharing an image keep sharing one.
    done: dict[int, Image.Image] = {}
    for name, image in ctx.resized.items():
        if id(image) not in done:
            done[id(image)] = without_opaque_alpha(image)
        ctx.resized[name] = done[id(image)]


def without_opaque_alpha(image: Image.Image) -> Image.Image:
    if image.mode not in ("LA", "RGBA"):
        return image
    low, _ = image.getchannel("A").getextrema()
    return image.convert(image.mode[:-1]) if low == 255 else image
