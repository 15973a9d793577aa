"""Step: move the cover crops whose variant asks for `attention` or `entropy`
onto the subject, from one small copy of the image shared by all of them.
A focal point given with the job already placed every cover crop (plan)."""

from __future__ import annotations

from imagepipe.context import Context
from imagepipe.geometry import Focus, moved


def place_crops(ctx: Context) -> None:
    movable = [v for v in ctx.spec.variants if v.gravity != "centre"]
    if ctx.focus is not None or not movable:
        return
    # Imported here: numpy is 0.1 s of CPU per process start, and only
    # attention and entropy need it (not the default `centre`).
    import numpy as np

    from imagepipe import saliency

    source = ctx.source_info()
    px = np.asarray(saliency.small_copy(ctx.working_image()))
    for variant in movable:
        plan = ctx.plans[variant.name]
        horizontal = plan.crop.width < source.width
        if not horizontal and plan.crop.height >= source.height:
            continue  # same aspect as the source: nothing to move
        fraction = plan.crop.width / source.width if horizontal else plan.crop.height / source.height
        centre = saliency.subject_centre(px, variant.gravity, fraction, horizontal)
        focus = Focus(centre, 0.5) if horizontal else Focus(0.5, centre)
        ctx.plans[variant.name] = moved(plan, source.width, source.height, focus)
