"""The state one image carries through the processing steps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from PIL import Image

from imagepipe.geometry import Box, Focus, Plan
from imagepipe.placeholders import Placeholder
from imagepipe.spec import Variant, VariantList

# Bytes per segment that always pass, above Limits.max_segments: at most
# 41,000 steps for a 10 MiB upload, tens of milliseconds.
SEGMENT_BYTES = 256


@dataclass(frozen=True)
class Limits:
    """What an upload may cost us, checked from the header before decoding."""

    # Pixels in the source, from its header (width × height).
    max_pixels: int = 200_000_000
    # Pixels actually decoded into memory after scaled decoding (JPEG shrinks
    # on load; PNG and WebP decode at full size).
    max_decoded_pixels: int = 50_000_000
    # Segments (JPEG) or chunks (PNG) before the pixel data. Pillow parses
    # them one at a time in Python, in the ingest's event loop: real files
    # have tens; 10 MiB of empty ones would hold the loop for seconds.
    max_header_segments: int = 1000
    # Segments or chunks in the whole file, pixel data included, or one per
    # SEGMENT_BYTES if that allows more: each costs a step of Python (ours,
    # and Pillow's after the pixels). libpng writes 8 KiB chunks; a streaming
    # encoder may write one per row.
    max_segments: int = 10_000
    # Scans in a JPEG. Each is a pass over every block of the image however
    # few bytes it takes (libjpeg-turbo's LJT-01-003): 20,000 repeated 14-byte
    # scans of a 16 MP image cost 7 s of CPU. Encoders write at most ~20.
    max_jpeg_scans: int = 100


@dataclass(frozen=True)
class SourceInfo:
    """What the header says, sizes as a viewer sees them (orientation applied)."""

    format: str  # "jpeg", "png" or "webp"
    width: int
    height: int
    frames: int  # 1 unless animated (only the first frame is rendered)
    bytes: int


@dataclass(frozen=True)
class RenderedVariant:
    """One encoded output."""

    variant: Variant
    width: int
    height: int
    data: bytes
    # The region of the oriented source it shows (the whole of it for fit).
    crop: Box


@dataclass
class Context:
    """Shared by the steps of one render; each step reads and fills its part."""

    # The encoded source, whole.
    data: bytes
    # What to render.
    spec: VariantList
    limits: Limits = field(default_factory=Limits)
    # time.monotonic() by which the job should be done; None: no deadline.
    deadline: float | None = None
    # True: a passed deadline stops the render; False: it is only recorded.
    abort_on_deadline: bool = False
    # The job's focal point: every cover crop is centred on it as far as the
    # image allows, whatever the variant's gravity; None: none given.
    focus: Focus | None = None
    # The opened image: header only until `decode`, then pixels; None before `open`.
    image: Image.Image | None = None
    # From the header; None before `open`.
    source: SourceInfo | None = None
    # The embedded ICC profile, None when absent.
    icc_profile: bytes | None = None
    # EXIF orientation 1-8 (1: as stored).
    orientation: int = 1
    # Decoded pixels per source pixel: 1/2, 1/4 or 1/8 after JPEG scaled
    # decoding, else 1. The decoded size is rounded up (its last row and column
    # hold partial pixels), so source regions map through this, never through
    # the ratio of the sizes.
    decode_scale: float = 1.0
    # Per variant name: what region at which size; empty before `plan`.
    plans: dict[str, Plan] = field(default_factory=dict)
    # Per variant name: the resized image, before encoding.
    resized: dict[str, Image.Image] = field(default_factory=dict)
    # What a page shows before the image; None before the step or when the spec turns it off.
    placeholder: Placeholder | None = None
    # The encoded outputs, in spec order.
    outputs: list[RenderedVariant] = field(default_factory=list)
    # Seconds spent per stage (decode, resize, encode).
    timings: dict[str, float] = field(default_factory=dict)
    # Name of the first step that started after the deadline; None: on time.
    late_at: str | None = None

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def working_image(self) -> Image.Image:
        if self.image is None:
            raise RuntimeError("no image opened yet")
        return self.image

    def source_info(self) -> SourceInfo:
        if self.source is None:
            raise RuntimeError("source not probed yet")
        return self.source
