"""``ms2img explain``: the compounds behind an assay.

``--method model`` (default): the drivers of the assay's champion (reports/<assay>/drivers.{csv,png,json}).
``--method correlation``: no model; every feature's abundance correlated with the raw activity across samples, as
Bioactive Molecular Networking does (activity/<assay>/activity_scores.csv, activity_volcano.png,
cytoscape_nodes.tsv; :mod:`ms2img.explain.correlation`). It works from 5 samples. Its folder is outside reports/,
which the pipeline's report stage reads: a lab's own scoring run leaves the audited pipeline as it was.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)
# ms2img.explain.correlation.NORMALISATIONS, spelled out: importing it (scipy) would slow every `ms2img` call
NORMALISATIONS = ("bmn", "raw")
DEFAULT_NORMALISATION = "bmn"
ACTIVITY_DIR = "activity"  # --method correlation's default folder: not under reports/, a dependency of the report stage


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "explain",
        help="which compounds drive an assay: the champion's drivers, or activity correlation without a model",
        description=(
            "--method model (default): occlusion (image families) or permutation importance (feature families) of "
            "the champion named by reports/<assay>/selection.json, joined to the precursors of the training exports, "
            "annotated by Flash entropy search; writes reports/<assay>/drivers.csv, drivers.png and drivers.json. "
            "--method correlation: Pearson and Spearman correlation of every feature's abundance with the raw "
            "activity across samples (p, Benjamini-Hochberg q, Bonferroni p), no model needed, from 5 samples; "
            "writes activity/<assay>/activity_scores.csv, activity_volcano.png and cytoscape_nodes.tsv "
            "(+ drivers_vs_correlation.csv when the model's reports/<assay>/drivers.csv exists)."
        ),
    )
    p.add_argument("--method", choices=("model", "correlation"), default="model", help="default: model")
    p.add_argument("--assay", required=True, action="append", help="assay to explain (repeat for several)")
    p.add_argument("--params", default="params.yaml", help="parameters file (explain.* keys)")
    p.add_argument("--family", default=None, help="explain this family instead of the selection's winner")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--reports-dir", default="reports")
    p.add_argument("--images-dir", default="data/images")
    p.add_argument("--events-dir", "--events", default="data/events")
    p.add_argument("--features-dir", default="data/features")
    p.add_argument(
        "--assays",
        default="data/raw/assays.csv",
        help="assay table (labels when oof.csv is absent); correlation also reads a FERMO 'sample_name, quant_data' "
        "file or GNPS metadata with ATTRIBUTE_...activ... columns",
    )
    p.add_argument("--block", type=int, default=None, help="occlusion window in pixels (explain.block)")
    p.add_argument("--top", type=int, default=None, help="rows of drivers.csv (explain.top)")
    p.add_argument("--library", action="append", default=None, help="MSP/MGF library (replaces explain.libraries)")
    p.add_argument("--no-refit", action="store_true", help="use the final model in-sample, no per-fold refits")
    p.add_argument("--translator-url", default=None, help="de novo translator endpoint (explain.translator_url)")
    p.add_argument("--no-track", action="store_true", help="do not log the files to the champion's MLflow run")
    corr = p.add_argument_group("--method correlation")
    corr.add_argument(
        "--normalisation",
        choices=NORMALISATIONS,
        default=DEFAULT_NORMALISATION,
        help="bmn (default, as BMN's script): add 1 to every abundance and divide by the sample's total; raw: heights",
    )
    corr.add_argument(
        "--absent-as-zero",
        action="store_true",
        help="accessions missing from the activity file count as activity 0 (FERMO lists only the actives)",
    )
    p.add_argument(
        "--out-dir",
        default=None,
        help="where to write (default: model, <reports-dir>/<assay>, the DVC stage's outputs; correlation, "
        f"{ACTIVITY_DIR}/<assay>; one folder per assay inside it when several are named); the model's drivers "
        "written there are not logged to MLflow",
    )
    corr.add_argument(
        "--annotate-top", type=int, default=50, help="library identities for the first N features (0: none)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img.explain.labels import fold_text, shown_name
    from ms2img.explain.pipeline import config_from_params, explain_assay
    from ms2img.params import load_params

    params = load_params(args.params) if Path(args.params).is_file() else {}
    cfg = config_from_params(params)
    if args.method == "correlation":
        from ms2img.render.config import RenderConfig

        return run_correlation(args, cfg, RenderConfig.from_params(params.get("render")).x_range)
    if args.block is not None:
        cfg.block = args.block
    if args.top is not None:
        cfg.top = args.top
    if args.library:
        cfg.libraries = list(args.library)
    if args.no_refit:
        cfg.refit = False
    if args.translator_url:
        cfg.translator_url = args.translator_url
    labels = params.get("labels") or {}
    for assay in args.assay:
        if labels.get("mode") == "regression" and args.family is None:
            stage_correlation(args, cfg, assay)
            continue
        res = explain_assay(
            assay,
            models_dir=args.models_dir,
            reports_dir=args.reports_dir,
            images_dir=args.images_dir,
            events_dir=args.events_dir,
            features_dir=args.features_dir,
            assays_csv=args.assays,
            config=cfg,
            family=args.family,
            low=float(labels.get("low", 0.4)),
            high=float(labels.get("high", 0.6)),
            out_dir=_out_dir(args, assay),
        )
        d = res.drivers
        named = int((d["library_name"].astype(str) != "").sum()) if len(d) else 0
        print(
            f"{assay}: {len(d)} drivers of the {res.family} champion ({res.meta['attribution']}, "
            f"{res.meta['n_accessions']} accessions, {res.meta['seconds_total']:.1f} s); {named} with a library "
            f"identity; wrote {', '.join(str(p) for p in res.paths.values())}"
        )
        for r in d.head(5).itertuples(index=False):
            name = shown_name(r)
            fold = fold_text(r)
            fold = f"x{fold}" if fold[:1].isdigit() else fold  # x1.90, or "high only"
            print(f"  #{r.rank} m/z {r.precursor_mz:.4f} RT {r.rt_min:.2f} {r.direction} {fold} {name}")
        if not args.no_track and args.out_dir is None:  # a side folder's files never replace the stage's in the run
            _log_to_champion(assay, res.paths, params, res.meta.get("training_key"), res.family)
    return 0


def _out_dir(args: argparse.Namespace, assay: str) -> Path | None:
    """``--out-dir`` for one assay (a folder per assay inside it when several are named); None when not given."""
    if args.out_dir is None:
        return None
    return Path(args.out_dir) / assay if len(args.assay) > 1 else Path(args.out_dir)


def stage_correlation(args: argparse.Namespace, cfg, assay: str) -> dict[str, Path]:
    """The explain stage of a ``labels.mode: regression`` project: the correlation of every feature's abundance
    with the assay value (BMN's activity score, ``--method correlation``) as the stage's drivers.{csv,png,json}.

    Why. A regression champion predicts the value and model attribution explains low/high classes, so the stage
    failed and with it every retrain of such a project (the flow retried the chain: each family registered twice).
    The correlation needs no model and ranks the features a bioactivity-guided lab follows up.
    """
    import json
    import tempfile

    from ms2img.atomic import write_bytes, write_text
    from ms2img.explain.correlation import score_assay

    out = _out_dir(args, assay) or Path(args.reports_dir) / assay
    with tempfile.TemporaryDirectory(prefix="ms2img-explain-") as tmp:
        res = score_assay(
            assay, events_dir=args.events_dir, activity_path=args.assays, out_dir=tmp, normalisation=args.normalisation,
            libraries=list(args.library) if args.library else cfg.libraries, annotate=args.annotate_top, seed=cfg.seed,
        )  # fmt: skip
        paths = {"csv": out / "drivers.csv", "png": out / "drivers.png", "json": out / "drivers.json"}
        write_bytes(paths["csv"], res.paths["csv"].read_bytes())
        write_bytes(paths["png"], res.paths["png"].read_bytes())
    meta = {**res.meta, "attribution": "correlation with the assay value (a regression model: no class attribution)"}
    write_text(paths["json"], json.dumps(meta, indent=2))
    print(
        f"{assay}: a regression model; drivers are the correlation of {res.meta['n_features']} features with the "
        f"assay value over {res.meta['n_samples']} samples ({res.meta['n_q_below_0.05']} with q < 0.05); wrote "
        f"{', '.join(str(p) for p in paths.values())}"
    )
    return paths


def run_correlation(args: argparse.Namespace, cfg, x_range: tuple[float, float]) -> int:
    """Score every feature against each assay (``--method correlation``); no model, no MLflow."""
    from ms2img.explain.correlation import read_abundances, score_assay

    abundances = read_abundances(args.events_dir, mz_ppm=cfg.mz_ppm, rt_tol_min=cfg.rt_tol_min)
    for assay in args.assay:
        out_dir = _out_dir(args, assay) or Path(ACTIVITY_DIR) / assay
        res = score_assay(
            assay,
            events_dir=args.events_dir,
            activity_path=args.assays,
            out_dir=out_dir,
            normalisation=args.normalisation,
            absent_as_zero=args.absent_as_zero,
            libraries=list(args.library) if args.library else cfg.libraries,
            annotate=args.annotate_top,
            drivers_csv=Path(args.reports_dir) / assay / "drivers.csv",
            abundances=abundances,
            seed=cfg.seed,
            x_range=x_range,
        )
        m = res.meta
        print(
            f"{assay}: {m['n_features']} features x {m['n_samples']} samples ({m['normalisation']} normalisation, "
            f"{m['seconds_total']:.2f} s); {m['n_q_below_0.05']} with q < 0.05, {m['n_bonferroni_below_0.05']} with "
            f"Bonferroni p < 0.05; p by {m['p_method']}; wrote {', '.join(str(p) for p in res.paths.values())}"
        )
        if m.get("replicate_warning"):  # said where the p values are read, not only in ingest's output
            print(f"  warning: {m['replicate_warning']}")
        for r in res.scores.head(5).itertuples(index=False):
            name = f" {r.library_match}" if r.library_match else ""
            print(
                f"  #{r.rank} {r.feature_id} m/z {r.precursor_mz:.4f} RT {r.rt_min:.2f} r {r.r:+.3f} q {r.q:.2g}{name}"
            )
    return 0


def _log_to_champion(assay: str, paths: dict, params: dict, training_key: str | None, family: str) -> None:
    """Attach the files to the run of the model version behind ``ms2img-<assay>@champion`` (if any), only when that
    version is the model explained (``training_key`` from its card, shared by a run's families, and ``family``):
    after a rejected promotion the stage explains this run's winner, and its drivers on the champion's card would
    describe another model (family, data)."""
    import os

    if not os.environ.get("MLFLOW_TRACKING_URI") and not Path("mlflow.db").is_file():
        log.info("MLflow not configured (no MLFLOW_TRACKING_URI, no mlflow.db): drivers not tracked")
        return
    try:
        from mlflow import MlflowClient

        from ms2img.registry.card import attach_drivers
        from ms2img.tracking import setup_tracking

        setup_tracking()
        prefix = str((params.get("registry") or {}).get("model_prefix", "ms2img"))
        client = MlflowClient()
        from ms2img.registry.store import CHAMPION, FAMILY_TAG, TRAINING_TAG, alias_version

        number = alias_version(f"{prefix}-{assay}", CHAMPION)
        if number is None:  # promotion refused one (or has not run)
            print(f"  not logged to MLflow: {prefix}-{assay} has no champion")
            return
        version = client.get_model_version(f"{prefix}-{assay}", number)
        if not version.run_id:
            log.warning("%s-%s@champion has no run; drivers not tracked", prefix, assay)
            return
        if training_key and (version.tags.get(TRAINING_TAG), version.tags.get(FAMILY_TAG)) != (training_key, family):
            print(
                f"  not logged to {version.name} v{version.version} ({version.tags.get(FAMILY_TAG, '?')}), the "
                "champion promotion kept: these drivers explain this run's winner, which is not the served model"
            )
            return
        for p in paths.values():
            client.log_artifact(version.run_id, str(p), artifact_path="explain")
        attach_drivers(version.name, version.version, paths["csv"], run_id=version.run_id, client=client)
        where = f"model {version.name} v{version.version}, artifacts explain/, drivers on its card"
        print(f"  logged to run {version.run_id} ({where})")
    except Exception as exc:  # noqa: BLE001 - tracking is optional: say why and carry on
        log.warning("drivers not logged to MLflow (%s: %s)", exc.__class__.__name__, exc)
