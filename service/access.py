"""One structured access line per request. The path and user agent are the
client's strings: they go out only as JSON values (escaped), never raw."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

log = logging.getLogger("imagepipe.access")


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "bytes_sent": response.body_length,
                "duration_ms": round(time * 1000, 2),
                "remote": request.remote,
                "user_agent": request.headers.get("User-Agent", "")[:200],
            },
        )

    @property
    def enabled(self) -> bool:
        return log.isEnabledFor(logging.INFO)
