"""``ms2img train``: nested-CV CNN for one assay (tuned with Keras Tuner), final model, MLflow run, registration."""

from __future__ import annotations

import argparse
from pathlib import Path

from ms2img.commands import add_params_args, params_from_args
from ms2img.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train and cross-validate the CNN for one assay; log to MLflow and register the final model",
        description=(
            "Labels the assay (min-max, <low / >high), cuts grouped stratified folds, tunes the CNN inside each "
            "training fold (Keras Tuner random search), scores the held-out accessions, trains the final model "
            "on all labelled data, writes metrics/<ASSAY>.json and plots/<ASSAY>/, and registers the model "
            "as ms2img-<ASSAY>. With --resolution-study, runs the paper's Table 1 instead."
        ),
    )
    p.add_argument("--assay", required=True, help="assay column of assays.csv, e.g. DPPH")
    p.add_argument("--images", type=Path, default=None, help="image tensors (default: data/images/<render.size>.npz)")
    p.add_argument("--assays", type=Path, default=Path("data/raw/assays.csv"), help="assays.csv")
    p.add_argument("--events", type=Path, default=Path("data/events"), help="events folder (input example)")
    p.add_argument("--raw-data", type=Path, default=Path("data/raw"), help="raw data whose hash tags the run")
    p.add_argument("--validation-report", type=Path, default=Path("reports/validation.json"))
    p.add_argument("--resolution-study", action="store_true", help="compare render.sizes (the paper's Table 1)")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow (and do not register)")
    p.add_argument("--no-register", action="store_true", help="log to MLflow but do not register the model")
    add_params_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img import tracking
    from ms2img.train import resolution_study, train_assay

    params = params_from_args(args)
    assays = params["labels"]["assays"]
    if not args.assays.exists():
        raise ConfigError(f"{args.assays}: assays file not found")
    if not args.no_track:
        tracking.setup_tracking()
    if args.resolution_study:
        paths = {s: Path("data/images") / f"{s}.npz" for s in params["render"]["sizes"]}
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise ConfigError(f"missing image tensors {missing}; run `ms2img render --sizes ...` first")
        out = resolution_study(
            assay=args.assay,
            image_paths=paths,
            assays_csv=args.assays,
            params=params,
            raw_data=args.raw_data,
            track=not args.no_track,
        )
        for row in out["table"]:
            print(
                f"{args.assay} {row['size']}: AUC {row['auc_mean']:.3f} ± {row['auc_sd']:.3f}, "
                f"accuracy {row['accuracy_mean']:.3f} ± {row['accuracy_sd']:.3f}, "
                f"train-validation accuracy gap {row['train_val_gap']:+.3f}"
            )
        return 0
    if args.assay not in assays:
        print(f"note: assay {args.assay} is not in labels.assays {assays}; training it anyway")
    images = args.images or Path("data/images") / f"{params['render']['size']}.npz"
    if not images.exists():
        raise ConfigError(f"{images}: image tensors not found; run `ms2img render` first")
    out = train_assay(
        assay=args.assay,
        images_path=images,
        assays_csv=args.assays,
        params=params,
        events_dir=args.events,
        raw_data=args.raw_data,
        validation_report=args.validation_report,
        track=not args.no_track,
        register=not (args.no_track or args.no_register),
    )
    s = out["cnn"]["summary"]
    print(
        f"{args.assay}: CNN cross-validated AUC {s['roc_auc']['mean']:.3f} ± {s['roc_auc']['sd']:.3f}, "
        f"accuracy {s['accuracy']['mean']:.3f} ± {s['accuracy']['sd']:.3f} ({out['seconds']} s)"
    )
    if "registered" in out:
        r = out["registered"]
        print(f"registered {r['name']} version {r['version']}; promote with `ms2img promote --assay {args.assay}`")
    return 0
