"""Step: work out every variant's geometry from the oriented source size."""

from __future__ import annotations

from imagepipe.context import Context
from imagepipe.geometry import CENTRE, plan_variant


def plan_variants(ctx: Context) -> None:
    source = ctx.source_info()
    focus = ctx.focus or CENTRE
    ctx.plans = {v.name: plan_variant(source.width, source.height, v, focus) for v in ctx.spec.variants}
