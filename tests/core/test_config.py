"""Settings: every bad IMAGEPIPE_* variable is reported at start-up, by name,
all at once; defaults hold when a variable is unset or empty."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageCms

from imagepipe.config import ConfigError, load_settings
from imagepipe.steps.colour import DEFAULT_CMYK_PROFILE

BACKENDS = {"IMAGEPIPE_BUCKET": "images", "IMAGEPIPE_QUEUE_NAME": "jobs"}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BACKENDS, **env})
    return caught.value.problems


def test_defaults_and_parsed_values() -> None:
    settings = load_settings({**BACKENDS, "IMAGEPIPE_PORT": "9000", "IMAGEPIPE_CMYK_PROFILE": ""})
    assert settings.port == 9000 and settings.max_pixels == 200_000_000


def test_every_problem_is_named_together() -> None:
    bad = {"IMAGEPIPE_PORT": "99999", "IMAGEPIPE_WORKER_SLOTS": "0", "IMAGEPIPE_LOG_LEVEL": "loud"}
    found = problems(bad)
    assert [p.split("=")[0] for p in found] == [
        "IMAGEPIPE_PORT",
        "IMAGEPIPE_WORKER_SLOTS",
        "IMAGEPIPE_LOG_LEVEL",
    ]


def test_backends_required_unless_not_needed() -> None:
    with pytest.raises(ConfigError, match="IMAGEPIPE_BUCKET"):
        load_settings({})
    assert load_settings({}, need_backends=False).bucket == ""


def test_api_keys_are_never_echoed() -> None:
    (problem,) = problems({"IMAGEPIPE_API_KEYS": "ci:short-secret"})
    assert problem.startswith("IMAGEPIPE_API_KEYS=(value hidden)")
    assert "short-secret" not in problem


def test_cmyk_profile_must_be_a_readable_cmyk_icc_profile(tmp_path: Path) -> None:
    assert DEFAULT_CMYK_PROFILE.is_file(), "install libgs-common (the fallback CMYK profile)"
    load_settings({**BACKENDS, "IMAGEPIPE_CMYK_PROFILE": str(DEFAULT_CMYK_PROFILE)})  # no ConfigError

    srgb = tmp_path / "srgb.icc"
    srgb.write_bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    text = tmp_path / "notes.txt"
    text.write_text("not a profile")
    expected = {
        str(tmp_path / "missing.icc"): "cannot read it",
        str(tmp_path): "cannot read it",
        str(text): "not an ICC profile",
        str(srgb): "an ICC profile for RGB, not CMYK",
    }
    for path, message in expected.items():
        (problem,) = problems({"IMAGEPIPE_CMYK_PROFILE": path})
        assert problem.startswith(f"IMAGEPIPE_CMYK_PROFILE='{path}': "), problem
        assert message in problem, problem
