"""Where the benchmarks find their images: the one place bench/ names a path
outside the repository (docs/testing.md, "The test corpus").

`IMAGEPIPE_CORPUS` names the folder; unset, it is the corpus folder beside
the checkout, as on the machines where the figures in docs/ were measured."""

from __future__ import annotations

import os
from pathlib import Path

CORPUS = Path(
    os.environ.get("IMAGEPIPE_CORPUS") or Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
).resolve()
