"""kopf timers without a finalizer, and without an event per run.

kopf gives every timer a finalizer (to stop it before the object goes), and
has no option against it. A finalizer would block deleting an ImagePipeline
while no operator runs, which the design forbids; without one kopf stops the
timer when the deletion arrives, which is all our timers need (they read,
scale and re-apply children; owner references clean up). So a registered
timer is replaced by a copy without (kopf internals: test_no_handler_adds_a_finalizer
guards them). kopf logs "Timer 'ID' succeeded." at INFO, which the operator
posts as Kubernetes events: one per pipeline per run, so those are dropped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import kopf


class QuietTimers(logging.Filter):
    """Drops kopf's success lines of the named timers; their failures still get through."""

    def __init__(self) -> None:
        super().__init__()
        self.quiet: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(record.getMessage() == f"Timer {t!r} succeeded." for t in self.quiet)


def register_quietly(registry: kopf.OperatorRegistry, fn: Callable[..., Any], timer_id: str) -> None:
    """Strip the finalizer from the timer `fn` just registered, and mute its success lines."""
    spawning = registry._spawning
    spawning._handlers = [
        dataclasses.replace(h, requires_finalizer=False) if h.fn is fn else h for h in spawning._handlers
    ]
    objects = logging.getLogger("kopf.objects")
    muted = next((f for f in objects.filters if isinstance(f, QuietTimers)), None)
    if muted is None:
        muted = QuietTimers()
        objects.addFilter(muted)
    muted.quiet.add(timer_id)
