"""What placeholders and saliency add per image: CPU time of the two steps
alone, on the 2-8 MP photos, pinned to CPU 0, with the product venv.

    .venv/bin/python bench/extras.py [--repeat 20] [--json out.json]

Each step runs on the context the render has reached just before it (so it
sees exactly the images the pipeline gives it); `saliency` is the
place_crops step for a thumbnail with `gravity: attention` (and `entropy`).
Median and p99 over every (image, repeat) sample, CPU time
(`time.process_time`): the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from corpus import CORPUS

from imagepipe.allocator import keep_freed_memory
from imagepipe.context import Context
from imagepipe.processing import RENDER, run
from imagepipe.spec import DEFAULT_SPEC, VariantList
from imagepipe.steps.gravity import place_crops
from imagepipe.steps.placeholder import make_placeholder

ROOT = Path(__file__).resolve().parent.parent
# The photos subset of bench/run.py minus the 100 MP one: 2-8 MP.
PHOTOS = [
    "sharp/gain-map.jpg",
    "thumbor/IMG_6494.JPG",
    "sharp/2569067123_aca715a2ee_o.jpg",
    "recurser/Landscape_1.jpg",
    "recurser/Portrait_1.jpg",
    "sharp/alpha-layer-2-ink.jpg",
]


def spec_with(gravity: str) -> VariantList:
    thumb, *rest = DEFAULT_SPEC.variants
    return VariantList((replace(thumb, gravity=gravity), *rest))  # type: ignore[arg-type]


def samples(step: Callable[[Context], None], spec: VariantList, repeat: int) -> list[float]:
    """CPU ms of `step` alone, per image and repeat."""
    out = []
    for name in PHOTOS:
        data = (CORPUS / name).read_bytes()
        ctx = Context(data=data, spec=spec)
        run(ctx, RENDER[: RENDER.index(step)])
        plans = dict(ctx.plans)
        for _ in range(repeat + 1):  # the first is a warm-up
            ctx.plans = dict(plans)
            started = time.process_time()
            step(ctx)
            out.append((time.process_time() - started) * 1000)
        del out[-repeat - 1]
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_ms": statistics.median(values), "p99_ms": p99, "n": len(values)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    keep_freed_memory()
    results = {
        "placeholders": summary(samples(make_placeholder, DEFAULT_SPEC, args.repeat)),
        "saliency (attention)": summary(samples(place_crops, spec_with("attention"), args.repeat)),
        "saliency (entropy)": summary(samples(place_crops, spec_with("entropy"), args.repeat)),
    }
    print(f"load average {os.getloadavg()[0]:.2f}; {len(PHOTOS)} photos x {args.repeat}; CPU ms per image")
    for name, r in results.items():
        print(f"  {name:<22} median {r['median_ms']:6.2f}   p99 {r['p99_ms']:6.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
