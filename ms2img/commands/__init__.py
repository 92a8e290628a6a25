"""CLI subcommands, one module each: ``add_parser(subparsers)`` registers, ``run(args)`` executes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ms2img.params import DEFAULT_PARAMS_PATH, load_params


def add_params_args(parser: argparse.ArgumentParser) -> None:
    """The ``--params`` / ``--profile`` pair every stage that reads params.yaml accepts."""
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS_PATH, help="params.yaml (default: ./params.yaml)")
    parser.add_argument("--profile", default=None, help="apply profiles.<name> from params.yaml (quick | full)")


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Load params.yaml with the profile named on the command line, or the one params.yaml selects."""
    params = load_params(args.params)
    profile = args.profile or params.get("cnn", {}).get("profile")
    return load_params(args.params, profile=profile) if profile else params


def registered_name(args: argparse.Namespace, params: dict[str, Any]) -> str:
    """The registered model an assay-level command acts on; unknown assays are rejected before MLflow is touched."""
    from ms2img import registry
    from ms2img.errors import ConfigError

    assays = params["labels"]["assays"]
    if args.assay not in assays:
        raise ConfigError(f"unknown assay '{args.assay}'; params.yaml labels.assays lists {assays}")
    return registry.model_name(args.assay, args.kind, prefix=params["registry"]["model_prefix"])
