"""Render local image files (or folders of them) into their variants, in
parallel across cores: DIR/<input stem>/<variant>.<ext>, one JSON line per
input on stdout; exit status 1 when any input failed."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from imagepipe.allocator import keep_freed_memory
from imagepipe.config import ConfigError, available_cpus, load_settings
from imagepipe.context import Limits
from imagepipe.errors import ImagePipeError
from imagepipe.geometry import Focus, crop_rectangle, parse_focus
from imagepipe.pipeline import render
from imagepipe.spec import DEFAULT_PIPELINE, PipelineSpec, load_pipelines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--pipelines", type=Path, help="pipelines file (YAML/JSON); default: built in")
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="pipeline name (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=available_cpus(), help="parallel workers")
    parser.add_argument("--max-pixels", type=int, default=Limits.max_pixels)
    parser.add_argument(
        "--focus", type=_focus, metavar="X,Y", help="focal point (0..1 each) every cover crop keeps centred"
    )


def _focus(text: str) -> Focus:
    try:
        return parse_focus(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    try:
        # No backends here, but the renderers read IMAGEPIPE_CMYK_PROFILE.
        load_settings(need_backends=False)
    except ConfigError as exc:
        print(f"imagepipe: {exc}", file=sys.stderr)
        return 2
    pipelines = load_pipelines(args.pipelines)
    if args.pipeline not in pipelines:
        print(f"imagepipe: unknown pipeline {args.pipeline!r}; have {sorted(pipelines)}", file=sys.stderr)
        return 2
    files = sorted(set(expand(args.inputs)))
    limits = Limits(max_pixels=args.max_pixels)
    failed = 0
    with (
        ProcessPoolExecutor(max(1, args.jobs), initializer=keep_freed_memory) as pool,
        Progress(len(files)) as progress,
    ):
        spec = pipelines[args.pipeline]
        jobs = [
            pool.submit(process_file, f, args.out / name, spec, limits, args.focus)
            for f, name in output_names(files)
        ]
        for job in jobs:
            result = job.result()
            failed += "error" in result
            progress.advance()
            print(json.dumps(result), flush=True)
    return 1 if failed else 0


def expand(inputs: list[Path]) -> Iterator[Path]:
    for path in inputs:
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file())
        else:
            yield path


def output_names(files: list[Path]) -> list[tuple[Path, str]]:
    """Each input's output folder name: its stem, made unique by a -2, -3... suffix."""
    seen: dict[str, int] = {}
    names = []
    for path in files:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        count = seen[path.stem]
        names.append((path, path.stem if count == 1 else f"{path.stem}-{count}"))
    return names


def process_file(
    path: Path, folder: Path, spec: PipelineSpec, limits: Limits, focus: Focus | None = None
) -> dict[str, Any]:
    result: dict[str, Any] = {"input": str(path), "focus": asdict(focus) if focus else None}
    try:
        rendered = render(path.read_bytes(), spec, limits, focus=focus)
    except ImagePipeError as exc:
        return {**result, "error": exc.as_dict()}
    except OSError as exc:
        return {**result, "error": {"code": "unreadable", "message": str(exc)}}
    folder.mkdir(parents=True, exist_ok=True)
    variants = {}
    for r in rendered.variants:
        target = folder / f"{r.variant.name}.{r.variant.extension}"
        target.write_bytes(r.data)
        variants[r.variant.name] = {
            "path": str(target),
            "width": r.width,
            "height": r.height,
            "bytes": len(r.data),
            "crop": crop_rectangle(r.crop),
        }
    placeholder = asdict(rendered.placeholder) if rendered.placeholder else None
    return {**result, "source": asdict(rendered.source), "variants": variants, "placeholder": placeholder}


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.enabled = sys.stderr.isatty() and not os.environ.get("NO_COLOR")

    def __enter__(self) -> Progress:
        self._draw()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            sys.stderr.write("\n")

    def advance(self) -> None:
        self.done += 1
        self._draw()

    def _draw(self) -> None:
        if not self.enabled or not self.total:
            return
        width = 30
        filled = width * self.done // self.total
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}")
        sys.stderr.flush()
