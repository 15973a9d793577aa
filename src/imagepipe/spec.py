"""Variant lists as data: what to render, at which size, in which format.

A VariantList is an ordered tuple of variants; its canonical JSON (sorted
keys) hashes to the spec hash that names its S3 keys, so a changed list
writes new objects instead of overwriting ones that CDNs cache as immutable.
A pipelines file names variant lists; on the wire (status documents,
messages, the upload form) that name is the `pipeline`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from PIL import features

from imagepipe.errors import InvalidSpec

Method = Literal["cover", "fit"]
# Where a cover crop sits: the centre, the most salient region (edges,
# saturation, skin tones) or the most detailed one (imagepipe.saliency).
Gravity = Literal["centre", "attention", "entropy"]
Format = Literal["webp", "jpeg", "png", "avif"]

METHODS: tuple[Method, ...] = ("cover", "fit")
GRAVITIES: tuple[Gravity, ...] = ("centre", "attention", "entropy")
FORMATS: tuple[Format, ...] = ("webp", "jpeg", "png", "avif")
EXTENSIONS: dict[str, str] = {"webp": "webp", "jpeg": "jpg", "png": "png", "avif": "avif"}
CONTENT_TYPES: dict[str, str] = {
    "webp": "image/webp",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "avif": "image/avif",
}
# WebP cannot encode more than 16383 pixels on a side (JPEG stops at 65500).
MAX_DIMENSION = 16383
DEFAULT_PIPELINE = "default"


@dataclass(frozen=True)
class Encoding:
    """Output format and encoder settings of one variant."""

    format: Format = "webp"
    # 1-100 for lossy formats; ignored by PNG.
    quality: int = 85
    # Encoder effort: WebP method 0-6, AVIF speed 0-10 (inverted), PNG zlib level 0-9.
    effort: int = 4
    # WebP and AVIF only: lossless instead of lossy.
    lossless: bool = False


@dataclass(frozen=True)
class Variant:
    """One output: a name, a box, how the image meets the box, and its encoding."""

    name: str
    width: int
    height: int
    # cover: centre-crop to the box's aspect ratio, then exactly the box.
    # fit: the largest size within the box, never larger than the source.
    method: Method
    encoding: Encoding = field(default_factory=Encoding)
    # cover only; the default stays out of to_data(), so that the spec hash
    # of pipelines without gravity does not change.
    gravity: Gravity = "centre"

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        if self.gravity == "centre":
            del data["gravity"]
        return data

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.encoding.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.encoding.format]


@dataclass(frozen=True)
class VariantList:
    """The variants one upload turns into."""

    variants: tuple[Variant, ...]
    # Whether completed jobs carry placeholders (imagepipe.placeholders). Not
    # part of the spec hash: it changes no variant's bytes.
    placeholder: bool = True

    def to_data(self) -> list[dict[str, Any]]:
        return [v.to_data() for v in self.variants]

    def to_file_data(self) -> list[dict[str, Any]] | dict[str, Any]:
        """As a pipelines file holds it: the variant list, or the mapping form
        when a pipeline-wide option differs from its default."""
        if self.placeholder:
            return self.to_data()
        return {"variants": self.to_data(), "placeholder": False}

    @cached_property
    def spec_hash(self) -> str:
        # The spec is immutable: hash it once, not on every upload.
        canonical = json.dumps(self.to_data(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @classmethod
    def from_data(cls, data: Any, where: str = "variants", placeholder: bool = True) -> VariantList:
        if not isinstance(data, list) or not data:
            raise InvalidSpec(f"{where}: expected a non-empty list of variants")
        variants = tuple(parse_variant(item, f"{where}[{i}]") for i, item in enumerate(data))
        names = [v.name for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidSpec(f"{where}: duplicate variant names {duplicates}")
        return cls(variants, placeholder)


DEFAULT_SPEC = VariantList(
    (
        Variant("thumbnail", 150, 150, "cover"),
        Variant("medium", 800, 600, "fit"),
        Variant("large", 1920, 1080, "fit"),
    )
)


def _int_in(data: Mapping[str, Any], key: str, where: str, lo: int, hi: int, default: int | None) -> int:
    value = data.get(key, default)
    if value is None:
        raise InvalidSpec(f"{where}.{key}: required, an integer from {lo} to {hi}")
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidSpec(f"{where}.{key}: expected an integer from {lo} to {hi}, got {value!r}")
    return value


def _choice(
    data: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: str | None
) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise InvalidSpec(f"{where}.{key}: expected one of {list(choices)}, got {value!r}")
    return str(value)


def parse_encoding(data: Any, where: str) -> Encoding:
    if not isinstance(data, Mapping):
        raise InvalidSpec(f"{where}: expected a mapping")
    unknown = set(data) - {"format", "quality", "effort", "lossless"}
    if unknown:
        raise InvalidSpec(f"{where}: unknown fields {sorted(unknown)}")
    fmt = _choice(data, "format", where, FORMATS, "webp")
    if fmt == "avif" and not features.check("avif"):
        # Refused here, not as an internal error at render time on every job.
        raise InvalidSpec(f"{where}.format: this build of Pillow cannot encode AVIF")
    max_effort = {"webp": 6, "avif": 10, "png": 9, "jpeg": 0}[fmt]
    default_effort = {"webp": 4, "avif": 6, "png": 6, "jpeg": 0}[fmt]
    lossless = data.get("lossless", False)
    if not isinstance(lossless, bool):
        raise InvalidSpec(f"{where}.lossless: expected true or false, got {lossless!r}")
    return Encoding(
        format=fmt,  # type: ignore[arg-type]
        quality=_int_in(data, "quality", where, 1, 100, 85),
        effort=_int_in(data, "effort", where, 0, max_effort, default_effort),
        lossless=lossless,
    )


def parse_variant(data: Any, where: str) -> Variant:
    if not isinstance(data, Mapping):
        raise InvalidSpec(f"{where}: expected a mapping")
    unknown = set(data) - {"name", "width", "height", "method", "encoding", "gravity"}
    if unknown:
        raise InvalidSpec(f"{where}: unknown fields {sorted(unknown)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
        raise InvalidSpec(f"{where}.name: expected a short identifier, got {name!r}")
    method = _choice(data, "method", where, METHODS, None)
    gravity = _choice(data, "gravity", where, GRAVITIES, "centre")
    if gravity != "centre" and method != "cover":
        raise InvalidSpec(f"{where}.gravity: only a cover variant has a crop to place")
    return Variant(
        name=name,
        width=_int_in(data, "width", where, 1, MAX_DIMENSION, None),
        height=_int_in(data, "height", where, 1, MAX_DIMENSION, None),
        method=method,  # type: ignore[arg-type]
        encoding=parse_encoding(data.get("encoding", {}), f"{where}.encoding"),
        gravity=gravity,  # type: ignore[arg-type]
    )


def parse_pipelines(data: Any, where: str) -> dict[str, VariantList]:
    """Pipelines file content: a mapping of pipeline name to its list of variants."""
    if not isinstance(data, Mapping) or not data:
        raise InvalidSpec(f"{where}: expected a mapping of pipeline name to variants")
    pipelines: dict[str, VariantList] = {}
    for name, pipeline in data.items():
        if not isinstance(name, str) or not name.replace("-", "_").isidentifier():
            raise InvalidSpec(f"{where}: invalid pipeline name {name!r}")
        pipelines[name] = parse_variant_list(pipeline, f"{where}: {name}")
    return pipelines


def parse_variant_list(data: Any, where: str) -> VariantList:
    """A list of variants, or a mapping of `variants` and `placeholder` (default true)."""
    if not isinstance(data, Mapping):
        return VariantList.from_data(data, where)
    unknown = set(data) - {"variants", "placeholder"}
    if unknown:
        raise InvalidSpec(f"{where}: unknown fields {sorted(unknown)}")
    placeholder = data.get("placeholder", True)
    if not isinstance(placeholder, bool):
        raise InvalidSpec(f"{where}.placeholder: expected true or false, got {placeholder!r}")
    return VariantList.from_data(data.get("variants"), f"{where}.variants", placeholder)


def load_pipelines(path: Path | None) -> dict[str, VariantList]:
    """The pipelines file (YAML or JSON); without one, `default` with the product spec."""
    if path is None:
        return {DEFAULT_PIPELINE: DEFAULT_SPEC}
    # Imported here: 10 ms at every process start that reads no file.
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidSpec(f"{path}: cannot read pipelines file: {exc}") from exc
    return parse_pipelines(data, str(path))
