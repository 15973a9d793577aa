"""Every command answers a bad argument or file with one line naming it and
exit status 2: no traceback, no usage dump, nothing on stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagepipe.cli import COMMANDS

BACKENDS = {"IMAGEPIPE_BUCKET": "b", "IMAGEPIPE_QUEUE_NAME": "q"}
SECRET = "whsec_" + "A" * 44
# (command line, extra environment, what the one line must name). {bad} is a
# pipelines file that parses but holds no variant list; {file} a plain file.
CASES: list[tuple[str, dict[str, str], str]] = [
    ("nosuch", {}, "'nosuch'"),
    ("process x.jpg --out out --pipelines {bad}", {}, "--pipelines"),
    ("process x.jpg --out out --pipelines missing.yaml", {}, "missing.yaml"),
    ("process x.jpg --out {file}", {}, "--out"),
    ("process x.jpg --out out --jobs 0", {}, "--jobs"),
    ("process x.jpg --out out --max-pixels many", {}, "--max-pixels"),
    ("process x.jpg --out out", {"IMAGEPIPE_CMYK_PROFILE": "{file}"}, "IMAGEPIPE_CMYK_PROFILE"),
    ("serve --port 70000", {}, "--port"),
    ("serve", {**BACKENDS, "IMAGEPIPE_PORT": "http"}, "IMAGEPIPE_PORT"),
    ("serve", {**BACKENDS, "IMAGEPIPE_PIPELINES_FILE": "{bad}"}, "IMAGEPIPE_PIPELINES_FILE"),
    ("consume --slots 0", {}, "--slots"),
    ("consume", {**BACKENDS, "IMAGEPIPE_WORKER_SLOTS": "-1"}, "IMAGEPIPE_WORKER_SLOTS"),
    ("deliver --metrics-port x", {}, "--metrics-port"),
    (
        "deliver",
        {**BACKENDS, "IMAGEPIPE_WEBHOOK_URL": "https://hooks.example.test/"},
        "IMAGEPIPE_WEBHOOK_SECRET",
    ),
    (
        "deliver",
        {**BACKENDS, "IMAGEPIPE_WEBHOOK_URL": "http://127.0.0.1:9/hook", "IMAGEPIPE_WEBHOOK_SECRET": SECRET},
        "IMAGEPIPE_WEBHOOK_URL",
    ),
    (
        "deliver",
        {**BACKENDS, "IMAGEPIPE_WEBHOOK_URL": "http://169.254.169.254/", "IMAGEPIPE_WEBHOOK_SECRET": SECRET},
        "IMAGEPIPE_WEBHOOK_URL",
    ),
    ("jobs show nope", BACKENDS, "'nope'"),
    ("jobs list --status failed --since soon", BACKENDS, "--since"),
    ("dev --backend-port 70000", {}, "--backend-port"),
    ("dev --slots none", {}, "--slots"),
    ("dev", {"IMAGEPIPE_WEBHOOK_URL": "http://127.0.0.1:9/hook"}, "IMAGEPIPE_WEBHOOK_URL"),
    ("operator --metrics-port x", {}, "--metrics-port"),
    ("operator render missing.yaml", {}, "missing.yaml"),
    ("operator render {bad}", {}, "bad.yaml"),
    ("simulate --queue-lengths a", {}, "--queue-lengths"),
    ("simulate --seeds 0", {}, "--seeds"),
]


def run(line: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    bad, plain = tmp_path / "bad.yaml", tmp_path / "plain.txt"
    bad.write_text("default: 5\n")
    plain.write_text("not a folder, not a profile\n")

    def fill(text: str) -> str:
        return text.format(bad=bad, file=plain)

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEPIPE_", "AWS_"))}
    command = [str(Path(sys.executable).parent / "imagepipe"), *fill(line).split()]
    environment = {**clean, **{k: fill(v) for k, v in env.items()}}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=environment, cwd=tmp_path
    )


@pytest.mark.parametrize(("line", "env", "named"), CASES, ids=[c[0] + " " + " ".join(c[1]) for c in CASES])
def test_bad_input_is_one_line_naming_it_and_exit_2(
    line: str, env: dict[str, str], named: str, tmp_path: Path
) -> None:
    result = run(line, env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and not result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0] and lines[0].startswith("imagepipe"), lines[0]


def test_every_command_has_a_bad_input_case() -> None:
    covered = {line.split()[0] for line, _, _ in CASES}
    assert set(COMMANDS) <= covered, set(COMMANDS) - covered


def test_version() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "imagepipe"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("imagepipe ") and result.stdout.split()[1][0].isdigit()
