"""The status document's shape (DESIGN: "Status document"), built in one
place: the new job's document and the completed job's variant entries."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from imagepipe.context import RenderedVariant, SourceInfo
from imagepipe.geometry import Focus, crop_rectangle
from imagepipe.spec import VariantList

from .keys import variant_key
from .transitions import QUEUED, StatusDoc


def queued_doc(
    job_id: str,
    pipeline: str,
    spec: VariantList,
    source: SourceInfo,
    owner: str | None,
    created_at: str,
    focus: Focus | None = None,
) -> StatusDoc:
    return {
        "job_id": job_id,
        "status": QUEUED,
        "pipeline": pipeline,
        "spec": spec.spec_hash,
        # The variant list itself, so that a retry re-enqueues exactly what was asked.
        "variant_spec": spec.to_data(),
        # Whether the pipeline asked for a placeholder, for a retry to ask the same.
        "placeholder_requested": spec.placeholder,
        "source": asdict(source),
        "variants": {},
        "error": None,
        "created_at": created_at,
        "started_at": None,
        "completed_at": None,
        "attempts": 0,
        "owner": owner,
        # The focal point given at upload; null when none was.
        "focus": asdict(focus) if focus else None,
    }


def requested_variants(doc: StatusDoc) -> VariantList:
    """The variant list the job was uploaded with (InvalidSpec when unreadable).

    A document written before `placeholder_requested` existed asks for the default."""
    return VariantList.from_data(
        doc.get("variant_spec"), "status.variant_spec", doc.get("placeholder_requested") is not False
    )


def requested_focus(doc: StatusDoc) -> Focus | None:
    """The focal point the job was uploaded with, for a retry to ask again."""
    focus = doc.get("focus")
    if not isinstance(focus, dict):
        return None
    try:
        return Focus(float(focus["x"]), float(focus["y"]))
    except (KeyError, TypeError, ValueError):
        return None


def variant_entries(
    job_id: str, spec_hash: str, rendered: list[RenderedVariant], base_url: str
) -> dict[str, Any]:
    return {
        r.variant.name: {
            "url": f"{base_url}/{variant_key(job_id, spec_hash, r.variant.name, r.variant.extension)}",
            "width": r.width,
            "height": r.height,
            "format": r.variant.encoding.format,
            "method": r.variant.method,
            "bytes": len(r.data),
            "crop": crop_rectangle(r.crop),
        }
        for r in rendered
    }


def srcsets(variants: dict[str, Any]) -> dict[str, str]:
    """Per output format, a ready `srcset` of the fit variants ("URL 800w, URL
    1920w"), narrowest first; variants of equal width (a small source's
    medium and large) appear once. Cover crops are left out: they show a
    different picture, not the same one at another width."""
    by_format: dict[str, dict[int, str]] = {}
    entries = sorted(
        (v for v in variants.values() if isinstance(v, dict) and v.get("method") == "fit"),
        key=lambda v: (v.get("width", 0), v.get("bytes", 0)),
    )
    for entry in entries:
        if isinstance(entry.get("url"), str) and isinstance(entry.get("width"), int):
            by_format.setdefault(str(entry.get("format")), {}).setdefault(entry["width"], entry["url"])
    return {
        fmt: ", ".join(f"{url} {width}w" for width, url in widths.items())
        for fmt, widths in by_format.items()
    }


def public_document(doc: StatusDoc, base_url: str) -> StatusDoc:
    """The document as clients get it (GET, webhook payloads): variant URLs on
    this deployment's public base (IMAGEPIPE_PUBLIC_URL), and the `srcset` per
    format made of them."""
    variants = doc.get("variants")
    if not isinstance(variants, dict):
        return doc
    marker = f"variants/{doc.get('job_id')}/"
    rebased = {}
    for name, variant in variants.items():
        if isinstance(variant, dict) and isinstance(variant.get("url"), str) and marker in variant["url"]:
            variant = {**variant, "url": f"{base_url}/{marker}{variant['url'].split(marker, 1)[1]}"}
        rebased[name] = variant
    public = {**doc, "variants": rebased}
    if rebased:
        public["srcset"] = srcsets(rebased)
    return public
