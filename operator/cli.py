"""Run the ImagePipeline operator (kopf), or render what it would create.

imagepipe operator [run] [--namespace NS ...] [--peering NAME | --standalone]
imagepipe operator render FILE
"""

from __future__ import annotations

import argparse

from imagepipe.cliargs import port

from . import render


def _run_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=default,
        help="watch this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--peering",
        default=default,
        help="kopf peering name: with several replicas only one acts (default: imagepipe-operator)",
    )
    parser.add_argument("--standalone", action="store_true", default=default, help="no peering")
    parser.add_argument(
        "--metrics-port",
        type=port,
        default=default,
        help="serve the operator's Prometheus metrics here (default: IMAGEPIPE_METRICS_PORT or 9102)",
    )
    parser.add_argument(
        "--autoscale-interval",
        type=float,
        default=default,
        help="seconds between autoscaler loops (default 15)",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=default,
        help="seconds between the reconciles that repair drifted children (default 30)",
    )
    parser.add_argument(
        "--liveness", default=default, help="kopf liveness endpoint, e.g. http://0.0.0.0:8080/healthz"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _run_options(parser, None)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    # The run subparser must not overwrite options given before it.
    _run_options(actions.add_parser("run", help="run the operator (the default)"), argparse.SUPPRESS)
    render.add_arguments(actions.add_parser("render", help="print the children for a manifest (YAML)"))


def run(args: argparse.Namespace) -> int:
    if args.action == "render":
        return render.run(args)
    from . import main  # kopf starts only when running

    return main.run(args)
