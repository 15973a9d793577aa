"""A backend problem found while provisioning or checking: a condition
reason (CamelCase, stable) and a message a human can act on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str
