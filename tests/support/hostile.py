"""Valid-looking files built to cost a decoder far more than their pixels do."""

from __future__ import annotations

import struct
import zlib

from PIL import Image

from imagepipe.jpeg import EOI, SOS
from tests.core.imaging import encoded


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _jpeg_scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each scan: its SOS segment and the data after it."""
    scans, pos = [], 2
    while data[pos + 1] != EOI:
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if data[pos + 1] == SOS:
            # Pillow's encoder writes no restart markers: the scan ends at the
            # first 0xFF that is not a stuffed data byte.
            end = data.index(b"\xff", end)
            while data[end + 1] == 0:
                end = data.index(b"\xff", end + 2)
            scans.append((pos, end))
        pos = end
    return scans


def progressive_jpeg(size: int = 1024, extra_scans: int = 0) -> bytes:
    """A flat grey progressive JPEG with its smallest scan repeated
    `extra_scans` times: a few bytes each, a pass over every block each."""
    data = encoded(Image.new("RGB", (size, size), (120, 130, 140)), "JPEG", progressive=True)
    start, end = min(_jpeg_scans(data)[1:], key=lambda scan: scan[1] - scan[0])
    eoi = len(data) - 2
    return data[:eoi] + data[start:end] * extra_scans + data[eoi:]


def jpeg_with_comments(count: int, text: bytes = b"", after_scans: bool = False) -> bytes:
    """A small JPEG with `count` comment segments before its frame (or after its scan)."""
    data = encoded(Image.new("RGB", (64, 48), (200, 30, 30)), "JPEG")
    comments = (b"\xff\xfe" + struct.pack(">H", 2 + len(text)) + text) * count
    at = len(data) - 2 if after_scans else 2
    return data[:at] + comments + data[at:]


def png_with_chunks(count: int, kind: bytes = b"tEXt", after_pixels: bool = False) -> bytes:
    """A small PNG with `count` small chunks before its pixel data (or after it)."""
    data = encoded(Image.new("RGB", (64, 48), (30, 200, 30)), "PNG")
    chunks = png_chunk(kind, b"k\x00v" if kind == b"tEXt" else b"") * count
    at = data.rindex(b"IEND") - 4 if after_pixels else 8 + 25  # signature, IHDR
    return data[:at] + chunks + data[at:]


def png_line(width: int, height: int, alpha: bool = False) -> bytes:
    """A grey PNG one pixel (or a few) across and millions long: tiny on disk,
    and a huge reduction along one axis."""
    row = b"\x00" + b"\x80" * (width * (4 if alpha else 3))  # filter type 0, then the samples
    body = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    pixels = zlib.compress(row * height, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", body) + png_chunk(b"IDAT", pixels) + png_chunk(b"IEND", b"")
    )
