"""`imagepipe consume` with every render slowed by SLOW_RENDER_SECONDS, so that
tests can kill or stop a consumer in the middle of a job. The slowdown runs in
the pool worker (the function is pickled by reference to this module)."""

from __future__ import annotations

import os
import sys
import time

from imagepipe.consumer import pool
from imagepipe.context import Limits
from imagepipe.jobs import JobMessage
from imagepipe.processing import Rendered

_render = pool.render_in_worker


def render_slowly(data: bytes, job: JobMessage, limits: Limits, deadline: float | None) -> Rendered:
    time.sleep(float(os.environ.get("SLOW_RENDER_SECONDS", "0")))
    return _render(data, job, limits, deadline)


if __name__ == "__main__":
    # By its importable name, so that pool workers can unpickle it.
    from tests.consumer.slow_consumer import render_slowly as slowed

    pool.render_in_worker = slowed
    from imagepipe.cli import main

    sys.exit(main(sys.argv[1:]))
