"""Damaged copies of real files: every one renders or fails with its code.

A fixed-seed sample of what a mutation fuzzer sends (flipped bits, bytes
overwritten with extremes, cuts, repeats, truncation) over the corpus's small
JPEG, PNG and WebP files. They run in a child process, so that a crash in a
codec fails the test instead of ending the run. A longer run of the same kind
found the unreadable ICC description fixed in steps/colour.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

SEED = 20261129
MUTANTS = 1000
MAX_SOURCE_BYTES = 120_000

# Renders every file named on stdin; one JSON line each: "ok", the error
# code, or the unexpected exception.
RENDER_ALL = """
import json, sys
from imagepipe.errors import ImagePipeError
from imagepipe.processing import probe, render
from imagepipe.spec import DEFAULT_SPEC

for path in sys.stdin.read().split("\\n"):
    data = open(path, "rb").read()
    try:
        probe(data, DEFAULT_SPEC)
        render(data, DEFAULT_SPEC)
        outcome = "ok"
    except ImagePipeError as exc:
        outcome = exc.code
    except Exception as exc:
        outcome = f"unexpected {type(exc).__name__}: {exc}"
    print(json.dumps([path, outcome]), flush=True)
"""

EXTREMES = (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x01")


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    at = rng.randrange(len(b))
    span = rng.randint(1, 512)
    kind = rng.randrange(5)
    if kind == 0:  # flipped bits anywhere
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # an extreme value in the headers
        at = rng.randrange(min(len(b), 2048))
        b[at : at + 4] = rng.choice(EXTREMES)
    elif kind == 2:  # bytes cut out
        del b[at : at + span]
    elif kind == 3:  # bytes repeated
        b[at:at] = b[at : at + span]
    else:  # truncated
        del b[max(at, 1) :]
    return bytes(b)


def test_damaged_files_render_or_fail_with_their_code(corpus_dir: Path, tmp_path: Path) -> None:
    sources = sorted(
        path
        for path in corpus_dir.rglob("*")
        if path.suffix.lower() in (".jpg", ".png", ".webp") and path.stat().st_size <= MAX_SOURCE_BYTES
    )
    assert len(sources) >= 40
    rng = random.Random(SEED)
    paths = []
    for number in range(MUTANTS):
        source = rng.choice(sources)
        path = tmp_path / f"{number}-{source.name}"
        path.write_bytes(mutate(source.read_bytes(), rng))
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, "-c", RENDER_ALL],
        input="\n".join(paths),
        capture_output=True,
        text=True,
        timeout=600,
    )
    outcomes = dict(json.loads(line) for line in done.stdout.splitlines())
    # A crash ends the child: the first file without an outcome caused it.
    missing = [path for path in paths if path not in outcomes]
    assert done.returncode == 0 and not missing, (done.returncode, missing[:1], done.stderr[-2000:])
    unexpected = {path: outcome for path, outcome in outcomes.items() if outcome.startswith("unexpected")}
    assert unexpected == {}
    # The sample damages as intended: some files still render, many do not.
    codes = set(outcomes.values())
    assert "ok" in codes and "corrupt_image" in codes, codes
