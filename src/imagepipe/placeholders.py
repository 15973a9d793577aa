"""What a page shows before the image arrives: ThumbHash, BlurHash, colours, LQIP.

Pure functions over a small RGBA image (at most 100 pixels a side,
ThumbHash's bound), which the placeholder step reduces from a variant the
render already made. The two hashes are our own vectorised encoders of the
published algorithms: the PyPI encoders that do not pull Pillow
(`thumbhash` 0.1.2, `blurhash` 1.1.5) are pure-Python loops taking 20 ms
and 28 ms on a 100-pixel image against a 2 ms budget, and `thumbhash` 0.1.2
fails on every image with alpha (its alpha line unpacks a conditional
expression). The tests compare our output with theirs.

Transparent pixels do not count: colours are weighted by alpha, and the
BlurHash (which has no alpha) sees transparent pixels as the average
visible colour, as ThumbHash does for its colour channels.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageFilter

# ThumbHash encodes images of at most 100x100 pixels.
HASH_SIDE = 100
BLURHASH_COMPONENTS = (4, 3)
# The LQIP: a WebP of at most this many pixels a side, blurred, as a data URI
# of at most LQIP_MAX_CHARS characters.
LQIP_SIDE = 16
LQIP_MAX_CHARS = 1024
LQIP_QUALITY = 40
# Dominant colour: the most covered cell of an RGB grid of 2**DOMINANT_BITS
# levels per channel, reported as the mean colour of its pixels.
DOMINANT_BITS = 3
_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
_SRGB_TO_LINEAR = np.array(
    [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in np.arange(256) / 255]
)


@dataclass(frozen=True)
class Placeholder:
    thumbhash: str  # base64
    blurhash: str
    dominant_color: str  # "#rrggbb"
    average_color: str  # "#rrggbb"
    lqip: str  # "data:image/webp;base64,..."


def placeholder(small: Image.Image) -> Placeholder:
    """Every placeholder of an RGBA image of at most HASH_SIDE pixels a side."""
    px = np.asarray(small, dtype=np.uint8)
    alpha = px[..., 3] / 255
    linear = _SRGB_TO_LINEAR[px[..., :3]]
    average = _weighted_mean(linear, alpha)
    return Placeholder(
        thumbhash=base64.b64encode(thumbhash(px)).decode(),
        blurhash=blurhash(linear * alpha[..., None] + average * (1 - alpha[..., None])),
        dominant_color=dominant_color(px),
        average_color=_hex(_linear_to_srgb(average)),
        lqip=lqip(small),
    )


def _weighted_mean(values: NDArray[np.float64], weights: NDArray[np.float64]) -> NDArray[np.float64]:
    total = weights.sum()
    if total == 0:
        return np.zeros(values.shape[-1])
    return np.asarray((values * weights[..., None]).sum((0, 1)) / total)


# --- ThumbHash (Evan Wallace's reference algorithm) ----------------------------


def thumbhash(px: NDArray[np.uint8]) -> bytes:
    h, w = px.shape[:2]
    alpha = px[..., 3] / 255
    rgb = px[..., :3] / 255
    average = _weighted_mean(rgb, alpha)
    has_alpha = bool(alpha.sum() < w * h)
    # Transparent pixels take the average colour, so they do not bleed.
    r, g, b = np.moveaxis(average * (1 - alpha[..., None]) + rgb * alpha[..., None], -1, 0)
    limit = 5 if has_alpha else 7
    lx = max(1, _round(limit * w / max(w, h)))
    ly = max(1, _round(limit * h / max(w, h)))
    l_dc, l_ac, l_scale = _channel((r + g + b) / 3, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _channel((r + g) / 2 - b, 3, 3)
    q_dc, q_ac, q_scale = _channel(r - g, 3, 3)
    a_dc, a_ac, a_scale = _channel(alpha, 5, 5) if has_alpha else (1.0, [], 1.0)
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


def _channel(channel: NDArray[np.float64], nx: int, ny: int) -> tuple[float, list[float], float]:
    """DC, AC scaled to 0..1, and scale of one channel's low-frequency cosines."""
    h, w = channel.shape
    fx = np.cos(np.pi / w * np.outer(np.arange(nx), np.arange(w) + 0.5))
    fy = np.cos(np.pi / h * np.outer(np.arange(ny), np.arange(h) + 0.5))
    coefficients = fy @ channel @ fx.T / (w * h)
    # Only the triangle cx/nx + cy/ny < 1, row by row.
    kept = [coefficients[cy, cx] for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)]
    dc, ac = float(kept[0]), np.array(kept[1:])
    scale = float(np.abs(ac).max()) if ac.size else 0.0
    if scale:
        ac = 0.5 + 0.5 / scale * ac
    return dc, [float(f) for f in ac], scale


