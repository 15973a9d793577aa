"""Variant geometry: a pure function from the oriented source size and a variant to a plan."""

from __future__ import annotations

import random

import pytest

from imagepipe.geometry import Box, Plan, jpeg_draft_size, needed_scale, plan_variant
from imagepipe.spec import Variant

THUMBNAIL = Variant("thumbnail", 150, 150, "cover")
MEDIUM = Variant("medium", 800, 600, "fit")
LARGE = Variant("large", 1920, 1080, "fit")


@pytest.mark.parametrize(
    ("source", "variant", "size"),
    [
        # fit: the largest size within the box that keeps the aspect ratio
        ((3840, 2160), LARGE, (1920, 1080)),
        ((3840, 2160), MEDIUM, (800, 450)),
        ((4000, 3000), MEDIUM, (800, 600)),
        ((3000, 4000), MEDIUM, (450, 600)),
        ((3000, 2000), MEDIUM, (800, 533)),  # 533.33 rounds down
        ((2000, 3000), LARGE, (720, 1080)),
        ((1000, 999), MEDIUM, (601, 600)),  # 600.6 rounds up
        ((2725, 2225), LARGE, (1323, 1080)),  # 1322.7
        ((9643, 10328), LARGE, (1008, 1080)),  # the 100 MP photo
        # fit never upscales
        ((320, 240), LARGE, (320, 240)),
        ((2, 2), MEDIUM, (2, 2)),
        ((1920, 1080), LARGE, (1920, 1080)),
        ((1000, 100), LARGE, (1000, 100)),
        # cover: exactly the box, whatever the source
        ((3840, 2160), THUMBNAIL, (150, 150)),
        ((2, 2), THUMBNAIL, (150, 150)),
        ((1, 100_000), THUMBNAIL, (150, 150)),
        # extreme aspect ratios: at least one pixel, never outside the box
        ((100_000, 1), LARGE, (1920, 1)),
        ((1, 100_000), LARGE, (1, 1080)),
        ((100_000, 1), MEDIUM, (800, 1)),
        ((1, 100_000), MEDIUM, (1, 600)),
        ((100_000, 3), MEDIUM, (800, 1)),  # 0.024 rounds up to the 1-pixel floor
    ],
)
def test_output_size(source: tuple[int, int], variant: Variant, size: tuple[int, int]) -> None:
    plan = plan_variant(*source, variant)
    assert (plan.width, plan.height) == size


@pytest.mark.parametrize(
    ("source", "crop"),
    [
        ((3840, 2160), (840.0, 0.0, 3000.0, 2160.0)),  # wide: centred columns
        ((2160, 3840), (0.0, 840.0, 2160.0, 3000.0)),  # tall: centred rows
        ((500, 500), (0.0, 0.0, 500.0, 500.0)),  # same aspect: the whole frame
        ((101, 100), (0.5, 0.0, 100.5, 100.0)),  # fractional, still centred
        ((100_000, 1), (49_999.5, 0.0, 50_000.5, 1.0)),
        ((1, 100_000), (0.0, 49_999.5, 1.0, 50_000.5)),
    ],
)
def test_cover_crops_the_centre_to_the_box_aspect(source: tuple[int, int], crop: tuple[float, ...]) -> None:
    plan = plan_variant(*source, THUMBNAIL)
    box = plan.crop
    assert (box.left, box.top, box.right, box.bottom) == pytest.approx(crop)
    assert box.width / box.height == pytest.approx(150 / 150)
    assert plan.full_frame(*source) == (crop == (0.0, 0.0, *map(float, source)))


def test_cover_crop_keeps_a_non_square_box_aspect() -> None:
    plan = plan_variant(4000, 3000, Variant("banner", 1200, 300, "cover"))
    assert (plan.width, plan.height) == (1200, 300)
    assert plan.crop.width / plan.crop.height == pytest.approx(4.0)
    assert plan.crop.left == 0 and plan.crop.right == 4000
    assert plan.crop.top == pytest.approx(3000 - plan.crop.bottom)  # centred vertically


