"""CLI subcommands, one module each: ``add_parser(subparsers)`` registers, ``run(args)`` executes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ms2img.params import DEFAULT_PARAMS_PATH, load_params


def add_params_args(parser: argparse.ArgumentParser) -> None:
    """The ``--params`` option every stage that reads params.yaml accepts (its values are the values that run)."""
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS_PATH, help="params.yaml (default: ./params.yaml)")


def params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """params.yaml as named on the command line (read once)."""
    return load_params(args.params)
