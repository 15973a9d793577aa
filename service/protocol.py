"""Requests aiohttp's HTTP parser refuses (bad request line, header or chunk
framing) answered with our JSON error, logged as one line without a traceback.

aiohttp answers those itself, in plain text, and logs them at ERROR with the
parser's traceback: an internet-facing port sees them all day. Its request
handler has no hook for that answer, so the runner builds a handler subclass.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

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
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started; cannot send the error")
        response = error_response(malformed_error(status, exc))
        response.force_close()
        return response


class _IngestServer(web.Server):
    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class IngestRunner(web.AppRunner):
    """AppRunner whose connections use JsonErrorRequestHandler."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds its Server (private wiring); only the
        # handler factory differs, and _IngestServer adds no state.
        server.__class__ = _IngestServer
        return server
