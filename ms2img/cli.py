"""The ``ms2img`` command: one subcommand per pipeline stage, thin over the library.

Each subcommand lives in ``ms2img/commands/<name>.py`` with ``add_parser(subparsers)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ms2img import __version__
from ms2img.errors import USER_ERROR, Ms2ImgError
from ms2img.lifeline import watch_parent

COMMANDS = [
    "init",
    "synth",
    "ingest",
    "validate",
    "render",
    "features",
    "train",
    "promote",
    "rollback",
    "serve",
    "request",
    "profile",
    "report",
    "explain",
    "retrain",
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ms2img",
        description="Predict bioactivity of natural-product extracts from untargeted LC-MS/MS data (MS2toImg).",
    )
    parser.add_argument("--version", action="version", version=f"ms2img {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"ms2img.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"ms2img.commands.{name}":
                continue  # subcommand not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, run, and turn known errors into one clear line and a non-zero exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # a line per HTTP call to MLflow or Prefect ('422 Unprocessable Entity' reads as an error)
        for chatty in ("httpx", "httpcore"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    watch_parent(args.command)  # a stage command dies with the flow or Dask worker that started it
    try:
        return int(args.func(args) or 0)
    except Ms2ImgError as exc:
        print(f"ms2img {args.command}: error: {exc}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"ms2img {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a read-only folder: outputs are swapped in whole, so nothing is half-written
        if args.verbose:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"ms2img {args.command}: error: {exc.strerror or exc}{where}; no output is half-written", file=sys.stderr)
        return USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
