"""The process pool that renders images: the event loop never runs image work.

Workers are spawned (no inherited event loop, clients or threads; not a
forkserver, whose death by a group-wide SIGTERM would break the pool), ignore
SIGTERM/SIGINT so that a signal to the process group leaves the drain to the
parent, keep the memory one image frees for the next (imagepipe.allocator),
and are replaced when one dies (out of memory, a
crash in a codec): the job that was running is then retried, not lost.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from imagepipe.allocator import keep_freed_memory
from imagepipe.context import Limits
from imagepipe.jobs import JobMessage
from imagepipe.processing import Rendered, render

log = logging.getLogger(__name__)


def _start_worker() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()


def _warm() -> None:
    """Runs once per worker at start, so the first job does not pay for start-up."""


def render_in_worker(data: bytes, job: JobMessage, limits: Limits, deadline: float | None) -> Rendered:
    # time.monotonic() is system-wide on Linux, so the parent's deadline holds here.
    return render(data, job.variant_list(), limits, deadline, focus=job.job_focus())


class RenderPool:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_start_worker)

    async def start(self) -> None:
        """Start every worker now rather than on the first jobs."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _warm) for _ in range(self.workers)))

    async def render(self, data: bytes, job: JobMessage, limits: Limits, deadline: float | None) -> Rendered:
        executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, render_in_worker, data, job, limits, deadline)
        except BrokenProcessPool:
            if executor is self._executor:
                log.error("a render worker died; replacing the process pool")
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self, abandon: bool = False) -> None:
        """Stop the workers; `abandon`: kill them mid-render (their jobs were handed back)."""
        if not abandon:
            self._executor.shutdown(wait=True, cancel_futures=True)
            return
        processes = list((self._executor._processes or {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()  # SIGKILL: workers ignore SIGTERM
        for process in processes:
            process.join(5)
