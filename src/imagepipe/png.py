"""PNG facts that Pillow does not expose: the file's chunk layout."""

from __future__ import annotations

from collections.abc import Iterator

SIGNATURE_BYTES = 8


def chunk_types(data: bytes) -> Iterator[bytes]:
    """The type of each chunk (b"IHDR", b"IDAT", ...) in file order, while the
    lengths hold; a truncated or damaged file is Pillow's to report."""
    pos = SIGNATURE_BYTES
    while pos + 8 <= len(data):
        yield data[pos + 4 : pos + 8]
        # Length, type, data, CRC.
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
