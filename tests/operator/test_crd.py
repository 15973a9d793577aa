"""The shipped CRD: its schema accepts the examples and rejects broken specs,
both as a JSON-schema validator sees it and as the operator checks it in code."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from imagepipe.operator.imagepipeline import IngestService, InvalidPipeline, Slo, parse_imagepipeline
from imagepipe.operator.schema import crd, openapi_schema
from imagepipe.slo import LATENCY_BUCKETS

from .conftest import example


def validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(openapi_schema())


def test_crd_identity_and_shape() -> None:
    data = crd()
    assert data["apiVersion"] == "apiextensions.k8s.io/v1"
    assert data["metadata"]["name"] == "imagepipelines.imagepipe.io"
    spec = data["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "imagepipe.io",
        "Namespaced",
        "ImagePipeline",
    )
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["storage"] and version["subresources"] == {"status": {}}
    columns = {c["name"] for c in version["additionalPrinterColumns"]}
    assert {"Phase", "Replicas", "Backlog", "P95", "SLO"} <= columns


def test_slo_enum_is_the_latency_buckets() -> None:
    slo = openapi_schema()["properties"]["spec"]["properties"]["slo"]["properties"]
    assert tuple(slo["latencySeconds"]["enum"]) == LATENCY_BUCKETS
    assert slo["latencySeconds"]["default"] == 30
    assert (slo["target"]["minimum"], slo["target"]["maximum"], slo["target"]["default"]) == (
        0.9,
        0.99999,
        0.99,
    )


@pytest.mark.parametrize("name", ["minimal.yaml", "full.yaml"])
def test_examples_pass(name: str) -> None:
    body = example(name)
    validator().validate(body)
    parse_imagepipeline(body)


def _variant(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        spec["variants"][0][field] = value

    return change


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            spec = spec.setdefault(key, {})
        spec[last] = value

    return change


BROKEN: dict[str, Callable[[dict[str, Any]], None]] = {
    "negative width": _variant("width", -150),
    "zero height": _variant("height", 0),
    "unknown method": _variant("method", "stretch"),
    "unknown format": _variant("format", "gif"),
    "string width": _variant("width", "150"),
    "quality above 100": _variant("quality", 101),
    "latency not a bucket": _set("slo.latencySeconds", 31),
    "target too low": _set("slo.target", 0.5),
    "string replicas": _set("scaling.maxReplicas", "ten"),
    "negative upload limit": _set("limits.maxUploadBytes", -1),
    "unknown engine": _set("scaling.engine", "hpa"),
    "bad bucket name": _set("backend.bucket", "Not_A_Bucket"),
    "no image": lambda spec: spec.pop("image"),
    "webhook without a secret": lambda spec: spec["webhook"].pop("secretRef"),
    "webhook over ftp": _set("webhook.url", "ftp://hooks.example.com/"),
    "webhook event unknown": _set("webhook.events", ["image.viewed"]),
    "webhook horizon past 13 days": _set("webhook.horizonSeconds", 13 * 24 * 3600 + 1),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_specs_fail_both_validators(case: str) -> None:
    body = copy.deepcopy(example("full.yaml"))
    BROKEN[case](body["spec"])
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(body)
    with pytest.raises(InvalidPipeline):
        parse_imagepipeline(body)


def test_operator_defaults_everything(minimal: dict[str, Any]) -> None:
    p = parse_imagepipeline(minimal)
    assert [v.name for v in p.pipelines["default"].variants] == ["thumbnail", "medium", "large"]
    assert p.slo == Slo(latency_seconds=30.0, target=0.99)
    assert p.scaling.engine == "builtin" and p.scaling.min_replicas == 1
    assert p.ingest.service == IngestService(type="ClusterIP", port=80)
    assert p.ingest.ingress is None and p.ingest.api_keys_secret is None
    assert p.backend.provision is False and p.backend.max_receives == 5
    assert p.backend.dead_letter_queue == f"{p.backend.queue}-dlq"
    assert p.key == "default/photos"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set("scaling.minReplicas", 5), r"^spec\.scaling\.maxReplicas: must be ≥ minReplicas \(2 < 5\)$"),
        (_set("backend.deadLetterQueue", "photos-jobs"), r"^spec\.backend\.deadLetterQueue: must differ"),
        (
            lambda spec: spec.__setitem__(
                "variants", [{"name": "a", "width": 1, "height": 1, "method": "fit"}] * 2
            ),
            "duplicate",
        ),
    ],
)
def test_impossible_specs_are_invalid(
    minimal: dict[str, Any], change: Callable[[dict[str, Any]], None], reason: str
) -> None:
    minimal["spec"].setdefault("scaling", {})["maxReplicas"] = 2
    change(minimal["spec"])
    with pytest.raises(InvalidPipeline, match=reason):
        parse_imagepipeline(minimal)


def test_name_too_long_for_children(minimal: dict[str, Any]) -> None:
    minimal["metadata"]["name"] = "a" * 60
    with pytest.raises(InvalidPipeline) as caught:
        parse_imagepipeline(minimal)
    assert caught.value.reason == "InvalidName"


def test_crd_ships_in_the_package() -> None:
    from importlib import resources

    assert resources.files("imagepipe.operator").joinpath("crd/imagepipelines.yaml").is_file()


@pytest.mark.parametrize(
    ("ingest", "reason"),
    [
        ({"ingress": {"host": "img.example.com"}}, "InsecureIngress"),
        ({"ingress": {"host": "img.example.com"}, "auth": "apiKeys"}, "InsecureIngress"),
        ({"auth": "none", "apiKeysSecret": {"name": "keys"}}, "InvalidSpec"),
        ({"ingress": {"host": "img.example.com"}, "auth": "none"}, None),
        ({"ingress": {"host": "img.example.com"}, "apiKeysSecret": {"name": "keys"}}, None),
        ({}, None),  # no Ingress: reachable only inside the cluster
    ],
)
def test_an_ingress_needs_keys_unless_it_says_auth_none(
    minimal: dict[str, Any], ingest: dict[str, Any], reason: str | None
) -> None:
    minimal["spec"]["ingest"] = ingest
    if reason is None:
        assert parse_imagepipeline(minimal).ingest.auth == ingest.get("auth", "apiKeys")
        return
    with pytest.raises(InvalidPipeline) as caught:
        parse_imagepipeline(minimal)
    assert caught.value.reason == reason and "spec.ingest" in caught.value.message
