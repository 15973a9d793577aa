"""The README's sample photo is the one scripts/sample_image.py draws (so its
origin is what the README says), and the quick start uploads it."""

from __future__ import annotations

import importlib.util

import numpy as np
from PIL import Image

from .repo import REPO

SAMPLE = REPO / "examples" / "sample.jpg"


def drawn() -> Image.Image:
    spec = importlib.util.spec_from_file_location("sample_image", REPO / "scripts" / "sample_image.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    image: Image.Image = module.draw()
    return image


def test_the_committed_sample_is_what_the_script_draws() -> None:
    # Compared at 1/10 scale: the drawn noise does not survive JPEG, the picture does.
    def small(image: Image.Image) -> np.ndarray:
        return np.asarray(image.convert("RGB").resize((180, 120), Image.Resampling.BOX), dtype=float)

    committed = Image.open(SAMPLE)
    assert committed.format == "JPEG" and committed.size == (1800, 1200)
    assert np.abs(small(committed) - small(drawn())).mean() < 2


def test_the_quick_start_uploads_the_sample() -> None:
    assert "curl -F file=@examples/sample.jpg" in (REPO / "README.md").read_text()
