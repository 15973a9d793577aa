"""What a file is, judged by libmagic from its first bytes, never by its name."""

from __future__ import annotations

import magic

# Pillow's names for the formats we accept, by the MIME type libmagic reports.
ACCEPTED: dict[str, str] = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
SNIFF_BYTES = 2048


def sniff_mime(head: bytes) -> str:
    """libmagic's MIME type for the first bytes of a file."""
    if not head:
        return "application/x-empty"
    try:
        return str(magic.from_buffer(head[:SNIFF_BYTES], mime=True))
    except magic.MagicException:  # pragma: no cover - libmagic refuses only broken input
        return "application/octet-stream"
