"""Render local image files (or folders of them) into their variants, in
parallel across cores: DIR/<input stem>/<variant>.<ext>, one JSON line per
input on stdout; exit status 1 when any input failed."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from imagepipe.allocator import keep_freed_memory
from imagepipe.cliargs import positive_int
from imagepipe.config import ConfigError, available_cpus, load_settings
from imagepipe.context import Limits
from imagepipe.errors import EmptyUpload, ImagePipeError, InvalidSpec
from imagepipe.geometry import Focus, crop_rectangle, parse_focus
from imagepipe.processing import render
from imagepipe.spec import DEFAULT_PIPELINE, VariantList, load_pipelines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument("--pipelines", type=Path, help="pipelines file (YAML/JSON); default: built in")
    parser.add_argument("--pipeline", default=DEFAULT_PIPELINE, help="pipeline name (default: %(default)s)")
    parser.add_argument(
        "--jobs", type=positive_int, default=available_cpus(), help="parallel workers (default: CPUs)"
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=Limits.max_pixels,
        help="refuse images with more pixels (width × height) in their header (default: %(default)s)",
    )
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
    try:
        pipelines = load_pipelines(args.pipelines)
    except InvalidSpec as exc:
        print(f"imagepipe process: --pipelines: {exc.message}", file=sys.stderr)
        return 2
    if args.pipeline not in pipelines:
        print(
            f"imagepipe process: unknown pipeline {args.pipeline!r}; have {sorted(pipelines)}",
            file=sys.stderr,
        )
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"imagepipe process: --out {str(args.out)!r} is not a folder", file=sys.stderr)
        return 2
    files = sorted(set(expand(args.inputs)))
    limits = Limits(max_pixels=args.max_pixels)
    failed = 0
    names = OutputNames()
    spec = pipelines[args.pipeline]
    results = rendered(files, spec, limits, args.focus, args.jobs)
    with Progress(len(files)) as progress:
        # Results in input order, and a folder name only for an input that
        # rendered: a failed one takes no name from the next with its stem.
        for path, (result, outputs) in zip(files, results, strict=True):
            if outputs:
                result["variants"] = write_outputs(args.out / names.take(path), outputs, result["variants"])
            failed += "error" in result
            progress.advance()
            print(json.dumps(result), flush=True)
    return 1 if failed else 0


def rendered(
    files: list[Path], spec: VariantList, limits: Limits, focus: Focus | None, jobs: int
) -> Iterator[tuple[dict[str, Any], list[Output]]]:
    """Each file's `process_file` result, in order: in this process when one
    worker would do, else in a pool of forked workers."""
    workers = min(jobs, len(files))
    if workers <= 1:
        # A pool of one only adds a process, pickling and the pool's imports
        # (20 ms): render here.
        keep_freed_memory()
        yield from (process_file(f, spec, limits, focus) for f in files)
        return
    # Forked, the workers share the imports this process made (numpy, Pillow:
    # 0.1 s of CPU each if re-imported); frozen, the collector never walks
    # (and copies) those pages in them.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    gc.freeze()
    with ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=keep_freed_memory) as pool:
        futures = [pool.submit(process_file, f, spec, limits, focus) for f in files]
        yield from (future.result() for future in futures)


def expand(inputs: list[Path]) -> Iterator[Path]:
    for path in inputs:
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file())
        else:
            yield path


class OutputNames:
    """Each input's output folder: its stem, made unique by a -2, -3... suffix."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def take(self, path: Path) -> str:
        count = self.seen[path.stem] = self.seen.get(path.stem, 0) + 1
        return path.stem if count == 1 else f"{path.stem}-{count}"


# A variant's name, its file name and its bytes.
Output = tuple[str, str, bytes]


def process_file(
    path: Path, spec: VariantList, limits: Limits, focus: Focus | None = None
) -> tuple[dict[str, Any], list[Output]]:
    """Render one file (in a worker): its JSON line, and the variant files to write."""
    result: dict[str, Any] = {"input": str(path), "focus": asdict(focus) if focus else None}
    try:
        rendered = render(path.read_bytes(), spec, limits, focus=focus)
    except EmptyUpload:
        return {**result, "error": {"code": EmptyUpload.code, "message": f"{path} is empty"}}, []
    except ImagePipeError as exc:
        return {**result, "error": exc.as_dict()}, []
    except OSError as exc:
        return {**result, "error": {"code": "unreadable", "message": str(exc)}}, []
    variants = rendered.variants
    outputs = [(r.variant.name, f"{r.variant.name}.{r.variant.extension}", r.data) for r in variants]
    sizes = {
        r.variant.name: {
            "width": r.width,
            "height": r.height,
            "bytes": len(r.data),
            "crop": crop_rectangle(r.crop),
        }
        for r in variants
    }
    placeholder = asdict(rendered.placeholder) if rendered.placeholder else None
    return {
        **result,
        "source": asdict(rendered.source),
        "variants": sizes,
        "placeholder": placeholder,
    }, outputs


def write_outputs(folder: Path, outputs: list[Output], sizes: dict[str, Any]) -> dict[str, Any]:
    """Write the variant files; each variant's entry, with its `path` first."""
    folder.mkdir(parents=True, exist_ok=True)
    variants = {}
    for variant, file_name, data in outputs:
        (folder / file_name).write_bytes(data)
        variants[variant] = {"path": str(folder / file_name), **sizes[variant]}
    return variants


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
