"""The dominant colour of a small RGBA image, counted exactly in Pillow's C loops.

The colour is the alpha-weighted mean of the pixels of the most covered cell
of an RGB grid of 2**DOMINANT_BITS levels per channel (coverage: the sum of
alpha over the cell's pixels; the first cell wins a tie). Both sums are
integer histograms (`Image.histogram` with a mask), so the result is exact:
a cell index has 9 bits, so it is counted as its low 8 bits in two halves
(the red channel's top bit); weights by alpha are one histogram per bit of
alpha (weight 2**bit), or a single one when every pixel is opaque.
"""

from __future__ import annotations

from operator import mul

from PIL import Image, ImageChops

DOMINANT_BITS = 3
_SHIFT = 8 - DOMINANT_BITS
# The cell index's low 8 bits, per channel: (r & 3) << 6 | g << 3 | b of
# the quantised levels; and the red level's top bit (a 0/255 mask).
_LOW_BITS = (
    [(v >> _SHIFT & 3) << 2 * DOMINANT_BITS for v in range(256)],
    [(v >> _SHIFT) << DOMINANT_BITS for v in range(256)],
    [v >> _SHIFT for v in range(256)],
)
_TOP_BIT = [255 if v >> 7 else 0 for v in range(256)]
_ALPHA_BITS = [[255 if v >> bit & 1 else 0 for v in range(256)] for bit in range(8)]
Weights = list[tuple[int, Image.Image | None]]  # (weight, mask of the pixels that carry it)


def dominant_color(image: Image.Image, opaque: bool) -> tuple[int, int, int]:
    """The dominant colour of an RGBA image (black when nothing is visible);
    `opaque`: every alpha is 255 (one histogram per sum instead of eight)."""
    r, g, b, a = image.split()
    weights: Weights = [(1, None)] if opaque else [(1 << bit, a.point(_ALPHA_BITS[bit])) for bit in range(8)]
    low = ImageChops.add(ImageChops.add(r.point(_LOW_BITS[0]), g.point(_LOW_BITS[1])), b.point(_LOW_BITS[2]))
    top = r.point(_TOP_BIT)
    halves = (ImageChops.invert(top), top)
    coverage = [c for half in halves for c in _weighted_histogram(low, weights, half)]
    best = max(range(len(coverage)), key=coverage.__getitem__)
    cell = ImageChops.multiply(
        low.point([255 if v == best & 255 else 0 for v in range(256)]), halves[best >> 8]
    )
    total, sums = 0, [0, 0, 0]
    for weight, pixels in weights:
        counts = image.histogram(_both(pixels, cell))
        total += weight * sum(counts[:256])
        for k in range(3):
            sums[k] += weight * sum(map(mul, range(256), counts[k * 256 : (k + 1) * 256]))
    if total == 0:
        return (0, 0, 0)
    # Rounded half up, in integers: floor(sum / total + 1/2).
    red, green, blue = ((2 * s + total) // (2 * total) for s in sums)
    return red, green, blue


def _weighted_histogram(image: Image.Image, weights: Weights, mask: Image.Image) -> list[int]:
    """The histogram of a mode L image over the pixels of `mask`, each pixel
    counted with its weight."""
    out = [0] * 256
    for weight, pixels in weights:
        out = [o + weight * n for o, n in zip(out, image.histogram(_both(pixels, mask)), strict=True)]
    return out


def _both(mask: Image.Image | None, other: Image.Image) -> Image.Image:
    """The pixels of both 0/255 masks (None: every pixel)."""
    return other if mask is None else ImageChops.multiply(mask, other)
