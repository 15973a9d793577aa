"""Helpers of the core tests: render files, read outputs back, build references."""

from __future__ import annotations

import io
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from imagepipe.geometry import plan_variant
from imagepipe.processing import Rendered, render
from imagepipe.spec import DEFAULT_SPEC, Encoding, VariantList

# The product's variants, encoded losslessly (and fast): what comes out is
# exactly what the resize made, so comparisons measure the pipeline, not
# the WebP encoder.
LOSSLESS_SPEC = VariantList(
    tuple(replace(v, encoding=Encoding(lossless=True, quality=1, effort=0)) for v in DEFAULT_SPEC.variants)
)


def render_file(path: Path, spec: VariantList = DEFAULT_SPEC) -> Rendered:
    """Render a file once per test session (several tests read the same outputs)."""
    return _render_file(path, spec)


@lru_cache(maxsize=128)
def _render_file(path: Path, spec: VariantList) -> Rendered:
    return render(path.read_bytes(), spec)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def outputs(rendered: Rendered) -> dict[str, Image.Image]:
    """Each variant's output, decoded; the format is checked to be WebP on the way."""
    images = {}
    for variant in rendered.variants:
        image = decode(variant.data)
        assert image.format == "WEBP", variant.variant.name
        assert image.size == (variant.width, variant.height), variant.variant.name
        images[variant.variant.name] = image
    return images


def output_greys(path: Path, spec: VariantList = DEFAULT_SPEC) -> dict[str, NDArray[np.uint8]]:
    """Each variant of a rendered file as luma on a white page (cached: sets compare to one)."""
    return _output_greys(path, spec)


@lru_cache(maxsize=64)
def _output_greys(path: Path, spec: VariantList) -> dict[str, NDArray[np.uint8]]:
    return {name: grey(image) for name, image in outputs(render_file(path, spec)).items()}


def flatten(image: Image.Image) -> Image.Image:
    """RGB as shown on a white page: transparent pixels' hidden colours do not count."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        page = Image.new("RGBA", image.size, (255, 255, 255, 255))
        page.alpha_composite(image.convert("RGBA"))
        return page.convert("RGB")
    return image.convert("RGB")


def grey(image: Image.Image) -> NDArray[np.uint8]:
    """Luma (ITU-R 601, as Pillow's "L") of the image as shown on a white page."""
    return np.asarray(flatten(image).convert("L"))


def rgb(image: Image.Image) -> NDArray[np.float64]:
    return np.asarray(flatten(image), dtype=np.float64)


def encoded(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def reference_variants(
    path: Path, spec: VariantList = DEFAULT_SPEC, mode: str = "RGB"
) -> dict[str, Image.Image]:
    """Plain Pillow, no shortcuts: full decode, EXIF transpose, RGB (or `mode`),
    LANCZOS of each variant's region straight from the full-resolution source."""
    with Image.open(path) as opened:
        source = ImageOps.exif_transpose(opened).convert(mode)
    refs = {}
    for variant in spec.variants:
        plan = plan_variant(source.width, source.height, variant)
        box = (plan.crop.left, plan.crop.top, plan.crop.right, plan.crop.bottom)
        size = (plan.width, plan.height)
        refs[variant.name] = source.resize(size, Image.Resampling.LANCZOS, box=box)
    return refs


def riff_chunks(data: bytes) -> list[str]:
    """The top-level chunk ids of a WebP file (RIFF container)."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP", "not a WebP file"
    assert int.from_bytes(data[4:8], "little") == len(data) - 8, "RIFF size mismatch"
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        chunks.append(data[pos : pos + 4].decode("ascii"))
        pos += 8 + size + (size & 1)
    assert pos == len(data), "trailing bytes after the last chunk"
    return chunks
