"""The HTTP side of a queue-consuming role (the consumer, the deliverer):
/metrics for Prometheus and /healthz for the kubelet. /healthz answers 503
once the poll loop has not come round for `stall_seconds` (a long poll plus
a timed-out request take under a minute), so a wedged process is restarted;
a backend outage alone does not stall it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector


@dataclass
class Liveness:
    stall_seconds: float
    last_tick: float = field(default_factory=time.monotonic)
    # Draining after SIGTERM: the loop has stopped on purpose.
    stopping: bool = False

    def tick(self) -> None:
        self.last_tick = time.monotonic()

    def stalled_for(self) -> float:
        return 0.0 if self.stopping else max(0.0, time.monotonic() - self.last_tick)

    def healthy(self) -> bool:
        return self.stalled_for() < self.stall_seconds


def build_app(liveness: Liveness, registry: Collector) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        stalled = round(liveness.stalled_for(), 1)
        if liveness.healthy():
            return web.json_response({"status": "ok", "poll_loop_idle_seconds": stalled})
        return web.json_response({"status": "stalled", "poll_loop_idle_seconds": stalled}, status=503)

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:
        bound = int(address[1])
    return runner, bound
