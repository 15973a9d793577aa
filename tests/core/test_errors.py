"""Bad inputs fail with their stable code, never a crash or a half image; deadlines."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

import imagepipe.context
from imagepipe.errors import (
    CorruptImage,
    DeadlineExceeded,
    EmptyUpload,
    UnsupportedFormat,
)
from imagepipe.processing import RENDER, probe, render
from imagepipe.spec import DEFAULT_SPEC
from tests.core.imaging import decode, encoded, outputs, render_file

# --- broken and foreign inputs ------------------------------------------------


@pytest.mark.parametrize("name", ["sharp/truncated.jpg", "sharp/truncated.png", "sharp/corrupt-header.jpg"])
def test_truncated_and_corrupt_files_are_corrupt_images(corpus_dir: Path, name: str) -> None:
    with pytest.raises(CorruptImage) as caught:
        render((corpus_dir / name).read_bytes(), DEFAULT_SPEC)
    error = caught.value
    assert error.code == "corrupt_image" and error.status == 422 and error.permanent
    assert error.as_dict() == {"code": "corrupt_image", "message": error.message}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_cut_off_upload_is_a_corrupt_image(fmt: str) -> None:
    data = encoded(Image.effect_noise((300, 200), 60).convert("RGB"), fmt)
    with pytest.raises(CorruptImage):
        render(data[: len(data) * 2 // 3], DEFAULT_SPEC)


def test_damaged_png_data_is_a_corrupt_image() -> None:
    data = bytearray(encoded(Image.effect_noise((300, 200), 60).convert("RGB"), "PNG"))
    start = data.index(b"IDAT") + 100
    data[start : start + 300] = bytes(b ^ 0x5A for b in data[start : start + 300])
    with pytest.raises(CorruptImage, match="cannot decode"):
        render(bytes(data), DEFAULT_SPEC)


FOREIGN = {
    "gif": encoded(Image.new("P", (8, 8)), "GIF"),
    "bmp": encoded(Image.new("RGB", (8, 8)), "BMP"),
    "tiff": encoded(Image.new("RGB", (8, 8)), "TIFF"),
    "text": b"just some words, not an image\n" * 4,
    "html": b"<!DOCTYPE html>\n<html><body><img src='x.png'></body></html>\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>\n',
    "zeros": bytes(4096),
}


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_other_formats_are_unsupported(kind: str) -> None:
    with pytest.raises(UnsupportedFormat, match="expected a JPEG, PNG or WebP image") as caught:
        probe(FOREIGN[kind], DEFAULT_SPEC)
    assert caught.value.code == "unsupported_format" and caught.value.status == 415


def test_a_file_name_does_not_matter(tmp_path: Path) -> None:
    # Identified by content: a GIF named .jpg is still a GIF.
    path = tmp_path / "photo.jpg"
    path.write_bytes(FOREIGN["gif"])
    with pytest.raises(UnsupportedFormat, match="image/gif"):
        render(path.read_bytes(), DEFAULT_SPEC)


def test_empty_upload() -> None:
    with pytest.raises(EmptyUpload, match="empty") as caught:
        render(b"", DEFAULT_SPEC)
    assert caught.value.code == "empty_upload" and caught.value.status == 400


def damaged(fmt: str, at: int | bytes, offset: int, new: bytes) -> bytes:
    """A small `fmt` file with `new` written at `offset` past `at` (an index or a marker)."""
    data = bytearray(encoded(Image.new("RGB", (64, 48), (10, 20, 30)), fmt))
    start = (data.index(at) if isinstance(at, bytes) else at) + offset
    data[start : start + len(new)] = new
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (damaged("PNG", 16, 0, bytes(4)), "bad header checksum"),
        (damaged("JPEG", b"\xff\xc0", 9, b"\x07"), "cannot handle 7-layer images"),
        (damaged("WEBP", 20, 0, bytes(10)), "could not create decoder"),
    ],
    ids=["png", "jpeg", "webp"],
)
def test_a_broken_header_is_named_by_its_reason(data: bytes, reason: str) -> None:
    # Not "cannot identify image file <_io.BytesIO object at 0x...>".
    with pytest.raises(CorruptImage, match=reason) as caught:
        probe(data, DEFAULT_SPEC)
    assert "object at 0x" not in caught.value.message


def test_a_12_bit_jpeg_is_unsupported() -> None:
    # SOF1 with 12-bit samples: valid, but Pillow reads 8-bit JPEGs only.
    data = damaged("JPEG", b"\xff\xc0", 1, b"\xc1\x00\x11\x0c")  # SOF1, length 17, 12 bits
    with pytest.raises(UnsupportedFormat, match="a 12-bit JPEG; only 8-bit JPEGs can be read"):
        probe(data, DEFAULT_SPEC)


def can_decode(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
    except OSError:
        return False
    return True


def test_lossless_jpeg_renders_or_is_refused_clearly(corpus_dir: Path) -> None:
    # SOF3 (lossless) JPEG: libjpeg-turbo decodes it from 3.0 on, and never
    # with DCT scaling. This build: libjpeg-turbo 2.1.5, which cannot.
    path = corpus_dir / "sharp/testimgl.jpg"
    if can_decode(path):
        rendered = render_file(path)
        assert {v.variant.name: (v.width, v.height) for v in rendered.variants} == {
            "thumbnail": (150, 150),
            "medium": (227, 149),
            "large": (227, 149),
        }
        assert all(image.format == "WEBP" for image in outputs(rendered).values())
    else:
        with pytest.raises(UnsupportedFormat, match="lossless") as caught:
            render(path.read_bytes(), DEFAULT_SPEC)
        assert caught.value.code == "unsupported_format"


# --- deadlines -----------------------------------------------------------------


@pytest.fixture
def photo(corpus_dir: Path) -> bytes:
    return (corpus_dir / "sharp/Landscape_1.jpg").read_bytes()


def test_a_passed_deadline_aborts_when_asked(photo: bytes) -> None:
    with pytest.raises(DeadlineExceeded, match="before step open_source") as caught:
        render(photo, DEFAULT_SPEC, deadline=time.monotonic() - 1, abort_on_deadline=True)
    error = caught.value
    assert error.code == "deadline_exceeded" and not error.permanent


def test_a_passed_deadline_is_only_recorded_by_default(photo: bytes) -> None:
    rendered = render(photo, DEFAULT_SPEC, deadline=time.monotonic() - 1)
    assert rendered.late_at == "open_source"
    assert [v.variant.name for v in rendered.variants] == ["thumbnail", "medium", "large"]
    assert decode(rendered.variants[2].data).size == (600, 450)


def test_on_time_renders_record_nothing(photo: bytes) -> None:
    rendered = render(photo, DEFAULT_SPEC, deadline=time.monotonic() + 60)
    assert rendered.late_at is None
    assert set(rendered.timings) == {"decode", "resize", "encode"}
    assert all(seconds >= 0 for seconds in rendered.timings.values())


@pytest.fixture
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deadline clock advances one second each time a step checks it."""
    now = iter(range(1, 1000))
    monkeypatch.setattr(imagepipe.context, "time", SimpleNamespace(monotonic=lambda: next(now)))


@pytest.mark.usefixtures("ticking_clock")
def test_the_deadline_is_checked_between_steps(photo: bytes) -> None:
    # Checks at 1, 2, 3, 4 s pass a 4.5 s deadline; the fifth step starts late.
    late_step = RENDER[4].__name__
    rendered = render(photo, DEFAULT_SPEC, deadline=4.5)
    assert rendered.late_at == late_step == "decode"
    assert len(rendered.variants) == 3


@pytest.mark.usefixtures("ticking_clock")
def test_a_deadline_passing_mid_render_aborts_at_the_next_step(photo: bytes) -> None:
    with pytest.raises(DeadlineExceeded, match="before step decode"):
        render(photo, DEFAULT_SPEC, deadline=4.5, abort_on_deadline=True)
