"""The OpenAPI 3 document of the ingest API, served at /openapi.json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imagepipe.jobstore.deliveries import ABANDONED, DELIVERED, PENDING
from imagepipe.service.state import ingest
from imagepipe.service.upload import MAX_FIELD_BYTES
from imagepipe.webhooks.events import EVENT_TYPES


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"$ref": "#/components/responses/" + description}


ERRORS = {
    "400": _error("BadRequest"),
    "401": _error("Unauthorized"),
    "503": _error("Unavailable"),
}
UPLOAD_ERRORS = {
    **ERRORS,
    "429": _error("RateLimited"),
    "408": _error("Timeout"),
    "409": _error("Conflict"),
    "413": _error("TooLarge"),
    "415": _error("UnsupportedFormat"),
    "422": _error("CorruptImage"),
}
JOB_ERRORS = {**ERRORS, "404": _error("NotFound")}
UUID4 = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {}]
JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": UUID4},
    "description": "A job id returned by an upload (a lowercase UUID4)",
}
BINARY = {"schema": {"type": "string", "format": "binary"}}


def upload_body(pipelines: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "description": "A JPEG, PNG or WebP image (judged by its bytes, not its name or Content-Type)",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "pipeline": {"type": "string", "enum": pipelines, "maxLength": MAX_FIELD_BYTES},
                        "focus": FOCUS,
                    },
                }
            },
            "image/jpeg": BINARY,
            "image/png": BINARY,
            "image/webp": BINARY,
            "application/octet-stream": BINARY,
        },
    }


# Two numbers from 0 to 1; outside that range (or not numbers) is 400 bad_request.
FOCUS: dict[str, Any] = {
    "type": "string",
    "pattern": "^(0(\\.[0-9]+)?|1(\\.0+)?),(0(\\.[0-9]+)?|1(\\.0+)?)$",
    "description": "Focal point `x,y` (0..1 of the image as oriented): every cover crop keeps it as "
    "centred as the image allows, whatever the variant's gravity; a multipart `focus` field overrides it",
}


def upload_parameters(pipelines: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": "focus", "in": "query", "required": False, "schema": FOCUS},
        {
            "name": "pipeline",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": pipelines},
            "description": "Pipeline name (default `default`); a multipart `pipeline` field overrides it",
        },
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
            "description": "Repeat-safe uploads: the same key and body within 24 h return the first job",
        },
    ]


LOCATION = {"Location": {"schema": {"type": "string"}, "description": "The job's status URL"}}
RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait before retrying"}
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Accepted": {
        "type": "object",
        "required": ["job_id", "status", "status_url"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["queued", "processing", "completed", "failed"]},
            "status_url": {"type": "string"},
        },
    },
    "Variant": {
        "type": "object",
        "required": ["url", "width", "height"],
        "properties": {
            "url": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "format": {"type": "string"},
            "method": {"type": "string", "enum": ["cover", "fit"]},
            "bytes": {"type": "integer"},
            "crop": {
                "type": "object",
                "description": "The region of the oriented source shown (the whole of it for fit)",
                "properties": {k: {"type": "integer"} for k in ("x", "y", "width", "height")},
            },
        },
    },
    "Job": {
        "type": "object",
        "required": ["job_id", "status", "pipeline", "spec", "source", "variants", "created_at"],
        "properties": {
            "job_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["queued", "processing", "completed", "failed"]},
            "pipeline": {"type": "string"},
            "spec": {"type": "string", "description": "Spec hash: names the variants' keys"},
            "source": {
                "type": "object",
                "properties": {
                    "format": {"type": "string", "enum": ["jpeg", "png", "webp"]},
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                    "frames": {"type": "integer"},
                    "bytes": {"type": "integer"},
                },
            },
            "variants": {"type": "object", "additionalProperties": _ref("Variant")},
            "error": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    },
                ]
            },
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": ["string", "null"]},
            "completed_at": {"type": ["string", "null"]},
            "attempts": {"type": "integer"},
            "owner": {"type": ["string", "null"], "description": "The API key id that created the job"},
            "focus": {
                "type": ["object", "null"],
                "description": "The focal point given at upload",
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            },
            "srcset": {
                "type": "object",
                "description": "Per output format, a srcset of the fit variants (URL 800w, URL 1920w)",
                "additionalProperties": {"type": "string"},
            },
            "deliveries": {
                "type": "array",
                "description": "With webhooks on: each event's delivery, oldest first ([] before the first "
                "attempt); absent with webhooks off",
                "items": _ref("Delivery"),
            },
            "placeholder": {
                "type": ["object", "null"],
                "description": "ThumbHash, BlurHash, colours and LQIP once completed (docs/frontend.md)",
                "properties": {
                    k: {"type": "string"}
                    for k in ("thumbhash", "blurhash", "dominant_color", "average_color", "lqip")
                },
            },
        },
    },
    "Delivery": {
        "type": "object",
        "description": "One webhook event's delivery so far (docs/design.md, Webhooks)",
        "required": ["id", "event", "state", "attempts"],
        "properties": {
            "id": {"type": "string", "description": "The event id: the webhook-id header it is sent with"},
            "event": {"type": "string", "enum": list(EVENT_TYPES)},
            "state": {"type": "string", "enum": [PENDING, DELIVERED, ABANDONED]},
            "attempts": {"type": "integer"},
            "first_attempt_at": {"type": ["string", "null"]},
            "last_attempt_at": {"type": ["string", "null"]},
            "last_result": {
                "type": ["object", "null"],
                "description": "`status`: the receiver's HTTP status; `error`: why there was none",
                "properties": {"status": {"type": "integer"}, "error": {"type": "string"}},
            },
            "next_attempt_at": {"type": ["string", "null"]},
            "delivered_at": {"type": ["string", "null"]},
        },
    },
    "LegacyUpload": {
        "type": "object",
        "required": ["job_id", "status", "status_url"],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"type": "string", "enum": ["processing", "completed", "failed"]},
            "status_url": {"type": "string"},
        },
    },
    "LegacyStatus": {
        "type": "object",
        "required": ["job_id", "status", "results", "error"],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"type": "string", "enum": ["processing", "completed", "failed"]},
            "results": {"type": "object", "additionalProperties": _ref("Variant")},
            "error": {"type": ["string", "null"]},
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
}

RESPONSES: dict[str, Any] = {
    "BadRequest": _json(_ref("Error"), "Malformed request, job id, field or pipeline name"),
    "Unauthorized": _json(_ref("Error"), "Missing or invalid API key"),
    "NotFound": _json(_ref("Error"), "No such job (or another API key's)"),
    "Timeout": _json(_ref("Error"), "The upload did not arrive within the upload timeout"),
    "Conflict": _json(
        _ref("Error"),
        "Idempotency-Key reused with a different upload (idempotency_conflict), or another request "
        "with this key is still creating its job (idempotency_in_progress; retry after Retry-After)",
        RETRY_AFTER,
    ),
    "TooLarge": _json(_ref("Error"), "Body over the byte cap, or image over the pixel limit"),
    "UnsupportedFormat": _json(_ref("Error"), "Not a JPEG, PNG or WebP image"),
    "CorruptImage": _json(_ref("Error"), "The image cannot be read, or its layout is too costly to decode"),
    "Unavailable": _json(
        _ref("Error"),
        "Storage or queue unavailable (backend_unavailable), or this ingest's upload budget is full "
        "(overloaded), or it is shutting down (readiness only); retry later",
        RETRY_AFTER,
    ),
    "RateLimited": _json(
        _ref("Error"), "This API key's share of the ingest is used up; retry later", RETRY_AFTER
    ),
}


def _upload(summary: str, ok: dict[str, Any], pipelines: list[str]) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": SECURITY,
        "parameters": upload_parameters(pipelines),
        "requestBody": upload_body(pipelines),
        "responses": {**ok, **UPLOAD_ERRORS},
    }


def document(pipelines: list[str]) -> dict[str, Any]:
    """The document for a server with these pipeline names."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "imagepipe ingest", "version": "1"},
        "paths": {
            "/v1/images": {
                "post": _upload(
                    "Upload an image; it is turned into web-ready variants",
                    {
                        "202": _json(_ref("Accepted"), "Job created", LOCATION),
                        "200": _json(_ref("Accepted"), "Idempotent repeat: the earlier job", LOCATION),
                    },
                    pipelines,
                )
            },
            "/v1/images/{job_id}": {
                "parameters": [JOB_ID],
                "get": {
                    "summary": "The job's status document with variant URLs",
                    "security": SECURITY,
                    "responses": {"200": _json(_ref("Job"), "Status document"), **JOB_ERRORS},
                },
                "delete": {
                    "summary": "Delete the original, the variants and the status",
                    "security": SECURITY,
                    "responses": {"204": {"description": "Deleted"}, **JOB_ERRORS},
                },
            },
            "/images/upload": {
                "post": _upload(
                    "Product-spec compatible upload",
                    {"200": _json(_ref("LegacyUpload"), "Job created")},
                    pipelines,
                )
            },
            "/images/status/{job_id}": {
                "parameters": [JOB_ID],
                "get": {
                    "summary": "Product-spec compatible status",
                    "security": SECURITY,
                    "responses": {"200": _json(_ref("LegacyStatus"), "Job status"), **JOB_ERRORS},
                },
            },
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": _json(_ref("Health"), "Alive")}}},
            "/readyz": {
                "get": {
                    "summary": "Accepting, room in the upload budget, and the last S3/SQS check passed",
                    "responses": {"200": _json(_ref("Health"), "Ready"), "503": _error("Unavailable")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "Metrics", "content": {"text/plain": {"schema": {}}}}
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI", "content": {"application/json": {}}}},
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(sorted(ingest(request).pipelines)))
