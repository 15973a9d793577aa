"""The product spec's original routes and response shapes, for existing clients:
`POST /images/upload` → `{job_id, status, status_url}` (200, status
`processing` while the job waits or runs) and `GET /images/status/{job_id}`
→ `{job_id, status, results, error}` with `error` a string or null."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from imagepipe.service.images import accept_upload, load_job

# The original API knew processing, completed and failed.
LEGACY_STATUS = {"queued": "processing", "processing": "processing"}


def legacy_status(status: str) -> str:
    return LEGACY_STATUS.get(status, status)


async def upload(request: web.Request) -> web.Response:
    accepted = await accept_upload(request)
    return web.json_response(
        {
            "job_id": accepted.job_id,
            "status": legacy_status(accepted.status),
            "status_url": f"/images/status/{accepted.job_id}",
        }
    )


async def get_status(request: web.Request) -> web.Response:
    _, doc = await load_job(request)
    variants = doc.get("variants") or {}
    results: dict[str, Any] = {
        name: {"url": v.get("url"), "width": v.get("width"), "height": v.get("height")}
        for name, v in variants.items()
        if isinstance(v, dict)
    }
    error = doc.get("error")
    return web.json_response(
        {
            "job_id": doc["job_id"],
            "status": legacy_status(str(doc.get("status"))),
            "results": results,
            "error": error.get("message") if isinstance(error, dict) else None,
        }
    )
