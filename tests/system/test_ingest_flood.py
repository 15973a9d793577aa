"""The ingest under a flood (issue 14): 48 clients at once, each sending a
9.3 MB JPEG slowly, against an ingest with a small upload budget. Every
client gets an answer (202, or 503 overloaded before its body), the peak
resident memory stays under the base plus the budget, and an upload right
after the flood is accepted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from bench.trickle import big_photo, slow_upload
from imagepipe.capacity import INGEST_BASE_BYTES
from tests.support.backend import MotoServer
from tests.system.ingest_procs import MB, fresh_backend, ingest

pytestmark = pytest.mark.system

BUDGET = 48 * MB
CLIENTS = 48


async def flood(port: int, data: bytes) -> list[tuple[int, str]]:
    # Half declare their length (charged before the body), half stream chunked (charged as it arrives).
    return await asyncio.gather(
        *(slow_upload(port, data, seconds=3.0, declared=i % 2 == 0) for i in range(CLIENTS))
    )


def test_flood_stays_within_budget_and_every_client_is_answered(moto: MotoServer, tmp_path: Path) -> None:
    settings = fresh_backend(moto)
    data = big_photo()
    assert 9_000_000 < len(data) < 10 * MB
    with ingest(settings, tmp_path, IMAGEPIPE_UPLOAD_BUDGET_BYTES=str(BUDGET)) as served:
        answers = asyncio.run(flood(served.port, data))
        peak = served.peak_rss_bytes()
        statuses = Counter(status for status, _ in answers)
        # Every client answered: accepted, or refused as overloaded (never a dropped connection).
        assert set(statuses) <= {202, 503}, statuses
        assert statuses[202] >= 1, statuses
        for status, body in answers:
            if status == 503:
                assert json.loads(body)["error"]["code"] == "overloaded"
        assert peak < INGEST_BASE_BYTES + BUDGET, f"peak RSS {peak / MB:.0f} MiB, {dict(statuses)}"
        after = requests.post(
            f"{served.url}/v1/images", data=data, headers={"Content-Type": "image/jpeg"}, timeout=60
        )
        assert after.status_code == 202, after.text
    bound = (INGEST_BASE_BYTES + BUDGET) / MB
    print(f"flood: {dict(statuses)}, peak RSS {peak / MB:.0f} MiB, bound {bound:.0f} MiB")
