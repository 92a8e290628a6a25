"""``ms2img promote``: make the newest version of an assay's model challenger, and champion if it is good enough."""

from __future__ import annotations

import argparse

from ms2img.commands import add_params_args, params_from_args, registered_name


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "promote",
        help="promote the newest registered model of an assay to champion if it is not worse than the current one",
        description=(
            "The newest version (or --version) becomes challenger. It replaces the champion only if its "
            "cross-validated AUC is not worse by more than registry.auc_margin and a smoke prediction on its "
            "input example succeeds; otherwise the champion stays and the reason is tagged on the version."
        ),
    )
    p.add_argument("--assay", required=True, help="assay, e.g. DPPH")
    p.add_argument("--version", default=None, help="version to consider (default: the newest)")
    p.add_argument("--kind", default="cnn", choices=["cnn", "rf"], help="which registered model family")
    p.add_argument("--margin", type=float, default=None, help="override registry.auc_margin")
    p.add_argument("--report", default=None, help="also write the decision as JSON here (a DVC metrics file)")
    add_params_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img import registry, tracking

    params = params_from_args(args)
    name = registered_name(args, params)
    tracking.setup_tracking()
    margin = args.margin if args.margin is not None else float(params["registry"]["auc_margin"])
    decision = registry.promote(name, args.version, margin=margin)
    verdict = "promoted to champion" if decision.promoted else "not promoted"
    if args.report:
        from dataclasses import asdict

        from ms2img.evaluate import write_metrics_json

        write_metrics_json(args.report, {**asdict(decision), "champion_after": decision.champion_after})
    print(f"{name} version {decision.candidate}: {verdict} ({decision.reason}); champion is {decision.champion_after}")
    return 0
