"""``ms2img profile NAME``: a named set of parameter overrides (``profiles/NAME.yaml``), applied the DVC way.

Prints the ``dvc exp run -S ...`` command that runs the pipeline with the profile (DVC records every value in
the experiment), or with ``--apply`` writes the values into params.yaml itself, comments kept, so that
``dvc params diff`` shows them and the next ``dvc repro`` runs them.
"""

from __future__ import annotations

import argparse
import shlex

from ms2img.commands import add_params_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("profile", help="show or apply a parameter profile (profiles/NAME.yaml, e.g. paper)")
    p.add_argument("name", help="profile name, e.g. paper")
    p.add_argument("--apply", action="store_true", help="write the profile's values into params.yaml")
    add_params_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img.params import apply_overrides, profile_overrides, set_cli_args

    overrides = profile_overrides(args.name, root=args.params.parent)
    if args.apply:
        changed = apply_overrides(args.params, overrides)
        print(f"{args.params}: {len(changed)} value(s) changed: {', '.join(changed) or 'none'}")
    else:
        print(shlex.join(["dvc", "exp", "run", *set_cli_args(overrides)]))
    return 0
