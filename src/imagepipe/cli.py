"""The `imagepipe` command: one entry point for every role."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand → (module with `add_arguments(parser)` and `run(args) -> int`, help).
COMMANDS: dict[str, tuple[str, str]] = {
    "process": ("imagepipe.batch", "render local files into variants"),
    "serve": ("imagepipe.service.serve", "run the ingest HTTP API"),
    "consume": ("imagepipe.consumer.cli", "consume image jobs from SQS into S3 variants"),
    "dev": ("imagepipe.devstack", "run the whole pipeline on this machine (loopback S3+SQS)"),
    "operator": ("imagepipe.operator.cli", "run the ImagePipeline operator, or render its children"),
    "simulate": (
        "imagepipe.operator.autoscaling.simulation.cli",
        "compare autoscaling policies in a queueing simulation",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="imagepipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Only the chosen command's module is imported: one role never pays for (or
    # breaks on) another role's dependencies.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in COMMANDS.items():
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(commands.add_parser(name, help=help_text, description=module.__doc__))
        else:
            commands.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    assert module is not None and args.command == chosen
    return int(module.run(args))


if __name__ == "__main__":
    sys.exit(main())