def test_fit_shows_the_whole_frame() -> None:
    plan = plan_variant(3000, 2000, MEDIUM)
    assert plan.crop == Box(0.0, 0.0, 3000.0, 2000.0)
    assert plan.full_frame(3000, 2000)


def test_fit_properties_hold_for_random_sizes() -> None:
    rng = random.Random(2)
    for _ in range(2000):
        src_w, src_h = rng.randint(1, 50_000), rng.randint(1, 50_000)
        box_w, box_h = rng.randint(1, 4000), rng.randint(1, 4000)
        plan = plan_variant(src_w, src_h, Variant("v", box_w, box_h, "fit"))
        w, h = plan.width, plan.height
        case = (src_w, src_h, box_w, box_h, w, h)
        assert 1 <= w <= min(box_w, src_w) and 1 <= h <= min(box_h, src_h), case
        # One side meets its limit (the box or, for a small source, the source itself).
        assert w == min(box_w, src_w) or h == min(box_h, src_h), case
        # The other side is the rounded proportional size (or the 1-pixel floor).
        scale = min(box_w / src_w, box_h / src_h, 1.0)
        assert abs(w - src_w * scale) <= 0.5 or w == 1, case
        assert abs(h - src_h * scale) <= 0.5 or h == 1, case


def test_cover_properties_hold_for_random_sizes() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        src_w, src_h = rng.randint(1, 50_000), rng.randint(1, 50_000)
        box_w, box_h = rng.randint(1, 4000), rng.randint(1, 4000)
        plan = plan_variant(src_w, src_h, Variant("v", box_w, box_h, "cover"))
        crop = plan.crop
        case = (src_w, src_h, box_w, box_h)
        assert (plan.width, plan.height) == (box_w, box_h), case
        assert crop.left >= 0 and crop.right <= src_w + 1e-6, case
        assert crop.top >= 0 and crop.bottom <= src_h + 1e-6, case
        assert crop.width / crop.height == pytest.approx(box_w / box_h), case
        assert crop.left == pytest.approx(src_w - crop.right, abs=1e-6), case
        assert crop.top == pytest.approx(src_h - crop.bottom, abs=1e-6), case
        # The crop uses the whole of one dimension.
        assert crop.width == pytest.approx(src_w) or crop.height == pytest.approx(src_h), case


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (-1, 5)])
def test_empty_sources_are_refused(size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_variant(*size, MEDIUM)


def test_plan_scale_is_the_larger_axis_ratio() -> None:
    plan = Plan(Box(0.0, 0.0, 1000.0, 500.0), 100, 60)
    assert plan.scale == pytest.approx(0.12)


@pytest.mark.parametrize(
    ("source", "scale"),
    [
        ((3840, 2160), 0.5),  # large 1920x1080 needs half
        ((9643, 10328), 1080 / 10328),  # large needs 1080 of 10328 rows
        ((1000, 500), 1.0),  # fit never upscales: full size is enough
        ((320, 240), 1.0),  # cover upscales, but decoding never goes above 1
        # A cover thumbnail of a panorama needs more of the short side than a
        # fit large does of the long one: 150 of 1000 rows beats 1920 of 40000.
        ((40_000, 1000), 0.15),
    ],
)
def test_needed_scale_covers_every_variant(source: tuple[int, int], scale: float) -> None:
    plans = [plan_variant(*source, v) for v in (THUMBNAIL, MEDIUM, LARGE)]
    assert needed_scale(plans) == pytest.approx(scale)


@pytest.mark.parametrize(
    ("source", "scale", "size"),
    [
        ((3840, 2160), 0.5, (1920, 1080)),
        ((2725, 2225), 1080 / 2225, (1323, 1080)),
        ((9643, 10328), 1080 / 10328, (1009, 1080)),  # 1008.4 rounds up, never down
        ((100_000, 1), 0.0001, (10, 1)),  # at least one pixel
        ((1, 1), 0.01, (1, 1)),
    ],
)
def test_jpeg_draft_size_never_goes_below_the_scale(
    source: tuple[int, int], scale: float, size: tuple[int, int]
) -> None:
    got = jpeg_draft_size(*source, scale)
    assert got == size
    assert got[0] >= source[0] * scale and got[1] >= source[1] * scale
