"""``ms2img train``: every model family of one assay on the same folds, the winner, the final models."""

from __future__ import annotations

import argparse
from pathlib import Path

from ms2img.commands import add_params_args, params_from_args
from ms2img.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="cross-validate every model family for one assay, choose the winner, save the final models",
        description=(
            "Repeated grouped stratified CV (cv.folds x cv.repeats) with label scaling fitted inside each "
            "training fold; the tuned CNN (Keras Tuner, inner loss, early stopping), RF on the image pixels and "
            "RF on each merged feature table, all on the same folds; intervals and paired tests; PCA and "
            "OPLS-DA. Writes metrics/<ASSAY>.json, reports/<ASSAY>/, models/<ASSAY>/<family>/ and plots/<ASSAY>/. "
            "With --resolution-study, runs the paper's Table 1 (the CNN at every render.sizes) instead."
        ),
    )
    p.add_argument("--assay", required=True, help="assay column of assays.csv, e.g. DPPH")
    p.add_argument("--images", type=Path, default=None, help="image tensors (default: data/images/<render.size>.npz)")
    p.add_argument("--assays", type=Path, default=Path("data/raw/assays.csv"), help="assays.csv")
    p.add_argument("--features", type=Path, default=Path("data/features"), help="merged feature tables")
    p.add_argument("--events", type=Path, default=Path("data/events"), help="events (feature spectra of models)")
    p.add_argument("--raw-data", type=Path, default=Path("data/raw"), help="raw data whose hash tags the run")
    p.add_argument("--validation-report", type=Path, default=Path("reports/validation.json"))
    p.add_argument("--resolution-study", action="store_true", help="compare render.sizes (the paper's Table 1)")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    add_params_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img import tracking
    from ms2img.render import images_path
    from ms2img.training.scores import LABELS
    from ms2img.training.stage import resolution_study, train_assay

    params = params_from_args(args)
    if not args.assays.exists():
        raise ConfigError(f"{args.assays}: assays file not found")
    if args.resolution_study:
        paths = {s: images_path(s) for s in params["render"]["sizes"]}
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise ConfigError(f"missing image tensors {missing}; run `ms2img render --sizes ...` first")
        out = resolution_study(assay=args.assay, image_paths=paths, assays_csv=args.assays, params=params)
        for row in out["table"]:
            print(f"{args.assay} {row['size']}: AUC {row['auc_mean']:.3f} ± {row['auc_sd']:.3f}")
        return 0
    images = args.images or images_path(params["render"]["size"])
    if not images.exists():
        raise ConfigError(f"{images}: image tensors not found; run `ms2img render` first")
    if not args.no_track:
        tracking.setup_tracking()
    units = (params["labels"].get("units") or {}).get(args.assay)
    out = train_assay(
        assay=args.assay,
        params=params,
        images_path=images,
        assays_csv=args.assays,
        features_dir=args.features,
        events_dir=args.events,
        raw_data=args.raw_data,
        validation_report=args.validation_report,
        track=not args.no_track,
        units=units,
    )
    fams = out["metrics"]["families"]
    metric = out["selection"].get("metric", "auc")
    for fam, entry in fams.items():
        a = entry[metric]
        print(
            f"{args.assay} {fam:<10} {LABELS[metric]} {a['mean']:.3f} ± {a['sd']:.3f} "
            f"(95% CI {a['ci_low']:.3f}-{a['ci_high']:.3f})"
        )
    selection, took = out["selection"], out["run"]["seconds"]
    print(f"{args.assay}: winner {selection['winner']}: {selection['reason']} (all families trained in {took} s)")
    for warning in selection.get("warnings", []):  # said again where the numbers are read
        print(f"{args.assay}: warning: {warning}")
    if selection.get("small_cohort"):  # said again where the numbers are read, not only in the log above
        print(small_cohort_line(args.assay, selection, metric))
    return 0


def small_cohort_line(assay: str, selection: dict, metric: str) -> str:
    """The small-cohort note printed under the scores, naming the floor of the metric the winner was chosen by:
    Newcombe's interval for AUC (classes), the Fisher-z interval for Spearman's rho (labels.mode: regression)."""
    floor = (
        "Newcombe's score interval for an AUC"
        if metric == "auc"
        else "the Fisher-z interval (Bonett-Wright) for Spearman's rho"
    )
    return (
        f"{assay}: {selection.get('protocol') or 'small cohort'}; each interval is at least as wide as {floor} "
        "from this many accessions"
    )
