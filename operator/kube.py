"""A small Kubernetes API client over aiohttp, from kopf's login credentials
(kopf has no public client; this keeps the operator free of another SDK).

GET, POST, merge PATCH and DELETE of single objects by path; what to send is
decided by `ownership.plan`. Why merge patches rather than server-side apply:
see docs/design.md, "Ownership of children".
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from typing import Any

import aiohttp
import kopf

PLURALS = {
    "ConfigMap": "configmaps",
    "Service": "services",
    "Secret": "secrets",
    "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
    "PrometheusRule": "prometheusrules",
    "ScaledObject": "scaledobjects",
    "TriggerAuthentication": "triggerauthentications",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    """`/api/v1/namespaces/NS/configmaps` and the like."""
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{PLURALS[kind]}"


def object_path(manifest: dict[str, Any], name: str | None = None) -> str:
    """`/api/v1/namespaces/NS/configmaps[/NAME]` for a manifest."""
    path = collection_path(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"])
    return f"{path}/{name}" if name else path


def _data(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else base64.b64decode(value)


def ssl_context(info: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if info.insecure:
        return False
    context = ssl.create_default_context(cafile=str(info.ca_path) if info.ca_path else None)
    if info.ca_data:
        context.load_verify_locations(cadata=_data(info.ca_data).decode())
    cert = info.certificate_path
    key = info.private_key_path
    if info.certificate_data and info.private_key_data:
        with tempfile.NamedTemporaryFile(delete=False) as c, tempfile.NamedTemporaryFile(delete=False) as k:
            c.write(_data(info.certificate_data))
            k.write(_data(info.private_key_data))
        cert, key = c.name, k.name
    if cert:
        context.load_cert_chain(str(cert), str(key) if key else None)
    return context


class Kube:
    """GET, POST, merge PATCH and DELETE against the API server of one ConnectionInfo."""

    def __init__(self, info: kopf.ConnectionInfo) -> None:
        headers = {}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        auth = aiohttp.BasicAuth(info.username, info.password or "") if info.username else None
        connector = aiohttp.TCPConnector(ssl=ssl_context(info))
        timeout = aiohttp.ClientTimeout(total=30)
        self.server = info.server.rstrip("/")
        self.session = aiohttp.ClientSession(headers=headers, auth=auth, connector=connector, timeout=timeout)

    async def close(self) -> None:
        await self.session.close()

    async def request(self, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
        """The response object; None for 404."""
        content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
        async with self.session.request(
            method, self.server + path, json=body, headers={"Content-Type": content_type}
        ) as response:
            if response.status == 404:
                return None
            if response.status >= 400:
                raise ApiError(response.status, await response.text())
            result: dict[str, Any] = await response.json(content_type=None)
            return result

    async def exists(self, path: str) -> bool:
        return await self.request("GET", path) is not None

    async def create(self, manifest: dict[str, Any]) -> None:
        await self.request("POST", object_path(manifest), manifest)

    async def patch(self, manifest: dict[str, Any]) -> None:
        """Merge-patch an object that must exist (404 is an error: it went meanwhile)."""
        path = object_path(manifest, manifest["metadata"]["name"])
        if await self.request("PATCH", path, manifest) is None:
            raise ApiError(404, f"{path} disappeared before its patch")

    async def delete(self, path: str, uid: str) -> None:
        """Delete one object if it is still the one we saw (uid precondition); gone already is fine."""
        body = {"propagationPolicy": "Background", "preconditions": {"uid": uid}}
        await self.request("DELETE", path, body)
