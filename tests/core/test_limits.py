"""Pixel limits: bombs refused from the header with bounded memory; big real photos processed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagepipe.context import Limits
from imagepipe.errors import TooComplex, TooManyPixels
from imagepipe.processing import probe, render
from imagepipe.spec import DEFAULT_SPEC
from tests.core.imaging import encoded, outputs, render_file
from tests.support.hostile import jpeg_with_comments, png_chunk, png_line, png_with_chunks, progressive_jpeg

# Renders one file in a fresh interpreter and reports how much the peak RSS
# grew during the render (ru_maxrss is a high-water mark, in KiB on Linux).
MEASURE = """
import json, resource, sys
from pathlib import Path
from imagepipe.errors import ImagePipeError
from imagepipe.processing import render
from imagepipe.spec import DEFAULT_SPEC

data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    render(data, DEFAULT_SPEC)
    code = None
except ImagePipeError as exc:
    code = exc.code
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "growth_mib": (after - before) / 1024}))
"""


def measure(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("sharp/giant-image.jpg", "20000x14000"),  # 280 MP
        ("sharp/65536-uint32-limit.png", "65536x65536"),  # 4.3 Gpx, 4 GB as 8-bit palette
    ],
)
def test_bombs_are_refused_from_the_header(corpus_dir: Path, name: str, size: str) -> None:
    with pytest.raises(TooManyPixels, match=size) as caught:
        probe((corpus_dir / name).read_bytes(), DEFAULT_SPEC)
    assert caught.value.code == "too_many_pixels" and caught.value.status == 413


@pytest.mark.parametrize("name", ["sharp/giant-image.jpg", "sharp/65536-uint32-limit.png"])
def test_bombs_are_refused_with_bounded_memory(corpus_dir: Path, name: str) -> None:
    # Measured: 1.4-1.5 MiB of growth (imports of the plugins); decoding
    # either would take 280 MB and 4 GB.
    result = measure(corpus_dir / name)
    assert result["code"] == "too_many_pixels"
    assert float(result["growth_mib"]) < 50, result  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["thumbor/gisele.jpg", "thumbor/9643x10328.jpg"])
def test_100_megapixel_photos_are_processed_under_default_limits(corpus_dir: Path, name: str) -> None:
    rendered = render_file(corpus_dir / name)
    assert (rendered.source.width, rendered.source.height) == (9643, 10328)
    sizes = {name_: image.size for name_, image in outputs(rendered).items()}
    assert sizes == {"thumbnail": (150, 150), "medium": (560, 600), "large": (1008, 1080)}


@pytest.mark.parametrize("alpha", [False, True], ids=["rgb", "rgba"])
def test_a_huge_reduction_along_one_axis_has_bounded_memory(tmp_path: Path, alpha: bool) -> None:
    # 78 KB, 20 MP: LANCZOS alone took 1 GB of weights (and 7 s) to fit it in
    # 1080 rows. Box-reducing first: 134 MB (RGB), 343 MB (RGBA: the 80 MB
    # decode and a premultiplied copy per variant); without it 1,258 MB.
    path = tmp_path / "line.png"
    path.write_bytes(png_line(1, 20_000_000, alpha))
    result = measure(path)
    assert result["code"] is None
    assert float(result["growth_mib"]) < 500, result  # type: ignore[arg-type]


def test_a_100_megapixel_jpeg_is_decoded_small(corpus_dir: Path) -> None:
    # DCT-scaled decoding: measured 23 MiB of growth; a full decode is 290 MB.
    result = measure(corpus_dir / "thumbor/gisele.jpg")
    assert result["code"] is None
    assert float(result["growth_mib"]) < 100, result  # type: ignore[arg-type]


def test_the_source_limit_is_configurable() -> None:
    data = encoded(Image.new("RGB", (200, 100)), "PNG")
    assert probe(data, DEFAULT_SPEC, Limits(max_pixels=20_000)).width == 200
    with pytest.raises(TooManyPixels, match=r"200x100 \(0\.0 MP\); the limit is 0\.0 MP"):
        probe(data, DEFAULT_SPEC, Limits(max_pixels=19_999))


def test_the_decoded_limit_counts_what_scaled_decoding_leaves(corpus_dir: Path) -> None:
    limits = Limits(max_decoded_pixels=2_000_000)
    # A PNG decodes at full size: 2.4 MP is too much.
    png = encoded(Image.new("RGB", (2000, 1200)), "PNG")
    with pytest.raises(TooManyPixels, match="decoding needs 2000x1200"):
        probe(png, DEFAULT_SPEC, limits)
    # A 100 MP JPEG decodes at 1/8 (1206x1291, 1.6 MP): allowed.
    data = (corpus_dir / "thumbor/9643x10328.jpg").read_bytes()
    assert render(data, DEFAULT_SPEC, limits).variants[2].width == 1008


# --- files whose layout costs more than their pixels ---------------------------


def test_a_progressive_jpeg_renders() -> None:
    # Pillow writes 10 scans; 90 more of the smallest one reach the limit of 100.
    for data in (progressive_jpeg(), progressive_jpeg(extra_scans=90)):
        assert [v.width for v in render(data, DEFAULT_SPEC).variants] == [150, 600, 1024]


def test_a_jpeg_scan_flood_is_refused_before_decoding() -> None:
    # 20,000 repeats of a 14-byte scan took 7 s of CPU to decode for 16 MP;
    # each scan is a pass over every block, however small it is.
    for extra in (91, 20_000):
        with pytest.raises(TooComplex, match="more than 100 scans") as caught:
            probe(progressive_jpeg(extra_scans=extra), DEFAULT_SPEC)
        assert caught.value.code == "too_complex" and caught.value.status == 422


@pytest.mark.parametrize(
    ("build", "kept", "refused"),
    [(jpeg_with_comments, 990, 1000), (png_with_chunks, 999, 1000)],
    ids=["jpeg", "png"],
)
def test_a_metadata_flood_is_refused_before_pillow_parses_it(build: Any, kept: int, refused: int) -> None:
    # Pillow walks header segments in Python: 2.5 million empty JPEG comments
    # (10 MB) held the ingest's event loop for 2.6 s before this limit.
    assert probe(build(kept), DEFAULT_SPEC).width == 64
    with pytest.raises(TooComplex, match="more than 1000 metadata segments before the pixel data"):
        probe(build(refused), DEFAULT_SPEC)


@pytest.mark.parametrize(
    "build",
    [
        lambda count: jpeg_with_comments(count, after_scans=True),
        lambda count: png_with_chunks(count, after_pixels=True),
        lambda count: png_with_chunks(count, b"IDAT", after_pixels=True),
    ],
    ids=["jpeg comments", "png text", "png empty pixel data"],
)
def test_a_segment_flood_after_the_pixels_is_refused(build: Any) -> None:
    # Walking 2.5 million trailing comments cost our own check 1.3 s; Pillow
    # reads PNG chunks after the pixels in Python too (1 s for 600,000).
    assert len(render(build(9000), DEFAULT_SPEC).variants) == 3
    for count in (10_000, 800_000):
        data = build(count)
        with pytest.raises(TooComplex, match=rf"more than \d+ segments in a file of {len(data)} bytes"):
            probe(data, DEFAULT_SPEC)


def test_big_files_may_have_a_segment_per_256_bytes() -> None:
    data = png_with_chunks(10_000, b"IDAT", after_pixels=True)
    assert len(data) // 256 < 10_000
    with pytest.raises(TooComplex):
        probe(data, DEFAULT_SPEC)
    # One large private chunk brings the file to 10,010 times 256 bytes.
    chunk = png_chunk(b"prVt", bytes(10_010 * 256 - len(data) - 12))
    assert probe(data[:-12] + chunk + data[-12:], DEFAULT_SPEC).width == 64


def test_scan_markers_inside_metadata_are_not_scans() -> None:
    # Comment bytes that look like 300 start-of-scan markers are skipped by
    # their segment's length, as libjpeg skips them.
    data = jpeg_with_comments(3, b"\xff\xda" * 300)
    assert data.count(b"\xff\xda") > 300
    assert render(data, DEFAULT_SPEC).source.width == 64


def test_the_layout_limits_are_configurable() -> None:
    data = progressive_jpeg(size=64)
    with pytest.raises(TooComplex, match="more than 9 scans"):
        probe(data, DEFAULT_SPEC, Limits(max_jpeg_scans=9))
    assert probe(data, DEFAULT_SPEC, Limits(max_jpeg_scans=10)).width == 64
