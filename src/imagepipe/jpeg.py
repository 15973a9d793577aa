"""JPEG facts that Pillow does not expose: which frame type a file uses."""

from __future__ import annotations

# Start-of-frame markers of the lossless processes (SOF3, SOF7, SOF11, SOF15),
# which libjpeg cannot decode at a reduced DCT scale.
LOSSLESS_SOF = {0xC3, 0xC7, 0xCB, 0xCF}
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def frame_marker(data: bytes) -> int | None:
    """The start-of-frame marker byte (0xC0-0xCF) of a JPEG, None if not found."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _SOF:
            return marker
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def is_lossless(data: bytes) -> bool:
    return frame_marker(data) in LOSSLESS_SOF
