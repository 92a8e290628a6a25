"""``ms2img rollback``: point an assay's champion back at an earlier version (smoke-tested first), with a reason."""

from __future__ import annotations

import argparse

from ms2img.commands import add_params_args, params_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rollback",
        help="set the champion of an assay back to an earlier model version (refused if it cannot be served)",
    )
    p.add_argument("--assay", required=True, help="assay, e.g. DPPH")
    p.add_argument("--to-version", required=True, help="registered model version to make champion")
    p.add_argument("--reason", default=None, help="why (tagged on the version)")
    add_params_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img import registry, tracking
    from ms2img.commands.promote import assay_model_name

    params = params_from_args(args)
    name = assay_model_name(args.assay, params)
    tracking.setup_tracking()
    decision = registry.rollback(name, str(args.to_version), args.reason)
    print(f"{name}: champion {decision.champion_before} -> {decision.candidate} ({decision.family}; {decision.reason})")
    return 0
