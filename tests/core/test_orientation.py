"""EXIF orientation on real files: every file of a set must come out looking the same.

Each set holds one picture stored in up to nine ways (as is, and turned or
mirrored with the EXIF orientation saying how to undo it). Every file of a
set must render to variants of identical size that look like the set's
orientation-1 file.

Threshold: SSIM >= 0.90. Measured with the product's (lossy WebP) variants,
the worst file of each set scores 0.929 (recurser Landscape_6, large), 0.945
(sharp Portrait_6), 0.949 (sharp Landscape_8), 0.959 (recurser Portrait_0):
each file was re-encoded as its own JPEG, so their details differ a little.
The orientation-1 variants compared with themselves flipped or turned by
180° (what a wrong orientation would give) score at most 0.58, and 0.10-0.25
for three of the four sets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.imaging import output_greys, render_file
from tests.support.ssim import ssim

SETS = {
    "sharp/Landscape": range(1, 9),
    "sharp/Portrait": range(1, 9),
    "recurser/Landscape": range(9),
    "recurser/Portrait": range(9),
}
MIN_SSIM = 0.90
CASES = [(name, i) for name, numbers in SETS.items() for i in numbers if i != 1]


@pytest.mark.parametrize(("name", "number"), CASES, ids=[f"{n}_{i}" for n, i in CASES])
def test_every_orientation_looks_like_orientation_1(corpus_dir: Path, name: str, number: int) -> None:
    reference = render_file(corpus_dir / f"{name}_1.jpg")
    rendered = render_file(corpus_dir / f"{name}_{number}.jpg")
    # Sizes as a viewer sees them, whatever the stored size.
    assert (rendered.source.width, rendered.source.height) == (
        reference.source.width,
        reference.source.height,
    )
    upright = output_greys(corpus_dir / f"{name}_1.jpg")
    turned = output_greys(corpus_dir / f"{name}_{number}.jpg")
    assert list(turned) == list(upright)
    for variant, image in turned.items():
        assert image.shape == upright[variant].shape, variant
        score = ssim(image, upright[variant])
        assert score >= MIN_SSIM, f"{variant}: SSIM {score:.4f}"