def _round(value: float) -> int:
    # JavaScript's Math.round, as the reference encoder rounds (halves up).
    return math.floor(value + 0.5)


# --- BlurHash (Wolt's algorithm) -------------------------------------------


def blurhash(linear: NDArray[np.float64]) -> str:
    """The BlurHash of linear-light RGB pixels."""
    h, w = linear.shape[:2]
    cx, cy = BLURHASH_COMPONENTS
    bx = np.cos(np.pi * np.outer(np.arange(cx), np.arange(w)) / w)
    by = np.cos(np.pi * np.outer(np.arange(cy), np.arange(h)) / h)
    # (3, cy, cx) by matrix products per channel: einsum is ten times slower here.
    per_channel = by @ np.moveaxis(linear, -1, 0) @ bx.T
    factors = np.moveaxis(per_channel, 0, -1).reshape(cx * cy, 3) / (w * h)
    factors[1:] *= 2
    dc, ac = factors[0], factors[1:]
    quantised_max = int(max(0, min(82, math.floor(float(np.abs(ac).max()) * 166 - 0.5))))
    maximum = (quantised_max + 1) / 166
    r, g, b = _linear_to_srgb(dc)
    digits = np.clip(np.floor(np.sign(ac) * np.sqrt(np.abs(ac / maximum)) * 9 + 9.5), 0, 18).astype(int)
    values = digits[:, 0] * 361 + digits[:, 1] * 19 + digits[:, 2]
    return (
        _base83((cx - 1) + (cy - 1) * 9, 1)
        + _base83(quantised_max, 1)
        + _base83(r << 16 | g << 8 | b, 4)
        + "".join(_base83(int(v), 2) for v in values)
    )


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[value // 83 ** (length - i) % 83] for i in range(1, length + 1))


def _linear_to_srgb(linear: NDArray[np.float64]) -> tuple[int, int, int]:
    v = np.clip(linear, 0, 1)
    srgb = np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)
    r, g, b = (int(c * 255 + 0.5) for c in srgb)
    return r, g, b


# --- colours and the LQIP --------------------------------------------------


def dominant_color(px: NDArray[np.uint8]) -> str:
    """The mean colour of the most covered cell of a coarse RGB grid, by alpha."""
    rgb = px[..., :3].reshape(-1, 3).astype(np.int64)
    alpha = px[..., 3].reshape(-1) / 255
    shift = 8 - DOMINANT_BITS
    cells = (
        (rgb[:, 0] >> shift) << 2 * DOMINANT_BITS | (rgb[:, 1] >> shift) << DOMINANT_BITS | rgb[:, 2] >> shift
    )
    coverage = np.bincount(cells, weights=alpha, minlength=1 << 3 * DOMINANT_BITS)
    best = cells == int(coverage.argmax())
    weights = alpha[best]
    if weights.sum() == 0:
        return "#000000"
    r, g, b = (int(c + 0.5) for c in (rgb[best] * weights[:, None]).sum(0) / weights.sum())
    return _hex((r, g, b))


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
