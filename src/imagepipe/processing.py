"""The step list: the processing steps in order, read like the spec.

Each step is a function over one Context. The deadline is checked between
steps: by default a late job is only recorded (`Context.late_at`), because
a late result is still better than none; `abort_on_deadline` stops it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from imagepipe.context import Context, Limits, RenderedVariant, SourceInfo
from imagepipe.errors import DeadlineExceeded
from imagepipe.geometry import Focus
from imagepipe.placeholders import Placeholder
from imagepipe.spec import VariantList
from imagepipe.steps.alpha import drop_opaque_alpha
from imagepipe.steps.colour import to_srgb
from imagepipe.steps.decode import decode
from imagepipe.steps.encode import encode_variants
from imagepipe.steps.gravity import place_crops
from imagepipe.steps.limits import check_source_pixels
from imagepipe.steps.mode import normalise_mode
from imagepipe.steps.open import open_source
from imagepipe.steps.orient import orient
from imagepipe.steps.placeholder import make_placeholder
from imagepipe.steps.plan import plan_variants
from imagepipe.steps.resize import resize_variants
from imagepipe.steps.shrink import shrink_on_load

Step = Callable[[Context], None]

# Everything that can be known from the header, before any pixel is decoded.
PROBE: tuple[Step, ...] = (open_source, check_source_pixels, plan_variants, shrink_on_load)
RENDER: tuple[Step, ...] = (
    *PROBE,
    decode,
    orient,
    normalise_mode,
    to_srgb,
    place_crops,
    resize_variants,
    drop_opaque_alpha,
    make_placeholder,
    encode_variants,
)
# The metric stage each step's time counts towards.
STAGES: dict[Step, str] = {
    **dict.fromkeys(RENDER[: RENDER.index(resize_variants)], "decode"),
    place_crops: "resize",
    resize_variants: "resize",
    drop_opaque_alpha: "resize",
    make_placeholder: "encode",
    encode_variants: "encode",
}


@dataclass(frozen=True)
class Rendered:
    source: SourceInfo
    variants: list[RenderedVariant]
    # Seconds per stage: decode, resize, encode.
    timings: dict[str, float]
    # The first step that started after the deadline; None: on time.
    late_at: str | None
    # None when the spec turns placeholders off.
    placeholder: Placeholder | None


def run(ctx: Context, steps: Sequence[Step]) -> None:
    for step in steps:
        _check_deadline(ctx, step)
        started = time.perf_counter()
        step(ctx)
        stage = STAGES[step]
        ctx.timings[stage] = ctx.timings.get(stage, 0.0) + time.perf_counter() - started


def _check_deadline(ctx: Context, step: Step) -> None:
    left = ctx.time_left()
    if left is None or left > 0 or ctx.late_at is not None:
        return
    if ctx.abort_on_deadline:
        raise DeadlineExceeded(f"the deadline passed before step {step.__name__}")
    ctx.late_at = step.__name__


def probe(
    data: bytes, spec: VariantList, limits: Limits | None = None, focus: Focus | None = None
) -> SourceInfo:
    """Identify the image and apply every limit without decoding a pixel."""
    ctx = Context(data=data, spec=spec, limits=limits or Limits(), focus=focus)
    run(ctx, PROBE)
    return ctx.source_info()


def render(
    data: bytes,
    spec: VariantList,
    limits: Limits | None = None,
    deadline: float | None = None,
    abort_on_deadline: bool = False,
    focus: Focus | None = None,
) -> Rendered:
    """Turn one encoded image into its encoded variants."""
    ctx = Context(
        data=data,
        spec=spec,
        limits=limits or Limits(),
        deadline=deadline,
        abort_on_deadline=abort_on_deadline,
        focus=focus,
    )
    run(ctx, RENDER)
    return Rendered(ctx.source_info(), ctx.outputs, ctx.timings, ctx.late_at, ctx.placeholder)
