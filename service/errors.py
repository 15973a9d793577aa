"""Every error a client sees is `{"error": {"code", "message"}}` with the right
status; no stack trace ever reaches a client."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

from imagepipe.errors import ImagePipeError

log = logging.getLogger("imagepipe.service")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_format",
}


class ApiError(Exception):
    """An error answered as JSON: status, stable code, message, extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def as_api_error(exc: ImagePipeError) -> ApiError:
    headers = {} if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    return ApiError(exc.status, exc.code, exc.message, headers)


def error_response(error: ApiError) -> web.Response:
    response = web.json_response(
        {"error": {"code": error.code, "message": error.message}}, status=error.status
    )
    response.headers.update(error.headers)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except ImagePipeError as exc:
        return error_response(as_api_error(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "bad_request" if exc.status < 500 else "internal")
        error = ApiError(exc.status, code, exc.reason)
        if exc.status == 405 and "Allow" in exc.headers:
            error.headers["Allow"] = exc.headers["Allow"]
        return error_response(error)
    except Exception:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_response(ApiError(500, "internal", "internal error"))
