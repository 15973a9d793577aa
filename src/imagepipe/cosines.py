"""Low-frequency cosine coefficients of small float images, in Pillow's C loops.

ThumbHash and BlurHash are the few lowest coefficients of a 2-D cosine
transform of a 100-pixel image: for each (cx, cy), the mean over the pixels
of value * cos(pi * cx * (x + offset) / width) * cos(pi * cy * (y + offset) / height).
The transform is separable, so it is computed in two passes of the same
shape, each one multiply (`ImageMath`) and one reduction of every row to
its mean (`resize` to width 1 with the BOX filter, whose float path sums in
double): first every channel, stacked once per horizontal frequency, times
an image of the matching cosine rows, reduced along x; then those row means,
laid out as the rows of a new image and stacked once per vertical
frequency, the same way along y. Pixels are mode "F" (32-bit float), so the
coefficients are good to about 1e-7, well inside the hashes' 4-bit steps.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageMath


@dataclass(frozen=True)
class Channel:
    """A mode "F" image and how many cosines of each axis it needs."""

    image: Image.Image
    nx: int
    ny: int


def cosine_means(channels: Sequence[Channel], offset: float) -> list[list[list[float]]]:
    """Per channel, the [cy][cx] means of value * cosine(cx, x) * cosine(cy, y),
    the cosines sampled at pixel + offset (0.5: ThumbHash; 0: BlurHash)."""
    width, height = channels[0].image.size
    blocks = [(c.image, cx) for c in channels for cx in range(c.nx)]
    rows = _reduced(_stacked([image for image, _ in blocks], width, height), [cx for _, cx in blocks], offset)
    # Row b of `means` is block b's `height` row means: the y pass.
    means = Image.frombytes("F", (height, len(blocks)), rows.tobytes())
    ny = max(c.ny for c in channels)
    out = array("f", _reduced(_stacked([means] * ny, height, len(blocks)), range(ny), offset).tobytes())
    result = []
    first = 0
    for c in channels:
        result.append([[out[cy * len(blocks) + first + cx] for cx in range(c.nx)] for cy in range(c.ny)])
        first += c.nx
    return result


def _stacked(images: Sequence[Image.Image], width: int, height: int) -> Image.Image:
    """The images, all width x height, one below the other."""
    tall = Image.new("F", (width, height * len(images)))
    for i, image in enumerate(images):
        tall.paste(image, (0, i * height))
    return tall


def _reduced(tall: Image.Image, frequencies: Sequence[int], offset: float) -> Image.Image:
    """The mean of every row of `tall` times the cosine of its block's
    frequency: `tall` is len(frequencies) blocks of equal height."""
    width, rows = tall.size
    basis = _basis(width, rows, tuple(frequencies), offset)
    product = ImageMath.lambda_eval(lambda a: a["tall"] * a["basis"], tall=tall, basis=basis)
    assert isinstance(product, Image.Image)
    return product.resize((1, rows), Image.Resampling.BOX)


@lru_cache(maxsize=32)
def _basis(width: int, rows: int, frequencies: tuple[int, ...], offset: float) -> Image.Image:
    """Block b's rows: cos(pi * frequencies[b] * (x + offset) / width).
    Cached (never modified): a run's images mostly share a few sizes."""
    cosines = array("f")
    for f in frequencies:
        cosines.extend(math.cos(math.pi * f * (x + offset) / width) for x in range(width))
    basis = Image.frombytes("F", (width, len(frequencies)), cosines.tobytes())
    # Each row stretched over its block's rows (exact multiples).
    return basis.resize((width, rows), Image.Resampling.NEAREST)


@lru_cache(maxsize=64)
def constant_means(nx: int, ny: int, width: int, height: int, offset: float) -> list[list[float]]:
    """What cosine_means gives for an image of ones, exactly, as [cy][cx]."""
    mx = [math.fsum(_exact_cosines(cx, width, offset)) / width for cx in range(nx)]
    my = [math.fsum(_exact_cosines(cy, height, offset)) / height for cy in range(ny)]
    return [[x * y for x in mx] for y in my]


def _exact_cosines(frequency: int, n: int, offset: float) -> list[float]:
    return [math.cos(math.pi * frequency * (i + offset) / n) for i in range(n)]
