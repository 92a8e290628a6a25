"""``ms2img baselines``: RF (feature tables and flattened image), PCA and OPLS-DA on the CNN's folds."""

from __future__ import annotations

import argparse
from pathlib import Path

from ms2img.commands import add_params_args, params_from_args
from ms2img.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "baselines",
        help="RF on the merged feature tables and on flattened images, PCA and OPLS-DA, on the CNN's folds",
        description=(
            "Runs the baselines for one assay on exactly the CNN's grouped stratified folds (same seed), "
            "writes metrics/<ASSAY>_baselines.json and plots/<ASSAY>/, logs nested MLflow runs under the "
            "assay's training run and registers the image RF as ms2img-<ASSAY>-rf."
        ),
    )
    p.add_argument("--assay", required=True, help="assay column of assays.csv, e.g. DPPH")
    p.add_argument("--images", type=Path, default=None, help="image tensors (default: data/images/<render.size>.npz)")
    p.add_argument("--features", type=Path, default=Path("data/features"), help="folder written by `ms2img features`")
    p.add_argument("--assays", type=Path, default=Path("data/raw/assays.csv"), help="assays.csv")
    p.add_argument("--events", type=Path, default=Path("data/events"), help="events folder (input example)")
    p.add_argument("--raw-data", type=Path, default=Path("data/raw"), help="raw data whose hash tags the run")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow (and do not register)")
    p.add_argument("--no-register", action="store_true", help="do not register the image RF")
    add_params_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img import tracking
    from ms2img.compare import run_baselines

    params = params_from_args(args)
    images = args.images or Path("data/images") / f"{params['render']['size']}.npz"
    for path, hint in ((images, "ms2img render"), (args.features, "ms2img features"), (args.assays, "ms2img synth")):
        if not path.exists():
            raise ConfigError(f"{path}: not found; run `{hint}` first")
    if not args.no_track:
        tracking.setup_tracking()
    out = run_baselines(
        assay=args.assay,
        images_path=images,
        features_dir=args.features,
        assays_csv=args.assays,
        params=params,
        raw_data=args.raw_data,
        events_dir=args.events,
        track=not args.no_track,
        register=not (args.no_track or args.no_register),
    )
    for name in [k for k in out if k.startswith("rf")]:
        s = out[name]["summary"]["roc_auc"]
        print(f"{args.assay} {name}: AUC {s['mean']:.3f} ± {s['sd']:.3f}")
    o = out["oplsda"]
    print(
        f"{args.assay} OPLS-DA: R2Y {o['r2y']:.3f}, Q2Y {o['q2y']:.3f}, permutation p(Q2Y) {o['permutation_p_q2y']:.3f}"
    )
    return 0
