"""The ingest pod's memory: one rule (imagepipe.capacity) ties the upload
budget to the container's limit, limit = base + budget.

- Neither set: the budget is the ingest's default (256 MiB, or enough for one
  maximum upload), and the operator sets the limit to base + budget.
- `spec.ingest.uploadBudgetBytes` set: the limit is base + that budget.
- `spec.resources.ingest.limits.memory` set: the budget is limit - base (or
  the given budget, if it fits under the limit).
A budget that cannot hold one maximum upload is refused, naming the fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from imagepipe.capacity import (
    DEFAULT_UPLOAD_BUDGET_BYTES,
    INGEST_BASE_BYTES,
    budget_from_limit,
    smallest_budget,
)

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_FACTORS: dict[str | None, int | Decimal] = {
    None: 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


class MemoryTooSmall(ValueError):
    """The ingest's memory cannot hold one maximum upload."""


@dataclass(frozen=True)
class IngestMemory:
    budget_bytes: int
    limit_bytes: int


def quantity_bytes(quantity: int | str) -> int:
    """A Kubernetes memory quantity ("512Mi", "1G", 1073741824) in bytes."""
    match = _QUANTITY.match(str(quantity))
    if match is None:
        raise ValueError(f"{quantity!r} is not a memory quantity")
    return int(Decimal(match.group(1)) * _FACTORS[match.group(2)])


def ingest_memory(budget: int | None, limit: int | None, max_upload_bytes: int) -> IngestMemory:
    """The budget and memory limit of the ingest; MemoryTooSmall naming the fields."""
    smallest = smallest_budget(max_upload_bytes)
    if limit is None:
        chosen = budget if budget is not None else max(DEFAULT_UPLOAD_BUDGET_BYTES, smallest)
        if chosen < smallest:
            raise MemoryTooSmall(
                f"spec.ingest.uploadBudgetBytes: {chosen} cannot hold one maximum upload "
                f"(spec.limits.maxUploadBytes {max_upload_bytes}, held twice: at least {smallest})"
            )
        return IngestMemory(chosen, INGEST_BASE_BYTES + chosen)
    try:
        room = budget_from_limit(limit, max_upload_bytes)
    except ValueError as exc:
        raise MemoryTooSmall(f"spec.resources.ingest.limits.memory: {exc}") from exc
    if budget is None:
        return IngestMemory(room, limit)
    if budget > room:
        raise MemoryTooSmall(
            f"spec.ingest.uploadBudgetBytes: {budget} does not fit spec.resources.ingest.limits.memory "
            f"({limit} bytes) with the {INGEST_BASE_BYTES}-byte base (at most {room})"
        )
    if budget < smallest:
        raise MemoryTooSmall(
            f"spec.ingest.uploadBudgetBytes: {budget} cannot hold one maximum upload (at least {smallest})"
        )
    return IngestMemory(budget, limit)
