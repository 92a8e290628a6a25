"""``ms2img promote``: register every family model of an assay and move ``@champion`` to the selection's winner
when it is safely better (see :mod:`ms2img.registry`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ms2img.commands import add_params_args, params_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "promote",
        help="register models/<assay>/<family>/ as versions of ms2img-<assay> and promote the winner if safely better",
        description=(
            "Registers every family folder under models/<ASSAY>/ (once per content) and compares the winner of "
            "reports/<ASSAY>/selection.json with the champion: on accessions the champion never saw (its "
            "predictions vs the challenger's out-of-fold ones, the champion's label scaling, margin = z x SE of the "
            "AUC difference), else by the selection's paired comparison. A rejected version keeps the challenger "
            "alias with the reason. With --version, only that registered version is considered."
        ),
    )
    p.add_argument("--assay", required=True, help="assay, e.g. DPPH")
    p.add_argument("--version", default=None, help="consider this registered version instead of registering")
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--reports-dir", type=Path, default=Path("reports"))
    p.add_argument("--events-dir", type=Path, default=Path("data/events"))
    p.add_argument("--raw-data", type=Path, default=Path("data/raw"), help="data version (DVC hash) source")
    p.add_argument("--z", type=float, default=None, help="margin in standard errors (default registry.z or 1.645)")
    p.add_argument("--report", type=Path, default=None, help="numbers-only decision JSON (a DVC metrics file)")
    p.add_argument("--fail-on-reject", action="store_true", help="exit 1 when the challenger is rejected (for CI)")
    add_params_args(p)
    p.set_defaults(func=run)


def assay_model_name(assay: str, params: dict) -> str:
    """``<prefix>-<assay>`` for an assay listed in params.yaml (unknown assays rejected before MLflow is touched)."""
    from ms2img import registry
    from ms2img.errors import ConfigError

    assays = params["labels"]["assays"]
    if assay not in assays or not str(assay).replace("-", "_").isidentifier():
        raise ConfigError(f"unknown assay '{assay}'; params.yaml labels.assays lists {assays}")
    return registry.model_name(assay, prefix=params["registry"]["model_prefix"])


def run(args: argparse.Namespace) -> int:
    from ms2img import registry, tracking
    from ms2img.atomic import write_text

    params = params_from_args(args)
    name = assay_model_name(args.assay, params)
    tracking.setup_tracking()
    z = args.z if args.z is not None else float(params["registry"].get("z", registry.DEFAULT_Z))
    max_rows = int(params.get("serve", {}).get("max_rows", 200_000))
    beyond_chance = bool(params["registry"].get("beyond_chance", True))
    if args.version:
        decision = registry.promote_version(
            name, str(args.version), events_dir=args.events_dir, z=z, beyond_chance=beyond_chance
        )
    else:
        decision = registry.promote_assay(
            args.assay,
            models_dir=args.models_dir,
            reports_dir=args.reports_dir,
            events_dir=args.events_dir,
            data_hash=tracking.data_hash(args.raw_data) or "unknown",
            code_version=tracking.code_version(),
            prefix=params["registry"]["model_prefix"],
            z=z,
            beyond_chance=beyond_chance,
            max_rows=max_rows,
            run_id=_training_run(args.reports_dir / args.assay / "run.json"),
        )
    report = decision.report()
    if args.report:
        write_text(args.report, json.dumps(decision.metrics(registry.champion_auc(name)), indent=2) + "\n")
    write_text(args.reports_dir / args.assay / "promotion.json", json.dumps(report, indent=2, default=str) + "\n")
    verdict = "promoted to champion" if decision.promoted else ("unchanged" if not decision.rejected else "rejected")
    print(
        f"{name} version {decision.candidate} ({decision.family}): {verdict} ({decision.reason}); "
        f"{f'champion is {decision.champion_after}' if decision.champion_after else 'no champion'}"
    )
    return 1 if args.fail_on_reject and decision.rejected else 0


def _training_run(path: Path) -> str | None:
    """The MLflow run the training stage logged (reports/<assay>/run.json), so models sit under their run."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("mlflow_run_id")
    except (OSError, ValueError):
        return None
