"""JPEG facts that Pillow does not expose: the frame header and the file's layout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

SOS = 0xDA
EOI = 0xD9
# Start-of-frame markers of the lossless processes (SOF3, SOF7, SOF11, SOF15),
# which libjpeg cannot decode at a reduced DCT scale.
LOSSLESS_SOF = {0xC3, 0xC7, 0xCB, 0xCF}
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field (restart markers never match _MARKER).
_STANDALONE = {0x01, 0xD8, EOI}
# 0xFF then a marker byte; 0xFF00 (a stuffed data byte), restart markers and
# fill bytes belong to the data around them, as libjpeg reads it.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


@dataclass(frozen=True)
class Frame:
    marker: int  # the start-of-frame marker byte, 0xC0-0xCF
    precision: int  # bits per sample


def markers(data: bytes) -> Iterator[tuple[int, int]]:
    """Each marker byte of a JPEG after SOI, with the offset just past it, in
    file order up to EOI.

    Segments are skipped by their length, so metadata bytes never read as
    markers; scan data is searched (at C speed) for the marker that ends it.
    """
    pos = 2
    while match := _MARKER.search(data, pos):
        marker, pos = data[match.start() + 1], match.end()
        yield marker, pos
        if marker == EOI:
            return
        if marker not in _STANDALONE:
            pos += int.from_bytes(data[pos : pos + 2], "big")


def frame(data: bytes) -> Frame | None:
    """The frame header of a JPEG, None if there is none before its first scan."""
    for marker, at in markers(data):
        if marker in _SOF and at + 2 < len(data):
            return Frame(marker, data[at + 2])
        if marker == SOS:
            return None
    return None


def is_lossless(data: bytes) -> bool:
    header = frame(data)
    return header is not None and header.marker in LOSSLESS_SOF
