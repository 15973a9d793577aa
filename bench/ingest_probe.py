"""`imagepipe serve` with measurement hooks, for bench/ingest_load.py only.

    .venv/bin/python bench/ingest_probe.py serve --host 127.0.0.1 --port 8080

Runs the product's own `imagepipe serve` (imagepipe.cli.main) unchanged, after
installing three hooks that attribute time to each accepted upload:

* a middleware (outermost but one) that times the request in wall-clock time
  and gives the request a `Cell` through a context variable;
* a wrapper of `read_upload` (the time to receive and parse the body);
* a wrapper of `Objects.call` (the single place where the ingest awaits S3
  or SQS) that adds the wall time of each backend call to the cell;
* a task factory that measures the CPU time of the event-loop thread during
  every step of every task (time.thread_time around `coro.send`), charged to
  the cell of the request the task is serving, split into CPU spent inside a
  backend call (aiobotocore: serialising, signing, hashing the 1 MB body) and
  outside it (streaming, multipart, libmagic, header probe, JSON, logging).

Per accepted upload it records: total (handler wall time), body (of which
reading the upload), backend (wall time awaiting S3/SQS calls), bytes,
cpu_own and cpu_backend. GET /_bench/samples?since=N
returns them as JSON. The hooks cost about 1 µs per task step.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Coroutine, Generator
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from imagepipe import cli
from imagepipe.jobstore.objects import Objects
from imagepipe.service import images
from imagepipe.service import serve as serve_module

UPLOAD_ROUTES = ("/v1/images", "/images/upload")


@dataclass
class Cell:
    total: float = 0.0
    body: float = 0.0  # wall time reading the upload (waiting for the client's bytes included)
    backend: float = 0.0
    bytes: int = 0
    cpu_own: float = 0.0
    cpu_backend: float = 0.0
    in_backend: bool = False
    mark: float = 0.0  # thread_time at the last boundary while a step of its task runs

    def charge(self) -> None:
        now = time.thread_time()
        if self.in_backend:
            self.cpu_backend += now - self.mark
        else:
            self.cpu_own += now - self.mark
        self.mark = now


CELL: contextvars.ContextVar[Cell | None] = contextvars.ContextVar("bench_cell", default=None)
SAMPLES: list[dict[str, float]] = []


class Timed(Coroutine[Any, Any, Any]):
    """A coroutine wrapper that charges the CPU time of each step to the request's cell."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro

    def _step(self, method: str, *args: Any) -> Any:
        before = CELL.get()
        if before is not None:
            before.mark = time.thread_time()
        try:
            return getattr(self.coro, method)(*args)
        finally:
            # A cell created during this step (by the middleware) counts from its creation.
            cell = CELL.get() or before
            if cell is not None:
                cell.charge()

    def send(self, value: Any) -> Any:
        return self._step("send", value)

    def throw(self, *args: Any) -> Any:
        return self._step("throw", *args)

    def close(self) -> None:
        self.coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.coro.__await__()


def task_factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
    import asyncio

    return asyncio.Task(Timed(coro), loop=loop, **kwargs)


@web.middleware
async def probe_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.method != "POST" or request.path not in UPLOAD_ROUTES:
        return await handler(request)
    cell = Cell(mark=time.thread_time())
    token = CELL.set(cell)
    started = time.perf_counter()
    status = 0
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        cell.total = time.perf_counter() - started
        cell.charge()
        CELL.reset(token)
        if status == 202:
            sample = asdict(cell)
            del sample["in_backend"], sample["mark"]
            SAMPLES.append(sample)


async def samples(request: web.Request) -> web.Response:
    since = int(request.query.get("since", "0"))
    return web.json_response({"count": len(SAMPLES), "samples": SAMPLES[since:]})


_call = Objects.call
_read_upload = images.read_upload


async def timed_read_upload(request: web.Request, cap: int, charge: Any) -> Any:
    cell = CELL.get()
    started = time.perf_counter()
    try:
        upload = await _read_upload(request, cap, charge)
    finally:
        if cell is not None:
            cell.body += time.perf_counter() - started
    if cell is not None:
        cell.bytes = len(upload.data)
    return upload


async def timed_call(self: Objects, what: str, call: Any) -> Any:
    cell = CELL.get()
    if cell is None:
        return await _call(self, what, call)
    cell.charge()
    cell.in_backend = True
    started = time.perf_counter()
    try:
        return await _call(self, what, call)
    finally:
        cell.backend += time.perf_counter() - started
        cell.charge()
        cell.in_backend = False


def install() -> None:
    create_app, serve = serve_module.create_app, serve_module.serve

    def create_app_probed(*args: Any, **kwargs: Any) -> web.Application:
        app = create_app(*args, **kwargs)
        app.middlewares.insert(0, probe_middleware)
        app.router.add_get("/_bench/samples", samples)
        return app

    async def serve_probed(*args: Any, **kwargs: Any) -> Any:
        import asyncio

        asyncio.get_running_loop().set_task_factory(task_factory)
        return await serve(*args, **kwargs)

    Objects.call = timed_call  # type: ignore[method-assign]
    images.read_upload = timed_read_upload  # type: ignore[assignment]
    serve_module.create_app = create_app_probed  # type: ignore[assignment]
    serve_module.serve = serve_probed  # type: ignore[assignment]


if __name__ == "__main__":
    install()
    sys.exit(cli.main())
