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

    def full_frame(self, src_w: int, src_h: int) -> bool:
        """Whether it shows the whole source (a moved cover crop may start at 0, 0)."""
        return self.crop == Box(0.0, 0.0, float(src_w), float(src_h))


@dataclass(frozen=True)
class Focus:
    """A point of the oriented source, each coordinate 0..1 of its side."""

    x: float
    y: float


CENTRE = Focus(0.5, 0.5)


def parse_focus(text: str) -> Focus:
    """`x,y`, two numbers from 0 to 1; ValueError saying what is wrong."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"expected two numbers x,y from 0 to 1, got {text[:40]!r}")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected two numbers x,y from 0 to 1, got {text[:40]!r}") from None
    if not (0 <= x <= 1 and 0 <= y <= 1):  # also refuses nan
        raise ValueError(f"x and y must be from 0 to 1, got {text[:40]!r}")
    return Focus(x, y)


def plan_variant(src_w: int, src_h: int, variant: Variant, focus: Focus = CENTRE) -> Plan:
    if src_w < 1 or src_h < 1:
        raise ValueError(f"source size must be positive, got {src_w}x{src_h}")
    if variant.method == "cover":
        return _cover(src_w, src_h, variant.width, variant.height, focus)
    return _fit(src_w, src_h, variant.width, variant.height)


def _cover(src_w: int, src_h: int, w: int, h: int, focus: Focus) -> Plan:
    # Crop to the box's aspect ratio around the focus, then exactly the box.
    if src_w * h > w * src_h:
        crop_w = src_h * w / h
        left = place(src_w, crop_w, focus.x * src_w)
        return Plan(Box(left, 0.0, left + crop_w, float(src_h)), w, h)
    crop_h = src_w * h / w
    top = place(src_h, crop_h, focus.y * src_h)
    return Plan(Box(0.0, top, float(src_w), top + crop_h), w, h)


def place(side: float, length: float, centre: float) -> float:
    """Where a window of `length` on a side of `side` starts so that it is as
    centred on `centre` as the side allows."""
    return min(max(centre - length / 2, 0.0), side - length)


def moved(plan: Plan, src_w: int, src_h: int, focus: Focus) -> Plan:
    """The same crop size, centred on `focus` as far as the source allows."""
    crop = plan.crop
    left = place(src_w, crop.width, focus.x * src_w)
    top = place(src_h, crop.height, focus.y * src_h)
    return Plan(Box(left, top, left + crop.width, top + crop.height), plan.width, plan.height)


def crop_rectangle(box: Box) -> dict[str, int]:
    """A crop as whole source pixels, for status documents."""
    left, top = round(box.left), round(box.top)
    return {"x": left, "y": top, "width": round(box.right) - left, "height": round(box.bottom) - top}


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
