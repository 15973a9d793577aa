"""Settings: every bad IMAGEPIPE_* variable is reported at start-up, by name,
all at once; defaults hold when a variable is unset or empty."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import ImageCms

from imagepipe.capacity import INGEST_BASE_BYTES, MIB
from imagepipe.config import ConfigError, load_settings, require_webhook_secret, upload_budget
from imagepipe.steps.colour import DEFAULT_CMYK_PROFILE
from imagepipe.webhooks.deliverer import receive_visibility

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


def test_an_api_key_id_may_hold_several_keys() -> None:
    raw = "web:old-key-0123456789abcdef, web:new-key-0123456789abcdef,batch:batch-key-0123456789ab"
    settings = load_settings({**BACKENDS, "IMAGEPIPE_API_KEYS": raw})
    assert settings.api_keys == (
        ("web", "old-key-0123456789abcdef"),
        ("web", "new-key-0123456789abcdef"),
        ("batch", "batch-key-0123456789ab"),
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "set but blank"),
        ("   ", "set but blank"),
        ("web:key-0123456789abcdef,web:key-0123456789abcdef", "entry 2 repeats the key of id 'web'"),
        ("web:key-0123456789abcdef,,", "entry 2 is not id:key"),
        ("web-key-0123456789abcdef", "entry 1 is not id:key"),
        (":key-0123456789abcdef", "entry 1 is not id:key"),
    ],
)
def test_bad_api_keys_fail_closed(raw: str, problem: str) -> None:
    (found,) = problems({"IMAGEPIPE_API_KEYS": raw})
    assert found.startswith("IMAGEPIPE_API_KEYS") and problem in found, found
    assert "key-0123456789abcdef" not in found


def test_upload_budget_is_explicit_or_from_the_memory_limit() -> None:
    settings = load_settings({**BACKENDS, "IMAGEPIPE_UPLOAD_BUDGET_BYTES": str(64 * MIB)})
    assert upload_budget(settings) == 64 * MIB
    unset = load_settings(BACKENDS)
    assert upload_budget(unset, limit=INGEST_BASE_BYTES + 100 * MIB) == 100 * MIB
    with pytest.raises(ConfigError, match=r"IMAGEPIPE_UPLOAD_BUDGET_BYTES: unset, and a memory limit"):
        upload_budget(unset, limit=INGEST_BASE_BYTES + 19 * MIB)
    small = load_settings({**BACKENDS, "IMAGEPIPE_UPLOAD_BUDGET_BYTES": str(19 * MIB)})
    with pytest.raises(ConfigError, match=r"IMAGEPIPE_UPLOAD_BUDGET_BYTES=19922944: less than one maximum"):
        upload_budget(small)


def test_limits_and_timings_are_validated() -> None:
    found = problems(
        {
            "IMAGEPIPE_RATE_LIMIT_PER_SECOND": "-1",
            "IMAGEPIPE_RATE_LIMIT_BURST": "0",
            "IMAGEPIPE_BACKEND_CHECK_INTERVAL_SECONDS": "0",
            "IMAGEPIPE_BACKEND_CHECK_TIMEOUT_SECONDS": "nan",
            "IMAGEPIPE_SHUTDOWN_DELAY_SECONDS": "-2",
        }
    )
    assert [p.split("=")[0] for p in found] == [
        "IMAGEPIPE_RATE_LIMIT_PER_SECOND",
        "IMAGEPIPE_RATE_LIMIT_BURST",
        "IMAGEPIPE_BACKEND_CHECK_INTERVAL_SECONDS",
        "IMAGEPIPE_BACKEND_CHECK_TIMEOUT_SECONDS",
        "IMAGEPIPE_SHUTDOWN_DELAY_SECONDS",
    ]
    assert load_settings({**BACKENDS, "IMAGEPIPE_RATE_LIMIT_PER_SECOND": "0"}).rate_limit_per_second == 0


def test_the_public_api_url_is_an_http_url() -> None:
    assert load_settings({**BACKENDS, "IMAGEPIPE_API_URL": "https://api.example.com/"}).api_url == (
        "https://api.example.com"
    )
    assert load_settings(BACKENDS).api_url == ""
    with pytest.raises(ConfigError, match=r"IMAGEPIPE_API_URL.*http"):
        load_settings({**BACKENDS, "IMAGEPIPE_API_URL": "api.example.com"})


SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64


def test_webhooks_off_by_default_and_the_delivery_queue_beside_the_job_queue() -> None:
    settings = load_settings(BACKENDS)
    assert not settings.webhooks_enabled
    on = load_settings({**BACKENDS, "IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.com/in"})
    assert on.webhooks_enabled and on.webhook_queue() == ("", "jobs-webhooks")
    by_url = load_settings(
        {"IMAGEPIPE_BUCKET": "b", "IMAGEPIPE_QUEUE_URL": "http://127.0.0.1:5000/123456789012/uploads"}
    )
    assert by_url.webhook_queue() == ("", "uploads-webhooks")
    named = load_settings({**BACKENDS, "IMAGEPIPE_WEBHOOK_QUEUE_NAME": "outbox"})
    assert named.webhook_queue() == ("", "outbox")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("IMAGEPIPE_WEBHOOK_URL", "ftp://hooks.example.com", "http:// or https://"),
        ("IMAGEPIPE_WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ("IMAGEPIPE_WEBHOOK_SECRET", "whsec_not*base64", "base64"),
        ("IMAGEPIPE_WEBHOOK_SECRET", "whsec_c2hvcnQ=", "24 to 64 bytes, not 5"),
        ("IMAGEPIPE_WEBHOOK_SECRET", f"{SECRET} whsec_c2hvcnQ=", "secret 2 of 2: must encode 24 to 64"),
        ("IMAGEPIPE_WEBHOOK_EVENTS", "image.completed,image.resized", "comma-separated list"),
        ("IMAGEPIPE_WEBHOOK_HORIZON_SECONDS", str(14 * 24 * 3600), "at most 1123200"),
        ("IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS", "0", "positive"),
        ("IMAGEPIPE_WEBHOOK_BACKOFF_MAX_SECONDS", "86400", "at most 43200"),
        ("IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS", "0", "positive integer"),
        ("IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS", "86400", "at most 43200"),
        ("IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE", "maybe", "true or false"),
    ],
)
def test_bad_webhook_settings_are_named(name: str, value: str, says: str) -> None:
    (problem,) = problems({name: value})
    assert problem.startswith(name) and says in problem
    if name == "IMAGEPIPE_WEBHOOK_SECRET":
        assert value not in problem


def test_webhook_backoff_must_not_exceed_its_maximum() -> None:
    env = {"IMAGEPIPE_WEBHOOK_BACKOFF_SECONDS": "60", "IMAGEPIPE_WEBHOOK_BACKOFF_MAX_SECONDS": "30"}
    (problem,) = problems(env)
    assert problem.startswith("IMAGEPIPE_WEBHOOK_BACKOFF_SECONDS")


def test_webhook_visibility_must_outlast_one_attempt() -> None:
    env = {"IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS": "10", "IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS": "10"}
    (problem,) = problems(env)
    assert problem.startswith("IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS") and "TIMEOUT_SECONDS" in problem
    assert load_settings({**BACKENDS, **env, "IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS": "11"})


def test_the_receive_visibility_is_the_setting_or_the_timeout_and_a_margin() -> None:
    assert receive_visibility(load_settings({**BACKENDS, "IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS": "2.5"})) == 63
    tuned = {"IMAGEPIPE_WEBHOOK_TIMEOUT_SECONDS": "2.5", "IMAGEPIPE_WEBHOOK_VISIBILITY_SECONDS": "20"}
    assert receive_visibility(load_settings({**BACKENDS, **tuned})) == 20


def test_webhook_settings_parsed() -> None:
    settings = load_settings(
        {
            **BACKENDS,
            "IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.com/in",
            "IMAGEPIPE_WEBHOOK_SECRET": SECRET,
            "IMAGEPIPE_WEBHOOK_EVENTS": "image.deleted, image.completed,image.deleted",
            "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE": "TRUE",
        }
    )
    assert settings.webhook_events == ("image.deleted", "image.completed")
    assert settings.webhook_allow_private and settings.webhook_secret == SECRET


def test_the_secret_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(f"{SECRET}\n")
    settings = load_settings({**BACKENDS, "IMAGEPIPE_WEBHOOK_SECRET_FILE": str(path)})
    assert settings.webhook_secret_file == path and settings.webhook_secret == ""
    require_webhook_secret(replace(settings, webhook_url="https://hooks.example.com/in"))


SECRET_FILES = {
    # name: (the file's content, None: no file, what the problem says)
    "missing": (None, "cannot be read (No such file or directory)"),
    "not a secret": ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret 1 of 1: must start with 'whsec_'"),
    "empty": ("\n", "must hold at least one whsec_... secret"),
    "the second bad": (f"{SECRET} whsec_c2hvcnQ=", "secret 2 of 2: must encode 24 to 64 bytes, not 5"),
}


@pytest.mark.parametrize("case", sorted(SECRET_FILES))
def test_a_bad_secret_file_is_named(tmp_path: Path, case: str) -> None:
    content, says = SECRET_FILES[case]
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    (problem,) = problems({"IMAGEPIPE_WEBHOOK_SECRET_FILE": str(path)})
    assert problem.startswith(f"IMAGEPIPE_WEBHOOK_SECRET_FILE='{path}': ") and says in problem
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in problem


def test_the_deliverer_takes_exactly_one_secret_source(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(SECRET)
    (problem,) = problems({"IMAGEPIPE_WEBHOOK_SECRET": SECRET, "IMAGEPIPE_WEBHOOK_SECRET_FILE": str(path)})
    assert problem == "IMAGEPIPE_WEBHOOK_SECRET and IMAGEPIPE_WEBHOOK_SECRET_FILE: both set (set only one)"
    with pytest.raises(ConfigError) as caught:
        require_webhook_secret(load_settings({**BACKENDS, "IMAGEPIPE_WEBHOOK_URL": "https://h.example.com/"}))
    (problem,) = caught.value.problems
    assert problem.startswith("IMAGEPIPE_WEBHOOK_SECRET or IMAGEPIPE_WEBHOOK_SECRET_FILE: one is required")
