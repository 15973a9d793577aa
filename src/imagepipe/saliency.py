"""Where the subject is: pure functions over a small copy of the image.

A cover crop spans the whole source along one axis, so placing it is a
choice of one offset along the other: each gravity scores every offset of
the crop's window and the best one wins, ties going to the most central.

- `attention` (libvips' idea, with smartcrop.js's weights): edges
  (Laplacian of luminance), skin tones and the saturation of bright pixels,
  summed per pixel, transparent pixels scoring nothing.
- `entropy`: the Shannon entropy of the window's grey-level histogram.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image

# Saliency is computed on a copy at most this many pixels a side.
SALIENCY_SIDE = 128
EDGE_WEIGHT, SKIN_WEIGHT, SATURATION_WEIGHT = 0.2, 1.8, 0.1
ENTROPY_BINS = 32


def small_copy(image: Image.Image) -> Image.Image:
    """An RGBA copy of at most SALIENCY_SIDE pixels a side."""
    factor = max(1, max(image.size) // SALIENCY_SIDE)
    reduced = image.reduce(factor) if factor > 1 else image
    scale = min(1.0, SALIENCY_SIDE / max(reduced.size))
    size = (max(1, round(reduced.width * scale)), max(1, round(reduced.height * scale)))
    return reduced.resize(size, Image.Resampling.BOX).convert("RGBA")


def attention_map(px: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Per pixel of an RGBA array: how much it draws the eye."""
    rgb = px[..., :3].astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    padded = np.pad(luminance, 1, mode="edge")
    laplacian = 4 * luminance - padded[:-2, 1:-1] - padded[2:, 1:-1] - padded[1:-1, :-2] - padded[1:-1, 2:]
    edges = np.minimum(np.abs(laplacian) / 255, 1.0)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    # Kovac et al.'s daylight skin rule.
    skin = (r > 95) & (g > 40) & (b > 20) & (r > g) & (r > b) & (np.abs(r - g) > 15) & (high - low > 15)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1), 0.0) * (luminance > 0.2 * 255)
    score = EDGE_WEIGHT * edges + SKIN_WEIGHT * skin + SATURATION_WEIGHT * saturation
    return np.asarray(score * (px[..., 3] / 255))


def best_start(scores: NDArray[np.float64]) -> float:
    """Where the best score is: of tied runs the one nearest the middle, and
    the middle of that run (so that a subject does not sit at the crop's edge)."""
    best = np.flatnonzero(scores >= scores.max() - 1e-9)
    middle = (len(scores) - 1) / 2
    nearest = int(np.argmin(np.abs(best - middle)))
    first = last = nearest
    while first > 0 and best[first - 1] == best[first] - 1:
        first -= 1
    while last < len(best) - 1 and best[last + 1] == best[last] + 1:
        last += 1
    run_start, run_end = int(best[first]), int(best[last])
    if run_start <= middle <= run_end:
        return middle
    return (run_start + run_end) / 2


def window_sums(profile: NDArray[np.float64], length: int) -> NDArray[np.float64]:
    """Sums of every window of `length` consecutive values."""
    cumulative = np.concatenate(([0.0], np.cumsum(profile)))
    return np.asarray(cumulative[length:] - cumulative[:-length])


def window_entropies(grey: NDArray[np.uint8], length: int) -> NDArray[np.float64]:
    """Entropy of every window of `length` columns (all rows) of a grey array."""
    h, w = grey.shape
    bins = grey.astype(np.int64) * ENTROPY_BINS // 256
    per_column = np.zeros((w, ENTROPY_BINS))
    np.add.at(per_column, (np.broadcast_to(np.arange(w), (h, w)), bins), 1)
    cumulative = np.concatenate((np.zeros((1, ENTROPY_BINS)), np.cumsum(per_column, axis=0)))
    counts = cumulative[length:] - cumulative[:-length]
    p = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(-np.nansum(p * np.log2(p), axis=1))


def subject_centre(px: NDArray[np.uint8], gravity: str, fraction: float, horizontal: bool) -> float:
    """Where (0..1 along the free axis) a window covering `fraction` of it is best centred."""
    if not horizontal:
        px = px.transpose(1, 0, 2)
    w = px.shape[1]
    length = min(w, max(1, round(fraction * w)))
    if gravity == "attention":
        scores = window_sums(attention_map(px).sum(axis=0), length)
    else:
        grey = (0.299 * px[..., 0] + 0.587 * px[..., 1] + 0.114 * px[..., 2]).astype(np.uint8)
        scores = window_entropies(grey, length)
    return float((best_start(scores) + length / 2) / w)
