"""Crops that keep the subject: the pure placement functions as tables, then
renders of off-centre subjects (synthetic, and corpus photos placed so)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagepipe.errors import InvalidSpec
from imagepipe.geometry import Box, Focus, crop_rectangle, moved, parse_focus, place, plan_variant
from imagepipe.processing import render
from imagepipe.saliency import best_start, window_entropies, window_sums
from imagepipe.spec import DEFAULT_SPEC, Gravity, Variant, VariantList, parse_variant

THUMB = Variant("thumb", 150, 150, "cover")


@pytest.mark.parametrize(
    ("side", "length", "centre", "start"),
    [
        (900, 300, 450, 300),  # centred
        (900, 300, 100, 0),  # near the start: clamped
        (900, 300, 880, 600),  # near the end: clamped
        (900, 300, 400, 250),
        (300, 300, 10, 0),  # the whole side: nowhere to go
    ],
)
def test_place_centres_a_window_as_far_as_the_side_allows(
    side: float, length: float, centre: float, start: float
) -> None:
    assert place(side, length, centre) == start


@pytest.mark.parametrize(
    ("focus", "crop"),
    [
        (Focus(0.5, 0.5), (300.0, 0.0, 600.0, 300.0)),
        (Focus(0.0, 0.0), (0.0, 0.0, 300.0, 300.0)),
        (Focus(0.9, 0.1), (600.0, 0.0, 900.0, 300.0)),
        (Focus(0.3, 1.0), (120.0, 0.0, 420.0, 300.0)),
    ],
)
def test_a_focus_centres_every_cover_crop(focus: Focus, crop: tuple[float, ...]) -> None:
    plan = plan_variant(900, 300, THUMB, focus)
    assert (plan.crop.left, plan.crop.top, plan.crop.right, plan.crop.bottom) == crop
    assert moved(plan_variant(900, 300, THUMB), 900, 300, focus) == plan
    # fit variants show the whole frame, focus or not.
    assert plan_variant(900, 300, Variant("m", 800, 600, "fit"), focus).crop == Box(0, 0, 900, 300)


@pytest.mark.parametrize(
    ("text", "focus"),
    [("0.5,0.5", Focus(0.5, 0.5)), ("0,1", Focus(0, 1)), (" 0.25 , 0.75 ", Focus(0.25, 0.75))],
)
def test_parse_focus(text: str, focus: Focus) -> None:
    assert parse_focus(text) == focus


@pytest.mark.parametrize("text", ["", "0.5", "0.5,0.5,0.5", "a,b", "1.5,0", "-0.1,0.5", "nan,0.5", "inf,0"])
def test_bad_focus_says_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match=r"from 0 to 1"):
        parse_focus(text)


@pytest.mark.parametrize(
    ("box", "rect"),
    [
        (Box(0, 0, 900, 300), {"x": 0, "y": 0, "width": 900, "height": 300}),
        (Box(0.5, 0, 100.5, 100), {"x": 0, "y": 0, "width": 100, "height": 100}),
        (Box(22.3, 0, 322.3, 300), {"x": 22, "y": 0, "width": 300, "height": 300}),
    ],
)
def test_crop_rectangle_is_whole_pixels(box: Box, rect: dict[str, int]) -> None:
    assert crop_rectangle(box) == rect


def test_window_scores_and_ties_go_to_the_middle() -> None:
    assert window_sums(np.array([1.0, 2, 3, 4]), 2).tolist() == [3, 5, 7]
    assert best_start(np.array([1.0, 1, 1, 1, 1])) == 2
    assert best_start(np.array([5.0, 1, 1, 1, 1, 5, 1])) == 5  # nearest the middle (3)
    assert best_start(np.array([0.0, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0])) == 2.5  # the middle of the run
    assert best_start(np.array([0.0, 9, 0])) == 1
    grey = np.zeros((4, 6), dtype=np.uint8)
    grey[:, 4:] = np.array([[0, 255], [64, 128], [192, 32], [96, 160]])
    entropies = window_entropies(grey, 2)
    assert entropies.argmax() == 4 and entropies[0] == 0


def test_gravity_stays_out_of_the_spec_hash_unless_used() -> None:
    assert all("gravity" not in v for v in DEFAULT_SPEC.to_data())
    assert DEFAULT_SPEC.spec_hash == "713b1bfafdf5"  # the hash variant keys were written under
    moved_thumb = VariantList((Variant("thumbnail", 150, 150, "cover", gravity="attention"),))
    assert moved_thumb.to_data()[0]["gravity"] == "attention"
    assert moved_thumb.spec_hash != VariantList((Variant("thumbnail", 150, 150, "cover"),)).spec_hash


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "m", "width": 8, "height": 8, "method": "fit", "gravity": "attention"}, "only a cover"),
        (
            {"name": "m", "width": 8, "height": 8, "method": "cover", "gravity": "north"},
            "v.gravity: expected one",
        ),
    ],
)
def test_bad_gravity_names_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        parse_variant(data, "v")


# --- renders of off-centre subjects -------------------------------------------


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def crop_of(data: bytes, gravity: Gravity, variant: Variant = THUMB) -> Box:
    rendered = render(
        data, VariantList((Variant(variant.name, variant.width, variant.height, "cover", gravity=gravity),))
    )
    return rendered.variants[0].crop


def inside(subject: tuple[int, int, int, int], crop: Box) -> bool:
    left, top, right, bottom = subject
    return crop.left <= left and right <= crop.right and crop.top <= top and bottom <= crop.bottom


def portrait_in_a_wide_frame() -> tuple[bytes, tuple[int, int, int, int]]:
    """A face (skin-toned oval with eyes and a mouth) at the left of a 3:1 grey frame."""
    image = Image.new("RGB", (900, 300), (196, 200, 204))
    draw = ImageDraw.Draw(image)
    face = (60, 50, 220, 260)
    draw.ellipse(face, fill=(226, 176, 142))
    for eye in ((100, 120, 125, 140), (155, 120, 180, 140)):
        draw.ellipse(eye, fill=(50, 35, 30))
    draw.rectangle((110, 200, 170, 212), fill=(150, 60, 60))
    return jpeg(image), face


def object_in_a_corner(corpus_dir: Path) -> tuple[bytes, tuple[int, int, int, int]]:
    """A real photo, small, at the bottom right of a plain tall frame."""
    with Image.open(corpus_dir / "recurser" / "Landscape_1.jpg") as photo:
        small = photo.convert("RGB").resize((180, 120))
    frame = Image.new("RGB", (400, 1200), (238, 238, 238))
    frame.paste(small, (200, 1060))
    return jpeg(frame), (200, 1060, 380, 1180)


def texture_off_centre() -> tuple[bytes, tuple[int, int, int, int]]:
    """Grey noise (no colour, no skin) on the right of a flat grey frame."""
    rng = np.random.default_rng(5)
    pixels = np.full((300, 900), 128, dtype=np.uint8)
    pixels[40:260, 660:860] = rng.integers(0, 255, (220, 200), dtype=np.uint8)
    return jpeg(Image.fromarray(pixels).convert("RGB")), (660, 40, 860, 260)


def test_attention_keeps_a_face_that_centre_cuts() -> None:
    data, face = portrait_in_a_wide_frame()
    assert not inside(face, crop_of(data, "centre"))
    assert inside(face, crop_of(data, "attention"))


def test_attention_finds_a_real_photo_in_a_corner(corpus_dir: Path) -> None:
    data, subject = object_in_a_corner(corpus_dir)
    assert not inside(subject, crop_of(data, "centre"))
    assert inside(subject, crop_of(data, "attention"))
    assert inside(subject, crop_of(data, "entropy"))


def test_entropy_keeps_a_textured_subject() -> None:
    data, subject = texture_off_centre()
    assert not inside(subject, crop_of(data, "centre"))
    assert inside(subject, crop_of(data, "entropy"))


def test_a_plain_image_stays_centred() -> None:
    data = jpeg(Image.new("RGB", (900, 300), (90, 120, 150)))
    assert crop_of(data, "attention") == crop_of(data, "centre") == crop_of(data, "entropy")


def test_a_focus_overrides_gravity_for_every_cover_variant() -> None:
    data, _ = portrait_in_a_wide_frame()
    spec = VariantList(
        (
            Variant("a", 150, 150, "cover", gravity="attention"),
            Variant("b", 200, 100, "cover"),
            Variant("m", 800, 600, "fit"),
        )
    )
    rendered = {r.variant.name: r for r in render(data, spec, focus=Focus(1.0, 0.5)).variants}
    assert rendered["a"].crop == Box(600, 0, 900, 300)
    assert rendered["b"].crop == Box(300, 0, 900, 300)
    assert rendered["m"].crop == Box(0, 0, 900, 300)


def test_the_saliency_map_is_made_once_for_all_variants(monkeypatch: pytest.MonkeyPatch) -> None:
    import imagepipe.saliency as saliency

    calls: list[tuple[int, int]] = []
    real = saliency.small_copy

    def counting(image: Image.Image) -> Image.Image:
        calls.append(image.size)
        return real(image)

    monkeypatch.setattr(saliency, "small_copy", counting)
    data, face = portrait_in_a_wide_frame()
    spec = VariantList(tuple(Variant(f"v{n}", 100 + n, 100, "cover", gravity="attention") for n in range(3)))
    rendered = render(data, spec)
    assert len(calls) == 1
    assert all(inside(face, r.crop) for r in rendered.variants)


def test_the_operator_passes_gravity_through_to_the_pipelines_file() -> None:
    from imagepipe.operator.imagepipeline import variant_to_core

    crd = {"name": "t", "width": 9, "height": 9, "method": "cover", "format": "webp", "quality": 85}
    assert "gravity" not in variant_to_core(crd)
    assert parse_variant(variant_to_core({**crd, "gravity": "entropy"}), "v").gravity == "entropy"
