"""Status transitions as pure functions: the Ready condition and the phase."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def repeats(previous: list[dict[str, Any]] | None, ready: bool, reason: str, message: str) -> bool:
    """Whether the Ready condition says this already (no second event for it)."""
    old = next((c for c in previous or [] if c.get("type") == "Ready"), None)
    status = "True" if ready else "False"
    return old is not None and (old.get("status"), old.get("reason"), old.get("message")) == (
        status,
        reason,
        message,
    )


def ready_status(
    previous: list[dict[str, Any]] | None, ready: bool, reason: str, message: str, generation: int
) -> dict[str, Any]:
    """The status fields for a Ready condition; lastTransitionTime moves only when the status flips."""
    status = "True" if ready else "False"
    old = next((c for c in previous or [] if c.get("type") == "Ready"), None)
    moved = old is None or old.get("status") != status
    condition = {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now() if moved else old["lastTransitionTime"],  # type: ignore[index]
    }
    others = [c for c in previous or [] if c.get("type") != "Ready"]
    phase = "Ready" if ready else ("Invalid" if reason.startswith("Invalid") else "Degraded")
    return {"phase": phase, "observedGeneration": generation, "conditions": [*others, condition]}
