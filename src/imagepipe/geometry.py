"""Variant geometry: pure functions from a source size and a variant to a plan.

All sizes are in the oriented source's pixels (what a viewer sees).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from imagepipe.spec import Variant


@dataclass(frozen=True)
class Box:
    """A region of the source, in (possibly fractional) source pixels."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    def scaled(self, sx: float, sy: float) -> tuple[float, float, float, float]:
        return (self.left * sx, self.top * sy, self.right * sx, self.bottom * sy)


@dataclass(frozen=True)
class Plan:
    """How one variant is made: the source region it shows and its output size."""

    crop: Box
    width: int
    height: int

    @property
    def scale(self) -> float:
        """Output pixels per source pixel (the larger of the two axes)."""
        return max(self.width / self.crop.width, self.height / self.crop.height)

    @property
    def full_frame(self) -> bool:
        return self.crop.left == 0 and self.crop.top == 0


def plan_variant(src_w: int, src_h: int, variant: Variant) -> Plan:
    if src_w < 1 or src_h < 1:
        raise ValueError(f"source size must be positive, got {src_w}x{src_h}")
    if variant.method == "cover":
        return _cover(src_w, src_h, variant.width, variant.height)
    return _fit(src_w, src_h, variant.width, variant.height)


def _cover(src_w: int, src_h: int, w: int, h: int) -> Plan:
    # Centre-crop to the box's aspect ratio, then exactly the box.
    if src_w * h > w * src_h:
        crop_w = src_h * w / h
        left = (src_w - crop_w) / 2
        return Plan(Box(left, 0.0, left + crop_w, float(src_h)), w, h)
    crop_h = src_w * h / w
    top = (src_h - crop_h) / 2
    return Plan(Box(0.0, top, float(src_w), top + crop_h), w, h)


def _fit(src_w: int, src_h: int, w: int, h: int) -> Plan:
    # The largest size within the box that keeps the aspect ratio; never upscale.
    scale = min(w / src_w, h / src_h, 1.0)
    out_w = min(w, max(1, round(src_w * scale)))
    out_h = min(h, max(1, round(src_h * scale)))
    return Plan(Box(0.0, 0.0, float(src_w), float(src_h)), out_w, out_h)


def needed_scale(plans: Iterable[Plan]) -> float:
    """The smallest decode scale (≤ 1) that still has enough pixels for every plan."""
    return min(1.0, max(p.scale for p in plans))


def jpeg_draft_size(src_w: int, src_h: int, scale: float) -> tuple[int, int]:
    """The size to ask JPEG scaled decoding for so that it never goes below `scale`."""
    return (max(1, math.ceil(src_w * scale)), max(1, math.ceil(src_h * scale)))
