"""``ms2img profile NAME``: a named set of parameter overrides (``profiles/NAME.yaml``), applied the DVC way.

Prints the ``dvc exp run -S ...`` command that runs the pipeline with the profile (DVC records every value in
the experiment), or with ``--apply`` writes the values into params.yaml itself, comments kept, so that
``dvc params diff`` shows them and the next ``dvc repro`` runs them.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from ms2img.commands import add_params_args
from ms2img.errors import InputFileError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("profile", help="show or apply a parameter profile (profiles/NAME.yaml, e.g. paper)")
    p.add_argument("name", help="profile name, e.g. paper")
    p.add_argument("--apply", action="store_true", help="write the profile's values into params.yaml")
    add_params_args(p)
    p.set_defaults(func=run)


def check_profile_assays(overrides: dict[str, Any], params: dict[str, Any], profile: Path) -> None:
    """Refuse a profile whose ``resolution.assays`` names assays params.yaml's ``labels.assays`` lacks.

    A project made by an older ``ms2img init`` holds the paper's own profile (DPPH, elastase, TFC, TPC); applied
    as is, ``dvc repro`` would plan ``resolution@DPPH`` in a project without a DPPH column.
    """
    wanted = overrides.get("resolution.assays") or []
    have = list((params.get("labels") or {}).get("assays") or [])
    unknown = [a for a in wanted if a not in have]
    if unknown:
        text = profile.read_text(encoding="utf-8").splitlines() if profile.is_file() else []
        line = next((i for i, ln in enumerate(text, start=1) if ln.startswith("resolution.assays")), None)
        raise InputFileError(
            profile,
            f"resolution.assays names {', '.join(map(str, unknown))}, not assays of this project "
            f"(labels.assays: {', '.join(map(str, have)) or 'none'}); set it to [{', '.join(map(str, have))}]",
            line=line,
        )


def run(args: argparse.Namespace) -> int:
    from ms2img.params import PROFILES_DIR, apply_overrides, load_params, profile_overrides, set_cli_args

    overrides = profile_overrides(args.name, root=args.params.parent)
    profile = args.params.parent / PROFILES_DIR / f"{args.name}.yaml"
    check_profile_assays(overrides, load_params(args.params), profile)
    if args.apply:
        changed = apply_overrides(args.params, overrides)
        print(f"{args.params}: {len(changed)} value(s) changed: {', '.join(changed) or 'none'}")
    else:
        print(shlex.join(["dvc", "exp", "run", *set_cli_args(overrides)]))
    return 0
