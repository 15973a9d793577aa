"""The install is what we think it is: pillow-simd (never pillow), and the
`operator/` folder never shadows the standard library."""

from __future__ import annotations

import ctypes
import importlib.metadata as metadata
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import PIL
import pytest
from packaging.requirements import Requirement
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-pillow-simd"


def test_pil_is_pillow_simd() -> None:
    simd = metadata.distribution("pillow-simd")
    assert PIL.__version__ == simd.version
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("pillow")
    # The PIL in use is the one pillow-simd installed.
    installed = {str(f) for f in simd.files or []}
    assert "PIL/__init__.py" in installed
    assert Path(PIL.__file__).parent == Path(str(simd.locate_file("PIL")))


def test_pil_webp_is_the_static_libwebp_we_build() -> None:
    """PIL._webp runs the libwebp scripts/build-pillow-simd compiles (-O3,
    linked in statically), even once PIL.Image has loaded Debian's libwebp.so
    through libtiff: a shared build of ours would lose to that one. The
    script's own --check (the one the image runs) says so; TIFF is there too."""
    code = "import PIL.Image; print('libwebp.so' in open('/proc/self/maps').read())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True"], "premise: libtiff loads Debian's libwebp.so"
    check = subprocess.run([BUILD_SCRIPT, "--check", sys.executable], capture_output=True, text=True)
    assert check.returncode == 0, f"run scripts/bootstrap: {check.stderr}"


def test_build_check_refuses_a_shared_libwebp(tmp_path: Path) -> None:
    """--check fails for a PIL._webp that needs Debian's libwebp.so (same version as ours)."""
    fake = tmp_path / "PIL"
    fake.mkdir()
    real = Path(PIL.__file__).parent
    for item in real.iterdir():
        (fake / item.name).symlink_to(item)
    webp = next(real.glob("_webp*.so"))
    (fake / webp.name).unlink()
    (fake / webp.name).write_bytes(webp.read_bytes() + b"\0libwebp.so.7\0")
    check = subprocess.run(
        [BUILD_SCRIPT, "--check", sys.executable],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert check.returncode == 1
    assert "links a shared libwebp" in check.stderr


def _requirement_closure(extras: set[str]) -> set[str]:
    """Every distribution imagepipe with these extras pulls in, as installed here."""
    seen: set[str] = set()
    todo = [("imagepipe", extras)]
    while todo:
        name, wanted = todo.pop()
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            active = not req.marker or any(req.marker.evaluate({"extra": e}) for e in wanted or {""})
            key = re.sub(r"[-_.]+", "-", req.name).lower()
            if active and key not in seen:
                seen.add(key)
                todo.append((req.name, set(req.extras)))
    return seen


def test_no_extra_pulls_in_pillow() -> None:
    extras = set(metadata.metadata("imagepipe").get_all("Provides-Extra") or [])
    assert {"dev", "test"} <= extras
    closure = _requirement_closure(extras)
    assert "pillow-simd" in closure
    assert "pillow" not in closure, "a dependency requires pillow, which would replace pillow-simd"


def test_operator_folder_does_not_shadow_stdlib(tmp_path: Path) -> None:
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, REPO],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(wheels.glob("imagepipe-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel], check=True
    )
    code = "import asyncio, imagepipe, imagepipe.operator, imagepipe.service; print(imagepipe.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(site)), "imported a copy other than the fresh install"


def _debian_webp(image: Image.Image) -> bytes:
    """WebP q85 (effort 4, libwebp's default) by Debian's own libwebp.so.7, through ctypes."""
    lib = ctypes.CDLL("libwebp.so.7")
    encode = lib.WebPEncodeRGBA if image.mode == "RGBA" else lib.WebPEncodeRGB
    encode.restype = ctypes.c_size_t
    out = ctypes.POINTER(ctypes.c_uint8)()
    stride = image.width * len(image.mode)
    size = encode(image.tobytes(), image.width, image.height, stride, ctypes.c_float(85), ctypes.byref(out))
    assert size, "Debian's libwebp refused to encode"
    try:
        return ctypes.string_at(out, size)
    finally:
        lib.WebPFree(out)


@pytest.mark.parametrize("name", ["recurser/Landscape_5.jpg", "thumbor/IMG_6494.JPG"])
def test_our_libwebp_build_writes_the_bytes_debians_does(corpus_dir: Path, name: str) -> None:
    """The -O3 (-mavx2) static build of scripts/build-pillow-simd changes how
    fast libwebp encodes, never what: at the variants' and the LQIP's sizes,
    with and without alpha, PIL's WebP is byte for byte what Debian's shared
    -O2 libwebp.so of the same source writes (the bench compares speed on
    equal output)."""
    photo = Image.open(corpus_dir / name).convert("RGB")
    for size in ((1620, 1080), (800, 533), (150, 150), (16, 11)):
        rgb = photo.resize(size, Image.Resampling.LANCZOS)
        rgba = rgb.copy()
        rgba.putalpha(Image.linear_gradient("L").resize(size))
        for image in (rgb, rgba):
            ours = io.BytesIO()
            image.save(ours, "WEBP", quality=85, method=4)
            assert ours.getvalue() == _debian_webp(image), f"{name} {size} {image.mode}"
