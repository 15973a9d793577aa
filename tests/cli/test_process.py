"""`imagepipe process` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image


def run_process(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The installed console script, as a user runs it.
    command = [str(Path(sys.executable).parent / "imagepipe"), "process", *map(str, args)]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=environment)


def test_processes_files_and_folders_and_reports_each(tmp_path: Path, corpus_dir: Path) -> None:
    photos = tmp_path / "in"
    photos.mkdir()
    for name in ("Landscape_1.jpg", "Portrait_6.jpg", "with-alpha.png", "truncated.jpg"):
        (photos / name).write_bytes((corpus_dir / "sharp" / name).read_bytes())
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"

    result = run_process(photos, corpus_dir / "libvips" / "1.webp", "--out", out, "--jobs", "2")

    assert result.returncode == 1, "a failed input must make the exit status non-zero"
    lines = {Path(r["input"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(lines) == {
        "Landscape_1.jpg",
        "Portrait_6.jpg",
        "with-alpha.png",
        "truncated.jpg",
        "notes.txt",
        "1.webp",
    }
    assert lines["truncated.jpg"]["error"]["code"] == "corrupt_image"
    assert lines["notes.txt"]["error"]["code"] == "unsupported_format"
    portrait = lines["Portrait_6.jpg"]
    assert portrait["source"]["width"] == 450 and portrait["source"]["height"] == 600
    placeholder = portrait["placeholder"]
    assert set(placeholder) == {"thumbhash", "blurhash", "dominant_color", "average_color", "lqip"}
    assert placeholder["lqip"].startswith("data:image/webp;base64,")
    expected = {"thumbnail": (150, 150), "medium": (450, 600), "large": (450, 600)}
    for name, size in expected.items():
        variant = portrait["variants"][name]
        path = out / "Portrait_6" / f"{name}.webp"
        assert variant["path"] == str(path)
        with Image.open(path) as image:
            assert image.format == "WEBP" and image.size == size
        assert variant["bytes"] == path.stat().st_size
    assert (out / "1" / "large.webp").is_file()
    assert not (out / "truncated").exists(), "a failed input leaves nothing behind"


def test_same_stems_do_not_overwrite_each_other(tmp_path: Path, corpus_dir: Path) -> None:
    first, second = corpus_dir / "sharp" / "Landscape_1.jpg", corpus_dir / "recurser" / "Landscape_1.jpg"
    result = run_process(first, second, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    sizes = {Image.open(tmp_path / d / "large.webp").size for d in ("Landscape_1", "Landscape_1-2")}
    assert sizes == {(600, 450), (1620, 1080)}


def test_a_failed_input_takes_no_folder_name(tmp_path: Path, corpus_dir: Path) -> None:
    # Sorted input order: a/photo.jpg (not an image) first, then two real photos.
    for folder, data in (("a", b"not an image"), ("b", None), ("c", None)):
        (tmp_path / folder).mkdir()
        source = (corpus_dir / "sharp" / "Landscape_1.jpg").read_bytes()
        (tmp_path / folder / "photo.jpg").write_bytes(data or source)
    out = tmp_path / "out"
    result = run_process(tmp_path / "a", tmp_path / "b", tmp_path / "c", "--out", out)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [("error" in r) for r in lines] == [True, False, False]
    assert sorted(p.name for p in out.iterdir()) == ["photo", "photo-2"]
    assert lines[1]["variants"]["large"]["path"] == str(out / "photo" / "large.webp")


def test_an_empty_file_is_named_not_called_an_upload(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    result = run_process(empty, "--out", tmp_path / "out")
    error = json.loads(result.stdout)["error"]
    assert error == {"code": "empty_upload", "message": f"{empty} is empty"}


def test_unknown_pipeline_is_a_usage_error(tmp_path: Path, corpus_dir: Path) -> None:
    result = run_process(corpus_dir / "sharp" / "Landscape_1.jpg", "--out", tmp_path, "--pipeline", "nope")
    assert result.returncode == 2
    assert "unknown pipeline" in result.stderr


def test_bad_cmyk_profile_is_refused_before_any_work(tmp_path: Path, corpus_dir: Path) -> None:
    env = {"IMAGEPIPE_CMYK_PROFILE": str(tmp_path / "missing.icc")}
    result = run_process(corpus_dir / "sharp" / "Landscape_1.jpg", "--out", tmp_path / "out", env=env)
    assert result.returncode == 2
    assert "IMAGEPIPE_CMYK_PROFILE" in result.stderr and "cannot read it" in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_command_has_help() -> None:
    from imagepipe.cli import COMMANDS

    script = str(Path(sys.executable).parent / "imagepipe")
    for name in COMMANDS:
        result = subprocess.run([script, name, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"imagepipe {name} --help: {result.stderr}"
        assert "usage: imagepipe" in result.stdout


def test_focus_moves_cover_crops_and_is_reported(tmp_path: Path, corpus_dir: Path) -> None:
    source = corpus_dir / "recurser" / "Landscape_1.jpg"  # 1800x1200
    result = run_process(source, "--out", tmp_path, "--focus", "1,0.5")
    assert result.returncode == 0, result.stderr
    (line,) = map(json.loads, result.stdout.splitlines())
    assert line["focus"] == {"x": 1.0, "y": 0.5}
    assert line["variants"]["thumbnail"]["crop"] == {"x": 600, "y": 0, "width": 1200, "height": 1200}
    assert line["variants"]["large"]["crop"] == {"x": 0, "y": 0, "width": 1800, "height": 1200}


def test_a_bad_focus_is_a_usage_error(tmp_path: Path, corpus_dir: Path) -> None:
    result = run_process(corpus_dir / "sharp" / "Landscape_1.jpg", "--out", tmp_path, "--focus", "2,0")
    assert result.returncode == 2
    assert "--focus" in result.stderr and "Traceback" not in result.stderr


def imported_modules(*args: str | Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`imagepipe process` run with `-X importtime`, and every module it imported."""
    command = [sys.executable, "-X", "importtime", str(Path(sys.executable).parent / "imagepipe"), "process"]
    result = subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    modules = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result, modules


def test_the_default_pipeline_never_imports_numpy(tmp_path: Path, corpus_dir: Path) -> None:
    # numpy is 0.1 s of CPU per process start: only gravity attention and
    # entropy need it. Placeholders are computed without it.
    result, modules = imported_modules(
        corpus_dir / "recurser" / "Landscape_1.jpg", "--out", tmp_path, "--jobs", "1"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["placeholder"]["thumbhash"]
    assert "PIL.Image" in modules and "numpy" not in modules


def test_gravity_attention_imports_numpy_when_used(tmp_path: Path, corpus_dir: Path) -> None:
    pipelines = tmp_path / "pipelines.json"
    thumbnail = {"name": "thumbnail", "width": 150, "height": 150, "method": "cover", "gravity": "attention"}
    pipelines.write_text(json.dumps({"default": [thumbnail]}))
    source = corpus_dir / "recurser" / "Landscape_1.jpg"  # 1800x1200
    result, modules = imported_modules(
        source, "--out", tmp_path / "out", "--pipelines", pipelines, "--jobs", "1"
    )
    assert result.returncode == 0, result.stderr
    crop = json.loads(result.stdout)["variants"]["thumbnail"]["crop"]
    assert crop["width"] == crop["height"] == 1200
    assert "numpy" in modules
