"""Mean structural similarity (SSIM) of two greyscale images, in a few lines of numpy.

Wang et al. (2004) as scikit-image computes it by default: a 7x7 box window,
sample covariance, K1 = 0.01, K2 = 0.03, data range 255, and the mean over
the windows that fit inside the image (no padding). Images are 2-D arrays of
values in 0..255 (a Pillow "L" image through `numpy.asarray`, or `luma`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

WINDOW = 7
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def _box_mean(a: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Mean over every n x n window that fits inside `a` (separable sums of shifted views)."""
    w = a.shape[1] - n + 1
    rows = a[:, :w].copy()
    for i in range(1, n):
        rows += a[:, i : i + w]
    h = a.shape[0] - n + 1
    out = rows[:h].copy()
    for i in range(1, n):
        out += rows[i : i + h]
    return out / (n * n)


def luma(pixels: ArrayLike) -> NDArray[np.float64]:
    """ITU-R BT.601 luma of an RGB(A) array (H, W, 3|4); a 2-D array passes through."""
    a = np.asarray(pixels, dtype=np.float64)
    if a.ndim == 2:
        return a
    return a[..., 0] * 0.299 + a[..., 1] * 0.587 + a[..., 2] * 0.114


def ssim(a: ArrayLike, b: ArrayLike) -> float:
    """Mean SSIM of two greyscale images of one shape, each side at least 7 pixels."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"need two 2-D arrays of one shape, got {x.shape} and {y.shape}")
    n = WINDOW
    if min(x.shape) < n:
        raise ValueError(f"images smaller than the {n}-pixel window: {x.shape}")
    mx, my = _box_mean(x, n), _box_mean(y, n)
    # Sample (not population) variances, as scikit-image does by default.
    k = n * n / (n * n - 1)
    vx = (_box_mean(x * x, n) - mx * mx) * k
    vy = (_box_mean(y * y, n) - my * my) * k
    cov = (_box_mean(x * y, n) - mx * my) * k
    num = (2 * mx * my + _C1) * (2 * cov + _C2)
    den = (mx * mx + my * my + _C1) * (vx + vy + _C2)
    return float(np.mean(num / den))
