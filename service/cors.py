"""CORS for browser uploads: only the configured origins (none by default)."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from imagepipe.service.errors import ApiError, error_response

ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, traceparent"
# What a page's script may read: where the job is, when to retry, and which
# scheme a 401 asks for.
EXPOSE_HEADERS = "Location, Retry-After, WWW-Authenticate"
MAX_AGE_SECONDS = "600"


def allowed_methods(request: web.Request) -> list[str]:
    """The methods the requested path serves (empty: no such route)."""
    exc = request.match_info.http_exception
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return sorted(m for m in exc.allowed_methods if m != "HEAD")
    if exc is not None:
        return []
    return [request.method]


def cors_middleware(origins: Iterable[str]) -> Middleware:
    allowed = frozenset(o.rstrip("/") for o in origins)

    def allows(origin: str | None) -> bool:
        return origin is not None and ("*" in allowed or origin.rstrip("/") in allowed)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            methods = allowed_methods(request)
            if not methods:
                return error_response(ApiError(404, "not_found", "no such route"))
            response: web.StreamResponse = web.Response(status=204, headers={"Vary": "Origin"})
            if allows(origin):
                response.headers.update(
                    {
                        "Access-Control-Allow-Origin": origin or "",
                        "Access-Control-Allow-Methods": ", ".join(methods),
                        "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": MAX_AGE_SECONDS,
                    }
                )
            return response
        response = await handler(request)
        if allows(origin):
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        if allowed:
            response.headers["Vary"] = "Origin"
        return response

    return middleware
