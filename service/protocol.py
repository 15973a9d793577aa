"""Requests aiohttp's HTTP parser refuses (bad request line, header or chunk
framing) answered with our JSON error, logged as one line without a traceback.

aiohttp answers those itself, in plain text, and logs them at ERROR with the
parser's traceback: an internet-facing port sees them all day. Its request
handler has no hook for that answer, so the runner builds a handler subclass.
They never reach the application's middlewares either, so the handler
reports each one (`on_malformed`) for the request metrics to count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from imagepipe.service.errors import ApiError, error_response

log = logging.getLogger("imagepipe.service")


def malformed_error(status: int, exc: BaseException | None) -> ApiError:
    """The client's error for a request the parser refused; the parser's
    message may quote the client's bytes, so only its kind is named."""
    kind = type(exc).__name__ if exc is not None else HTTPStatus(status).phrase
    code = "too_large" if status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE else "bad_request"
    return ApiError(status, code, f"malformed HTTP request ({kind})")


class JsonErrorRequestHandler(RequestHandler):
    def __init__(self, *args: Any, on_malformed: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_malformed = on_malformed

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:  # our own fault: keep aiohttp's answer and its traceback
            return super().handle_error(request, status, exc, message)
        log.info(
            "malformed request refused",
            extra={"remote": request.remote, "status": status, "error": type(exc).__name__},
        )
        self._on_malformed(status)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started; cannot send the error")
        response = error_response(malformed_error(status, exc))
        response.force_close()
        return response


class _IngestServer(web.Server):
    on_malformed: Callable[[int], None]

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, on_malformed=self.on_malformed, **self._kwargs)


class IngestRunner(web.AppRunner):
    """AppRunner whose connections use JsonErrorRequestHandler; `on_malformed`
    is called with the status of every request the parser refused."""

    def __init__(self, app: web.Application, *, on_malformed: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._on_malformed = on_malformed

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds its Server (private wiring); only the
        # handler factory differs, and the callback it hands each handler.
        server.__class__ = _IngestServer
        assert isinstance(server, _IngestServer)
        server.on_malformed = self._on_malformed
        return server
