"""What a page shows before the image arrives: ThumbHash, BlurHash, colours, LQIP.

Pure functions over a small RGBA image (at most 100 pixels a side,
ThumbHash's bound), which the placeholder step reduces from a variant the
render already made.

The two hashes are our own encoders of the published algorithms, with the
per-pixel work in Pillow's C loops (`imagepipe.cosines`: mode "F" images,
`ImageMath` products, BOX reductions that sum in double) and only the few
dozen coefficients in Python. Why not the alternatives:
- the PyPI encoders that do not pull Pillow (`thumbhash` 0.1.2, `blurhash`
  1.1.5) are pure-Python loops, 20 ms and 28 ms on a 100-pixel image against
  a 2 ms budget, and `thumbhash` 0.1.2 fails on every image with alpha (its
  alpha line unpacks a conditional expression). The tests compare our
  output with theirs.
- numpy would do the same sums as matrix products, but importing it is
  0.1 s of CPU, more than the whole start-up of a libvips script: the
  default pipeline (`imagepipe process` of a few photos) would pay it in
  every process for a millisecond of arithmetic. Pillow is loaded anyway.

Transparent pixels do not count: colours are weighted by alpha, and the
BlurHash (which has no alpha) sees transparent pixels as the average
visible colour, as ThumbHash does for its colour channels. Both hashes
composite that way by linearity: the transform of alpha * colour plus the
average colour times the transform of (1 - alpha).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFilter, ImageMath

from imagepipe.cosines import Channel, constant_means, cosine_means
from imagepipe.dominant import dominant_color

# ThumbHash encodes images of at most 100x100 pixels.
HASH_SIDE = 100
BLURHASH_COMPONENTS = (4, 3)
# The LQIP: a WebP of at most this many pixels a side, blurred, as a data URI
# of at most LQIP_MAX_CHARS characters.
LQIP_SIDE = 16
LQIP_MAX_CHARS = 1024
LQIP_QUALITY = 40
_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_UNIT = [v / 255 for v in range(256)]
_SRGB_TO_LINEAR = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in _UNIT]
Grid = list[list[float]]  # [cy][cx]
Expression = Callable[[dict[str, Any]], Any]  # of ImageMath operands


@dataclass(frozen=True)
class Placeholder:
    thumbhash: str  # base64
    blurhash: str
    dominant_color: str  # "#rrggbb"
    average_color: str  # "#rrggbb"
    lqip: str  # "data:image/webp;base64,..."


@dataclass(frozen=True)
class Pixels:
    """A small RGBA image as Pillow bands."""

    image: Image.Image  # RGBA
    rgb: tuple[Image.Image, Image.Image, Image.Image]  # mode L
    alpha: Image.Image | None  # mode F, 0..1; None when every pixel is opaque

    @classmethod
    def of(cls, image: Image.Image) -> Pixels:
        r, g, b, a = image.split()
        opaque = a.getextrema()[0] == 255
        return cls(image, (r, g, b), None if opaque else a.point(_UNIT, "F"))


def placeholder(small: Image.Image) -> Placeholder:
    """Every placeholder of an RGBA image of at most HASH_SIDE pixels a side."""
    pixels = Pixels.of(small)
    factors, average = blurhash_factors(pixels)
    return Placeholder(
        thumbhash=base64.b64encode(thumbhash(pixels)).decode(),
        blurhash=blurhash(factors),
        dominant_color=_hex(dominant_color(small, opaque=pixels.alpha is None)),
        average_color=_hex(_linear_to_srgb(average)),
        lqip=lqip(small),
    )


def _premultiplied(pixels: Pixels, colour: Expression, **bands: Image.Image) -> Image.Image:
    """`colour` of the float bands, times alpha if there is one."""
    alpha = pixels.alpha
    if alpha is None:
        image = ImageMath.lambda_eval(colour, **bands)
    else:
        image = ImageMath.lambda_eval(lambda a: colour(a) * a["alpha"], alpha=alpha, **bands)
    assert isinstance(image, Image.Image)
    return image


def _composited(colours: list[Grid], alpha: Grid | None, frame: tuple[int, int, float]) -> None:
    """Turn transforms of alpha * colour into those of the colour composited
    on its alpha-weighted mean, in place: + mean * transform(1 - alpha).
    `frame`: width, height and cosine offset of the transforms."""
    if alpha is None:
        return
    ones = constant_means(len(alpha[0]), len(alpha), *frame)
    total = alpha[0][0]
    for grid in colours:
        mean = grid[0][0] / total if total else 0.0
        for cy, row in enumerate(grid):
            for cx in range(len(row)):
                row[cx] += mean * (ones[cy][cx] - alpha[cy][cx])


# --- ThumbHash (Evan Wallace's reference algorithm) ----------------------------


def thumbhash(pixels: Pixels) -> bytes:
    w, h = pixels.image.size
    r, g, b = (band.point(_UNIT, "F") for band in pixels.rgb)
    rgb = {"r": r, "g": g, "b": b}
    has_alpha = pixels.alpha is not None
    limit = 5 if has_alpha else 7
    lx = max(1, _round(limit * w / max(w, h)))
    ly = max(1, _round(limit * h / max(w, h)))
    channels = [
        Channel(
            _premultiplied(pixels, lambda a: (a["r"] + a["g"] + a["b"]) / 3, **rgb), max(3, lx), max(3, ly)
        ),
        Channel(_premultiplied(pixels, lambda a: (a["r"] + a["g"]) / 2 - a["b"], **rgb), 3, 3),
        Channel(_premultiplied(pixels, lambda a: a["r"] - a["g"], **rgb), 3, 3),
    ]
    if pixels.alpha is not None:
        channels.append(Channel(pixels.alpha, 5, 5))
    grids = cosine_means(channels, 0.5)
    alpha = grids[3] if has_alpha else None
    _composited(grids[:3], alpha, (w, h, 0.5))
    (l_dc, l_ac, l_scale), (p_dc, p_ac, p_scale), (q_dc, q_ac, q_scale) = (_quantised(g) for g in grids[:3])
    a_dc, a_ac, a_scale = _quantised(alpha) if alpha else (1.0, [], 1.0)
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | _round(31.5 + 31.5 * p_dc) << 6
        | _round(31.5 + 31.5 * q_dc) << 12
        | _round(31 * l_scale) << 18
        | has_alpha << 23
    )
    header16 = (ly if landscape else lx) | _round(63 * p_scale) << 3 | _round(63 * q_scale) << 9
    header16 |= landscape << 15
    out = [header24 & 255, header24 >> 8 & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        out.append(_round(15 * a_dc) | _round(15 * a_scale) << 4)
    nibbles = [_round(15 * f) for f in (*l_ac, *p_ac, *q_ac, *a_ac)]
    nibbles += [0] * (len(nibbles) % 2)
    out += [low | high << 4 for low, high in zip(nibbles[::2], nibbles[1::2], strict=True)]
    return bytes(out)


def _quantised(grid: Grid) -> tuple[float, list[float], float]:
    """DC, AC scaled to 0..1, and scale of one channel's coefficients: only
    the triangle cx/nx + cy/ny < 1, row by row."""
    ny, nx = len(grid), len(grid[0])
    kept = [grid[cy][cx] for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)]
    dc, ac = kept[0], kept[1:]
    scale = max(map(abs, ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def _round(value: float) -> int:
    # JavaScript's Math.round, as the reference encoder rounds (halves up).
    return math.floor(value + 0.5)


# --- BlurHash (Wolt's algorithm) -------------------------------------------


def blurhash_factors(pixels: Pixels) -> tuple[list[tuple[float, float, float]], tuple[float, float, float]]:
    """BlurHash's factors of the linear-light pixels, transparent ones as the
    average visible colour, and that average (linear, weighted by alpha)."""
    w, h = pixels.image.size
    cx, cy = BLURHASH_COMPONENTS
    linear = [
        _premultiplied(pixels, lambda a: a["v"], v=band.point(_SRGB_TO_LINEAR, "F")) for band in pixels.rgb
    ]
    channels = [Channel(image, cx, cy) for image in linear]
    if pixels.alpha is not None:
        channels.append(Channel(pixels.alpha, cx, cy))
    grids = cosine_means(channels, 0.0)
    alpha = grids[3] if pixels.alpha is not None else None
    total = alpha[0][0] if alpha else 1.0
    average = tuple(grid[0][0] / total if total else 0.0 for grid in grids[:3])
    _composited(grids[:3], alpha, (w, h, 0.0))
    # [cy][cx] row by row, the reference's order of components.
    red, green, blue = ([f for row in grid for f in row] for grid in grids[:3])
    factors = list(zip(red, green, blue, strict=True))
    factors[1:] = [(2 * red, 2 * green, 2 * blue) for red, green, blue in factors[1:]]
    return factors, (average[0], average[1], average[2])


def blurhash(factors: list[tuple[float, float, float]]) -> str:
    cx, cy = BLURHASH_COMPONENTS
    dc, ac = factors[0], factors[1:]
    quantised_max = int(max(0, min(82, math.floor(max(abs(f) for c in ac for f in c) * 166 - 0.5))))
    maximum = (quantised_max + 1) / 166
    r, g, b = _linear_to_srgb(dc)
    values = [
        _ac_digit(red, maximum) * 361 + _ac_digit(green, maximum) * 19 + _ac_digit(blue, maximum)
        for red, green, blue in ac
    ]
    return (
        _base83((cx - 1) + (cy - 1) * 9, 1)
        + _base83(quantised_max, 1)
        + _base83(r << 16 | g << 8 | b, 4)
        + "".join(_base83(v, 2) for v in values)
    )


def _ac_digit(value: float, maximum: float) -> int:
    return int(
        max(0.0, min(18.0, math.floor(math.copysign(math.sqrt(abs(value / maximum)), value) * 9 + 9.5)))
    )


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[value // 83 ** (length - i) % 83] for i in range(1, length + 1))


def _linear_to_srgb(linear: tuple[float, float, float]) -> tuple[int, int, int]:
    def channel(v: float) -> int:
        v = max(0.0, min(1.0, v))
        srgb = v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
        return int(srgb * 255 + 0.5)

    r, g, b = (channel(v) for v in linear)
    return r, g, b


# --- the average colour's text and the LQIP ------------------------------------


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def lqip(small: Image.Image) -> str:
    """A blurred WebP of at most LQIP_SIDE pixels a side as a data URI; alpha kept."""
    side = LQIP_SIDE
    while True:
        tiny = small.copy()
        tiny.thumbnail((side, side), Image.Resampling.BOX)
        tiny = tiny.filter(ImageFilter.GaussianBlur(1))
        if tiny.getchannel("A").getextrema()[0] == 255:
            tiny = tiny.convert("RGB")
        buffer = io.BytesIO()
        tiny.save(buffer, "WEBP", quality=LQIP_QUALITY, method=4)
        uri = "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode()
        if len(uri) <= LQIP_MAX_CHARS or side <= 4:
            return uri
        side //= 2
