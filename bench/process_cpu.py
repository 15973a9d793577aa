"""`imagepipe process` as a user runs it, against one libvips process doing
the same variants: CPU seconds of each whole process tree (start-up,
imports, the worker pool and its workers included) for a few dozen photos.

    .venv-bench/bin/python bench/process_cpu.py [--rounds 9] [--jobs N]

The figure is the children's rusage (user + system) of each run, so pool
workers count once they are reaped. libvips runs with VIPS_CONCURRENCY=1
and its cache off, as in bench/run.py; both write WebP q85 effort 4 of the
product's three variants. Each round runs both, alternating which goes
first, and the ratio is taken per round (the shared VM's drift cancels);
the median ratio and its spread over the rounds are printed, with the load
average (the machine is shared: CPU time, not wall time).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--jobs", type=int, default=None, help="imagepipe process --jobs (default: left to imagepipe)"
    )
    args = parser.parse_args()
    files = [str(CORPUS / p) for p in PHOTOS]
    # Bytecode is written and reused, as in an installed package: one
    # unmeasured round first (PYTHONDONTWRITEBYTECODE would make every
    # run compile imagepipe's modules again, 40 ms of CPU).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["VIPS_CONCURRENCY"] = "1"
    jobs = [] if args.jobs is None else ["--jobs", str(args.jobs)]
    runs: list[tuple[float, float]] = []
    loads = [os.getloadavg()[0]]
    print(f"{len(files)} photos, imagepipe process {' '.join(jobs) or '(default --jobs)'}", file=sys.stderr)
    for round_ in range(args.rounds + 1):
        with tempfile.TemporaryDirectory() as out:
            Path(f"{out}/vips").mkdir()
            ours = [str(PRODUCT), "process", *files, "--out", f"{out}/ip", *jobs]
            theirs = [sys.executable, "-c", LIBVIPS_SCRIPT, f"{out}/vips", *files]
            # Each round runs both back to back, alternating which goes
            # first, so the shared VM's drift hits both alike; the ratio is
            # taken within the round.
            if round_ % 2:
                b, a = tree_cpu(theirs, env), tree_cpu(ours, env)
            else:
                a, b = tree_cpu(ours, env), tree_cpu(theirs, env)
        loads.append(os.getloadavg()[0])
        if round_:
            runs.append((a, b))
            print(
                f"round {round_}: imagepipe {a:.2f}  libvips {b:.2f}  {b / a:.2f}x  load {loads[-1]:.2f}",
                file=sys.stderr,
            )
    ratios = sorted(b / a for a, b in runs)
    for name, values in (("imagepipe", [a for a, _ in runs]), ("libvips", [b for _, b in runs])):
        print(
            f"{name:<10} CPU s per run: median {statistics.median(values):.2f}"
            f"  (min {min(values):.2f}, max {max(values):.2f})"
        )
    ratio = statistics.median(ratios)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratio, ratio, ratio]
    print(
        f"imagepipe process vs libvips (CPU, per round): median {ratio:.2f}x"
        f"  (quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f}, min {ratios[0]:.2f}, max {ratios[-1]:.2f};"
        f" {len(ratios)} rounds; target >= 1.25x)"
    )
    print(f"load average (1 min) from {min(loads):.2f} to {max(loads):.2f}")
    return 0 if ratio >= 1.25 else 1


if __name__ == "__main__":
    sys.exit(main())
