#!/usr/bin/env python3
"""Draw the sample photo of the README's quick start (examples/sample.jpg).

    python scripts/sample_image.py            # rewrite examples/sample.jpg

It is drawn here, from nothing but numbers, so that it is ours to ship (the
project's licence covers it) and a fresh clone has an image to upload: a
1800x1200 landscape of a sky gradient, a sun and hills, with fine noise so
that it compresses like a photograph rather than a drawing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "examples" / "sample.jpg"
WIDTH, HEIGHT = 1800, 1200


def draw() -> Image.Image:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    sky = np.stack([90 + 100 * y / HEIGHT, 150 + 60 * y / HEIGHT, 235 - 40 * y / HEIGHT], axis=-1)
    sun = np.hypot(x - 0.7 * WIDTH, y - 0.3 * HEIGHT) < 0.08 * WIDTH
    sky[sun] = (255, 220, 120)
    for offset, scale, colour in ((0.62, 0.08, (70, 130, 60)), (0.75, 0.06, (40, 95, 45))):
        ridge = HEIGHT * (offset + scale * np.sin(x / WIDTH * 7 + offset * 10))
        sky[y > ridge] = colour
    noise = np.random.default_rng(6494).normal(0, 6, sky.shape)
    return Image.fromarray(np.clip(sky + noise, 0, 255).astype(np.uint8), "RGB")


def main() -> int:
    draw().save(OUT, "JPEG", quality=85, optimize=True)
    print(f"wrote {OUT.relative_to(OUT.parents[1])} ({OUT.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
