"""`imagepipe process` as a user runs it, against one libvips process doing
the same variants: CPU seconds of each whole process tree (start-up,
imports, the worker pool and its workers included) for a few dozen photos.

    .venv-bench/bin/python bench/process_cpu.py [--rounds 3] [--jobs 2]

The figure is the children's rusage (user + system) of each run, so pool
workers count once they are reaped. libvips runs with VIPS_CONCURRENCY=1
and its cache off, as in bench/run.py; both write WebP q85 effort 4 of the
product's three variants. Medians over interleaved rounds; the load average
is printed (the machine is shared: CPU time, not wall time).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import CORPUS

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ROOT / ".venv" / "bin" / "imagepipe"
# 24 photos of 2-8 MP: the 18 orientation photos (2.2 MP) and the photos subset.
PHOTOS = [f"recurser/{kind}_{n}.jpg" for kind in ("Landscape", "Portrait") for n in range(9)] + [
    "sharp/gain-map.jpg",
    "thumbor/IMG_6494.JPG",
    "sharp/2569067123_aca715a2ee_o.jpg",
    "sharp/alpha-layer-2-ink.jpg",
]
LIBVIPS_SCRIPT = """
import sys, pathlib, pyvips
pyvips.cache_set_max(0)
out = pathlib.Path(sys.argv[1])
opts = {"Q": 85, "effort": 4, "keep": pyvips.enums.ForeignKeep.NONE}
for i, path in enumerate(sys.argv[2:]):
    large = pyvips.Image.thumbnail(path, 1920, height=1080, size="down").copy_memory()
    folder = out / str(i)
    folder.mkdir()
    large.webpsave(str(folder / "large.webp"), **opts)
    large.thumbnail_image(800, height=600, size="down").webpsave(str(folder / "medium.webp"), **opts)
    large.thumbnail_image(150, height=150, crop="centre").webpsave(str(folder / "thumbnail.webp"), **opts)
"""


def tree_cpu(command: list[str], env: dict[str, str]) -> float:
    """CPU seconds of the command and every process it waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="imagepipe process --jobs")
    args = parser.parse_args()
    files = [str(CORPUS / p) for p in PHOTOS]
    # Bytecode is written and reused, as in an installed package: one
    # unmeasured run of each first (PYTHONDONTWRITEBYTECODE would make every
    # run compile imagepipe's modules again, 40 ms of CPU).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["VIPS_CONCURRENCY"] = "1"
    figures: dict[str, list[float]] = {"imagepipe": [], "libvips": []}
    print(f"load average at start {os.getloadavg()[0]:.2f}; {len(files)} photos", file=sys.stderr)
    for measured in [False] + [True] * args.rounds:
        with tempfile.TemporaryDirectory() as out:
            command = [str(PRODUCT), "process", *files, "--out", f"{out}/ip", "--jobs", str(args.jobs)]
            ours = tree_cpu(command, env)
            Path(f"{out}/vips").mkdir()
            theirs = tree_cpu([sys.executable, "-c", LIBVIPS_SCRIPT, f"{out}/vips", *files], env)
        if measured:
            figures["imagepipe"].append(ours)
            figures["libvips"].append(theirs)
        time.sleep(0.5)
    ours, theirs = (statistics.median(figures[k]) for k in ("imagepipe", "libvips"))
    for name, values in figures.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:<10} CPU s per run: median {statistics.median(values):.2f}  ({runs})")
    print(f"imagepipe process vs libvips (CPU): {theirs / ours:.2f}x  (target >= 1.25x)")
    print(f"load average at end {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return 0 if theirs / ours >= 1.25 else 1


if __name__ == "__main__":
    sys.exit(main())
