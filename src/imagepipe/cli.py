"""The `imagepipe` command: one entry point for every role."""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

# Subcommand → (module with `add_arguments(parser)` and `run(args) -> int`, help).
COMMANDS: dict[str, tuple[str, str]] = {
    "process": ("imagepipe.batch", "render local files into variants"),
    "serve": ("imagepipe.service.serve", "run the ingest HTTP API"),
    "consume": ("imagepipe.consumer.cli", "consume image jobs from SQS into S3 variants"),
    "deliver": ("imagepipe.webhooks.cli", "deliver signed webhook events from the delivery queue"),
    "jobs": ("imagepipe.jobadmin", "list, show and retry jobs (for operators of the service)"),
    "dev": ("imagepipe.devstack", "run the whole pipeline on this machine (loopback S3+SQS)"),
    "operator": ("imagepipe.operator.cli", "run the ImagePipeline operator, or render its children"),
    "simulate": (
        "imagepipe.operator.autoscaling.simulation.cli",
        "compare autoscaling policies in a queueing simulation",
    ),
}


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: what is wrong, and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class Version(argparse.Action):
    """--version, reading the installed version only when asked: importing
    importlib.metadata costs every command 30 ms of CPU at start."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> NoReturn:
        from importlib.metadata import version

        print(f"imagepipe {version('imagepipe')}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = Parser(prog="imagepipe", description=__doc__)
    parser.add_argument("--version", action=Version)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Only the chosen command's module is imported: one role never pays for (or
    # breaks on) another role's dependencies.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    with _collector_paused():
        from imagepipe.config import ConfigError
        from imagepipe.errors import ImagePipeError

        for name, (module_name, help_text) in COMMANDS.items():
            if name == chosen:
                module = importlib.import_module(module_name)
                module.add_arguments(commands.add_parser(name, help=help_text, description=module.__doc__))
            else:
                commands.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    assert module is not None and args.command == chosen
    try:
        return int(module.run(args))
    except (ConfigError, ImagePipeError) as exc:
        # A bad setting or file the command did not name itself: still one line.
        print(f"imagepipe {chosen}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Start-up imports without the cyclic collector: its scans of the
    growing heap are 10 % of the CPU of imports that make no garbage (numpy,
    Pillow: 10 ms of `imagepipe process`)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


if __name__ == "__main__":
    sys.exit(main())
