"""A small Kubernetes API client over aiohttp, from kopf's login credentials
(kopf has no public client; this keeps the operator free of another SDK).

`apply` makes a child match its manifest idempotently: create when missing,
else a merge patch when it drifted (lists are replaced whole, so containers,
env and ports come back). Fields listed as create-only are left alone after
creation (the consumer's `spec.replicas`, owned by the autoscaler).
"""

from __future__ import annotations

import base64
import copy
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
    "PrometheusRule": "prometheusrules",
    "ScaledObject": "scaledobjects",
    "TriggerAuthentication": "triggerauthentications",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def object_path(manifest: dict[str, Any], name: str | None = None) -> str:
    """`/api/v1/namespaces/NS/configmaps[/NAME]` for a manifest."""
    api_version, kind = manifest["apiVersion"], manifest["kind"]
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{prefix}/namespaces/{manifest['metadata']['namespace']}/{PLURALS[kind]}"
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
    """GET, POST and merge PATCH against the API server of one ConnectionInfo."""

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

    async def apply(self, manifest: dict[str, Any], create_only: tuple[str, ...] = ()) -> str:
        """Create or correct one object; returns created, patched or unchanged."""
        name = manifest["metadata"]["name"]
        current = await self.request("GET", object_path(manifest, name))
        if current is None:
            try:
                await self.request("POST", object_path(manifest), manifest)
                return "created"
            except ApiError as exc:
                if exc.status != 409:
                    raise
                current = await self.request("GET", object_path(manifest, name)) or {}
        desired = without(manifest, create_only)
        if is_subset(desired, current):
            return "unchanged"
        await self.request("PATCH", object_path(manifest, name), desired)
        return "patched"


def without(manifest: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """A copy without the dotted `paths` (e.g. "spec.replicas")."""
    result = copy.deepcopy(manifest)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = result
        for key in parents:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return result


def is_subset(desired: Any, actual: Any) -> bool:
    """Whether `actual` already has everything of `desired` (extra fields set by the server are fine)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(is_subset(v, actual.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)
