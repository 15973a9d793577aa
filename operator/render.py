"""`imagepipe operator render FILE`: print the children the operator would
create for the ImagePipeline manifests in FILE (`-` for stdin) as a YAML
stream. Same builders and validation as the operator; no cluster needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from .builders import Manifest
from .children import build_children
from .imagepipeline import InvalidPipeline, parse_imagepipeline
from .schema import GROUP, KIND, VERSION


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="ImagePipeline manifest(s), YAML; - for stdin")
    parser.add_argument(
        "--no-prometheus-rule",
        action="store_true",
        help="leave out the PrometheusRule (as on a cluster without the Prometheus operator)",
    )


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(str, _str_presenter)


def render(documents: list[Any], *, prometheus_rules: bool = True) -> list[Manifest]:
    """The children of every ImagePipeline among `documents`; other kinds are skipped."""
    children: list[Manifest] = []
    for doc in documents:
        if (
            isinstance(doc, dict)
            and doc.get("kind") == KIND
            and doc.get("apiVersion") == f"{GROUP}/{VERSION}"
        ):
            children += build_children(parse_imagepipeline(doc), prometheus_rules=prometheus_rules)
    return children


def dump(manifests: list[Manifest]) -> str:
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, explicit_start=True)


def run(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        documents = list(yaml.safe_load_all(text))
        children = render(documents, prometheus_rules=not args.no_prometheus_rule)
    except (OSError, yaml.YAMLError) as exc:
        print(f"imagepipe operator render: {exc}", file=sys.stderr)
        return 2
    except InvalidPipeline as exc:
        print(f"imagepipe operator render: invalid ImagePipeline: {exc.message}", file=sys.stderr)
        return 2
    if not children:
        print(f"imagepipe operator render: no {GROUP}/{VERSION} {KIND} in {args.file}", file=sys.stderr)
        return 2
    sys.stdout.write(dump(children))
    return 0
