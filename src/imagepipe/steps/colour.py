"""Step: convert colours to sRGB through the embedded ICC profile (lcms2).

CMYK without a profile is read through a standard press profile (SWOP-like,
from Debian's libgs-common), as libvips and Photoshop do; browsers would
show untagged sRGB as is, so untagged RGB and grey are left alone.
"""

from __future__ import annotations

import io
import logging
import os
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageCms

from imagepipe.context import Context

log = logging.getLogger(__name__)

DEFAULT_CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")
SRGB = ImageCms.createProfile("sRGB")


def to_srgb(ctx: Context) -> None:
    image = ctx.working_image()
    profile = ctx.icc_profile
    if image.mode == "CMYK":
        profile = profile or fallback_cmyk_profile()
    elif profile is None or is_srgb(profile):
        return
    colour, alpha = _split_alpha(image)
    if colour.mode == "RGB" and profile_space(profile) == "GRAY":
        # Grey PNGs with alpha or 16 bits decode as RGB; their profile is grey.
        colour = colour.convert("L")
    transform = _transform(profile, colour.mode) if profile else None
    if transform is None:
        if image.mode == "CMYK":
            ctx.image = image.convert("RGB")
        return
    converted = ImageCms.applyTransform(colour, transform)
    assert converted is not None
    if alpha is not None:
        converted.putalpha(alpha)
    ctx.image = converted


def _split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    if image.mode in ("LA", "RGBA"):
        return image.convert(image.mode[:-1]), image.getchannel("A")
    return image, None


@lru_cache(maxsize=64)
def _parsed(profile: bytes) -> ImageCms.ImageCmsProfile | None:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(profile))
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None


def is_srgb(profile: bytes) -> bool:
    """True for profiles that describe sRGB itself (no transform needed)."""
    parsed = _parsed(profile)
    if parsed is None:
        return False
    try:
        description = ImageCms.getProfileDescription(parsed)
    except ImageCms.PyCMSError:
        # A description lcms cannot decode says nothing about the colours.
        return False
    return description.strip().lower().startswith("srgb")


def profile_space(profile: bytes | None) -> str | None:
    parsed = _parsed(profile) if profile else None
    return parsed.profile.xcolor_space.strip() if parsed else None


@lru_cache(maxsize=64)
def _transform(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    # A broken or mismatched profile is ignored, as browsers do, rather than
    # failing an image that displays fine everywhere else.
    source = _parsed(profile)
    if source is None:
        log.warning("ignoring unreadable ICC profile")
        return None
    try:
        return ImageCms.buildTransform(
            source,
            SRGB,
            mode,
            "RGB",
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.warning("ignoring unusable ICC profile: %s", exc)
        return None


def read_cmyk_profile(path: Path) -> bytes:
    """The ICC profile at `path`; ValueError unless it is a readable CMYK one."""
    try:
        profile = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from exc
    space = profile_space(profile)
    if space is None:
        raise ValueError("not an ICC profile")
    if space != "CMYK":
        raise ValueError(f"an ICC profile for {space}, not CMYK")
    return profile


@lru_cache(maxsize=1)
def fallback_cmyk_profile() -> bytes | None:
    # The variable is validated at start-up (imagepipe.config); the default
    # file comes with libgs-common and may be missing on a bare machine.
    path = Path(os.environ.get("IMAGEPIPE_CMYK_PROFILE") or DEFAULT_CMYK_PROFILE)
    try:
        return read_cmyk_profile(path)
    except ValueError as exc:
        log.warning("no CMYK profile at %s (%s): untagged CMYK is converted without one", path, exc)
        return None
