"""The CRD's OpenAPI v3 schema, read from the shipped YAML, applied in code.

The operator applies the schema's defaults and checks its types, enums and
bounds itself (the subset the CRD uses), so a pipeline behaves the same
whether or not the API server defaulted or validated it (kmock does neither).
"""

from __future__ import annotations

import copy
import functools
import re
from importlib import resources
from typing import Any

import yaml

GROUP = "imagepipe.io"
VERSION = "v1alpha1"
KIND = "ImagePipeline"
PLURAL = "imagepipelines"

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def crd_text() -> str:
    return resources.files("imagepipe.operator").joinpath("crd/imagepipelines.yaml").read_text()


@functools.cache
def crd() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(crd_text())
    return data


def openapi_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the served version (a fresh copy)."""
    version = next(v for v in crd()["spec"]["versions"] if v["name"] == VERSION)
    return copy.deepcopy(version["schema"]["openAPIV3Schema"])


def spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = openapi_schema()["properties"]["spec"]
    return schema


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """A copy of `value` with the schema's defaults filled in, as the API server would."""
    value = copy.deepcopy(value)
    _default_in_place(schema, value)
    return value


def _default_in_place(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default_in_place(sub, value[key])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default_in_place(schema["items"], item)


def problems(schema: dict[str, Any], value: Any, where: str = "spec") -> list[str]:
    """Every violation of the schema's types, enums, bounds and required fields."""
    if schema.get("x-kubernetes-int-or-string"):
        ok = _is(value, "integer") or isinstance(value, str)
        return [] if ok else [f"{where}: expected an integer or string"]
    expected = schema.get("type")
    if expected and not _is(value, expected):
        return [f"{where}: expected {expected}, got {type(value).__name__} {value!r}"]
    found = _scalar_problems(schema, value, where)
    if isinstance(value, dict):
        found += _object_problems(schema, value, where)
    elif isinstance(value, list):
        found += _array_problems(schema, value, where)
    return found


def _is(value: Any, expected: str) -> bool:
    if isinstance(value, bool) and expected != "boolean":
        return False
    return isinstance(value, _TYPES[expected])


def _scalar_problems(schema: dict[str, Any], value: Any, where: str) -> list[str]:
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: expected one of {schema['enum']}, got {value!r}")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        found.append(f"{where}: must be at least {schema['minimum']}, got {value!r}")
    if "maximum" in schema and isinstance(value, int | float) and value > schema["maximum"]:
        found.append(f"{where}: must be at most {schema['maximum']}, got {value!r}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            found.append(f"{where}: length out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']}")
    return found


def _object_problems(schema: dict[str, Any], value: dict[str, Any], where: str) -> list[str]:
    found = [f"{where}.{key}: required" for key in schema.get("required", []) if key not in value]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for key, sub_value in value.items():
        if key in properties:
            found += problems(properties[key], sub_value, f"{where}.{key}")
        elif isinstance(extra, dict):
            found += problems(extra, sub_value, f"{where}.{key}")
        elif properties and not schema.get("x-kubernetes-preserve-unknown-fields"):
            found.append(f"{where}.{key}: unknown field")
    return found


def _array_problems(schema: dict[str, Any], value: list[Any], where: str) -> list[str]:
    found = []
    if len(value) < schema.get("minItems", 0):
        found.append(f"{where}: needs at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        found.append(f"{where}: at most {schema['maxItems']} items")
    for i, item in enumerate(value):
        found += problems(schema.get("items", {}), item, f"{where}[{i}]")
    return found
