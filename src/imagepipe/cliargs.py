"""Argument types for the command line: a bad value is an argparse error
(one line naming the option, exit status 2), never a traceback later."""

from __future__ import annotations

import argparse


def port(raw: str) -> int:
    """A TCP port; 0 asks for any free one."""
    value = _int(raw)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (0-65535)")
    return value


def positive_int(raw: str) -> int:
    value = _int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive integer")
    return value


def positive_ints(raw: str) -> list[int]:
    """Comma-separated positive integers, at least one."""
    values = [positive_int(part.strip()) for part in raw.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"{raw!r}: expected comma-separated positive integers")
    return values


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an integer") from None
