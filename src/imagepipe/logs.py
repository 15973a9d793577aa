"""Logging for every role: JSON lines (or plain text for humans), with the job
id and trace id of the job being handled added to every line about it.

The ids live in context variables, so each asyncio task (one per job) carries
its own: set them once with `job_context(...)` at the start of the job.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

JOB_ID: ContextVar[str | None] = ContextVar("job_id", default=None)
TRACE_ID: ContextVar[str | None] = ContextVar("trace_id", default=None)

# Attributes every LogRecord has; anything else came from `extra=` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@contextmanager
def job_context(job_id: str | None, trace_id: str | None) -> Iterator[None]:
    """Tag every log line in this block (and tasks started from it) with the job's ids."""
    job_token, trace_token = JOB_ID.set(job_id), TRACE_ID.set(trace_id)
    try:
        yield
    finally:
        JOB_ID.reset(job_token)
        TRACE_ID.reset(trace_token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
    for name, var in (("job_id", JOB_ID), ("trace_id", TRACE_ID)):
        value = var.get()
        if value is not None:
            fields.setdefault(name, value)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """Human-readable lines with the same fields appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}" + (
            f" {extra}" if extra else ""
        )
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(level: str = "info", fmt: str = "json") -> None:
    """Send the root logger's records to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter (botocore retries, aiohttp access lines) stays at warning.
    for noisy in ("botocore", "aiobotocore", "aiohttp.access", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
