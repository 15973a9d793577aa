"""Documents as clients and retries read them: the srcset per output format, the focus."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe.geometry import Focus
from imagepipe.jobstore.documents import requested_focus, srcsets


def v(url: str, width: int, method: str = "fit", fmt: str = "webp", size: int = 100) -> dict[str, Any]:
    return {"url": url, "width": width, "height": width // 2, "method": method, "format": fmt, "bytes": size}


@pytest.mark.parametrize(
    ("variants", "expected"),
    [
        ({}, {}),
        ({"thumb": v("t", 150, "cover")}, {}),
        (
            {"thumb": v("t", 150, "cover"), "large": v("l", 1920), "medium": v("m", 800)},
            {"webp": "m 800w, l 1920w"},
        ),
        # A small source: medium and large are one width, listed once.
        ({"medium": v("m", 600), "large": v("l", 600)}, {"webp": "m 600w"}),
        (
            {"a": v("a.webp", 800), "b": v("b.jpg", 800, fmt="jpeg"), "c": v("c.jpg", 400, fmt="jpeg")},
            {"webp": "a.webp 800w", "jpeg": "c.jpg 400w, b.jpg 800w"},
        ),
        # Documents written before variants carried their method: no srcset.
        ({"large": {"url": "l", "width": 1920, "height": 1080}}, {}),
    ],
)
def test_srcsets(variants: dict[str, Any], expected: dict[str, str]) -> None:
    assert srcsets(variants) == expected


@pytest.mark.parametrize(
    ("doc", "focus"),
    [
        ({"focus": {"x": 0.25, "y": 1}}, Focus(0.25, 1.0)),
        ({"focus": None}, None),
        ({}, None),
        ({"focus": {"x": "left"}}, None),
    ],
)
def test_a_retry_asks_for_the_uploaded_focus(doc: dict[str, Any], focus: Focus | None) -> None:
    assert requested_focus(doc) == focus
