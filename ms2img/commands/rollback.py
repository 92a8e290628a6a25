"""``ms2img rollback``: point an assay's champion back at an earlier version (smoke-tested first), with a reason."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ms2img.commands import add_params_args, params_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rollback",
        help="set the champion of an assay back to an earlier model version (refused if it cannot be served)",
    )
    p.add_argument("--assay", required=True, help="assay, e.g. DPPH")
    p.add_argument("--to-version", required=True, help="registered model version to make champion")
    p.add_argument("--reason", default=None, help="why (tagged on the version)")
    p.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where promote wrote promotion.json")
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
    record = record_rollback(args.reports_dir / args.assay, decision)
    if record is not None:
        print(f"{record}: the report names the served model from it; `dvc repro report` (or `ms2img report`) shows it")
    return 0


def record_rollback(report_dir: Path, decision) -> Path | None:
    """Write ``rollback.json`` beside the assay's promotion.json (None without one, no project here, or when the
    champion did not change).

    Why: the report names the served model from promote@'s promotion.json, which a rollback by hand must not rewrite
    (promote@ would then be stale and decide again); the report stage reads this file too (its dependency
    ``reports``) and shows the rollback while ``replaces`` is still the champion that promotion left."""
    from ms2img.atomic import write_text

    if not (report_dir / "promotion.json").is_file() or decision.candidate == decision.champion_before:
        return None
    entry = {"champion": decision.candidate, "family": decision.family, "replaces": decision.champion_before,
             "reason": decision.reason}  # fmt: skip
    path = report_dir / "rollback.json"
    write_text(path, json.dumps(entry, indent=2) + "\n")
    return path
