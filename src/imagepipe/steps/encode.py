"""Step: encode every variant in its format, carrying no metadata at all.

Variants with the same pixels (one image object, see resize_variants) and the
same encoding are encoded once and share the bytes: a source within 800x600
gives `medium` and `large` one output."""

from __future__ import annotations

import io

from PIL import Image

from imagepipe.context import Context, RenderedVariant
from imagepipe.spec import Encoding


def encode_variants(ctx: Context) -> None:
    encoded: dict[tuple[int, Encoding], bytes] = {}
    ctx.outputs = []
    for v in ctx.spec.variants:
        image = ctx.resized[v.name]
        key = (id(image), v.encoding)
        if key not in encoded:
            encoded[key] = encode(image, v.encoding)
        ctx.outputs.append(RenderedVariant(v, *image.size, encoded[key], ctx.plans[v.name].crop))


def encode(image: Image.Image, encoding: Encoding) -> bytes:
    # A fresh info dict: no EXIF (GPS), XMP, comments or profile reach the output.
    image.info = {}
    buffer = io.BytesIO()
    fmt = encoding.format
    if fmt == "jpeg":
        _flatten(image).save(buffer, "JPEG", quality=encoding.quality, optimize=True, progressive=True)
    elif fmt == "png":
        image.save(buffer, "PNG", compress_level=encoding.effort)
    elif fmt == "webp":
        _rgb(image).save(
            buffer, "WEBP", quality=encoding.quality, method=encoding.effort, lossless=encoding.lossless
        )
    else:
        _rgb(image).save(buffer, "AVIF", quality=encoding.quality, speed=10 - encoding.effort)
    return buffer.getvalue()


def _rgb(image: Image.Image) -> Image.Image:
    # convert() to the same mode is a full copy: skip it for RGB and RGBA.
    mode = {"L": "RGB", "LA": "RGBA"}.get(image.mode, image.mode)
    return image if mode == image.mode else image.convert(mode)


def _flatten(image: Image.Image) -> Image.Image:
    # JPEG has no alpha: composite onto white, as a page background would show.
    if image.mode not in ("LA", "RGBA"):
        return image
    background = Image.new(image.mode[:-1], image.size, 255 if image.mode == "LA" else (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background
