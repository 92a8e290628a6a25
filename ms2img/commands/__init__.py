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
