"""The ingest pod's memory as a table: limit = base + budget, whichever of
the two the ImagePipeline sets; refused when one maximum upload cannot fit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from imagepipe.capacity import DEFAULT_UPLOAD_BUDGET_BYTES, INGEST_BASE_BYTES, MIB
from imagepipe.operator.imagepipeline import InvalidPipeline, parse_imagepipeline
from imagepipe.operator.ingest_memory import IngestMemory, MemoryTooSmall, ingest_memory, quantity_bytes

BASE = INGEST_BASE_BYTES


@pytest.mark.parametrize(
    ("budget", "limit", "max_upload", "expected"),
    [
        (None, None, 10 * MIB, IngestMemory(DEFAULT_UPLOAD_BUDGET_BYTES, BASE + DEFAULT_UPLOAD_BUDGET_BYTES)),
        (None, None, 1024 * MIB, IngestMemory(2048 * MIB, BASE + 2048 * MIB)),  # a 1 GiB cap raises memory
        (64 * MIB, None, 10 * MIB, IngestMemory(64 * MIB, BASE + 64 * MIB)),
        (None, 512 * MIB, 10 * MIB, IngestMemory(512 * MIB - BASE, 512 * MIB)),
        (100 * MIB, 512 * MIB, 10 * MIB, IngestMemory(100 * MIB, 512 * MIB)),
    ],
)
def test_budget_and_limit(
    budget: int | None, limit: int | None, max_upload: int, expected: IngestMemory
) -> None:
    assert ingest_memory(budget, limit, max_upload) == expected


@pytest.mark.parametrize(
    ("budget", "limit", "field"),
    [
        (10 * MIB, None, "spec.ingest.uploadBudgetBytes"),  # one upload is held twice
        (None, 170 * MIB, "spec.resources.ingest.limits.memory"),
        (400 * MIB, 512 * MIB, "spec.ingest.uploadBudgetBytes"),  # over limit - base
    ],
)
def test_too_small_names_the_field(budget: int | None, limit: int | None, field: str) -> None:
    with pytest.raises(MemoryTooSmall, match=field.replace(".", r"\.")):
        ingest_memory(budget, limit, 10 * MIB)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("512Mi", 512 * MIB),
        ("1Gi", 1024 * MIB),
        ("1G", 10**9),
        ("1.5Gi", 1536 * MIB),
        (1000, 1000),
        ("64k", 64000),
    ],
)
def test_quantities(quantity: int | str, expected: int) -> None:
    assert quantity_bytes(quantity) == expected


def test_a_user_limit_too_small_for_one_upload_is_refused_with_a_condition_reason(
    minimal: dict[str, Any],
) -> None:
    body = copy.deepcopy(minimal)
    body["spec"]["resources"] = {"ingest": {"limits": {"memory": "128Mi"}}}
    with pytest.raises(InvalidPipeline) as caught:
        parse_imagepipeline(body)
    assert caught.value.reason == "IngestMemoryTooSmall"
    assert "less than one maximum upload" in caught.value.message
