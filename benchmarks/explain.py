"""Benchmark of ``ms2img explain`` on a synthetic cohort: precision@20 of the drivers against truth.csv.

    .venv/bin/ms2img synth --accessions 80 --seed 5 --out /tmp/ex/raw --force
    .venv/bin/ms2img ingest /tmp/ex/raw/exports --out /tmp/ex/events
    .venv/bin/ms2img render /tmp/ex/events --sizes 75x70 --out-dir /tmp/ex/images
    .venv/bin/python benchmarks/explain.py --cohort /tmp/ex --work /tmp/ex/work
    .venv/bin/python benchmarks/explain.py --project . --work /tmp/reexplain   # a pipeline run, explained again

Without trained models under ``<work>/models`` it fits the image RF itself (FlattenImages + 200 trees, the
project's class-balanced forest) with 5 grouped stratified folds, writes ``oof.csv`` and ``selection.json`` like
the training stage, then runs :func:`ms2img.explain.pipeline.explain_assay` per assay (held-out refits) and
scores the top 20 drivers. ``--models-dir/--reports-dir`` point at a real training run instead. Prints a table
and writes ``<work>/explain_benchmark.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ASSAYS = ("DPPH", "elastase", "TFC", "TPC")


def fit_rf_image(cohort: Path, work: Path, size: str, assays: list[str], trees: int, seed: int) -> None:
    """The training stage's outputs for an rf-image champion, on a laptop budget."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline

    from ms2img.models.baselines import FlattenImages
    from ms2img.models.family import FamilyModel
    from ms2img.render import ImageSet
    from ms2img.training.labels import make_labels, read_assays

    ims = ImageSet.load(cohort / "images" / f"{size}.npz")
    table = read_assays(cohort / "raw" / "assays.csv")
    idx = {a: i for i, a in enumerate(ims.ids)}

    def rf():
        forest = RandomForestClassifier(trees, n_jobs=1, random_state=seed, class_weight="balanced")
        return Pipeline([("flatten", FlattenImages()), ("rf", forest)])

    for assay in assays:
        lab = make_labels(table, assay)
        lab = lab[lab["accession"].isin(idx)].reset_index(drop=True)
        x = ims.images[[idx[a] for a in lab["accession"]]]
        y = lab["label"].to_numpy()
        rows = []
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(x.reshape(len(y), -1), y)
        for k, (train, test) in enumerate(folds):
            p = rf().fit(x[train], y[train]).predict_proba(x[test])[:, 1]
            rows += [
                {"accession": lab["accession"][i], "repeat": 0, "fold": k, "family": "rf-image", "probability": pi,
                 "value": lab["value"][i], "normalized": lab["normalized"][i], "label": int(y[i])}
                for i, pi in zip(test, p, strict=True)
            ]  # fmt: skip
        card = {"assay": assay, "render": ims.config, "threshold": 0.5, "hyperparameters": {"n_estimators": trees}}
        FamilyModel("rf-image", card, rf().fit(x, y), list(lab["accession"])).save(work / "models" / assay / "rf-image")
        rep = work / "reports" / assay
        rep.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(rep / "oof.csv", index=False)
        (rep / "selection.json").write_text(json.dumps({"winner": "rf-image", "reason": "benchmark", "ranking": []}))


def reexplain_project(args: argparse.Namespace) -> int:
    """``--project P --work W``: explain P's champions again (P/models, P/reports/<assay>/{oof.csv,selection.json},
    P/data/{images,events,features}) with the code as it is, drivers to W/reports/<assay>/; score against truth.csv.

    An assay without a trained champion in P/models gets the benchmark's own image RF (fitted into W/models)."""
    import shutil

    from explain_truth import precision_at_k, read_truth

    from ms2img.explain.pipeline import ExplainConfig, explain_assay

    data, work = args.project / "data", args.work
    truth = read_truth(data / "raw" / "truth.csv")
    cfg = ExplainConfig(block=args.block, refit=not args.no_refit)
    rows = []
    for assay in args.assay or list(ASSAYS):
        models = args.project / "models"
        if (models / assay).is_dir() and (args.project / "reports" / assay / "selection.json").is_file():
            shutil.copytree(args.project / "reports" / assay, work / "reports" / assay, dirs_exist_ok=True)
        else:
            models = work / "models"
            if not (models / assay / "rf-image").is_dir():
                fit_rf_image(data, work, args.size, [assay], args.trees, args.seed)
        t = time.perf_counter()
        res = explain_assay(
            assay, models, work / "reports", data / "images", data / "events", data / "features",
            assays_csv=data / "raw" / "assays.csv", config=cfg,
        )  # fmt: skip
        score = precision_at_k(res.drivers, truth, assay, k=args.k)
        rows.append({**score, "family": res.family, "seconds": round(time.perf_counter() - t, 1)})
    df = pd.DataFrame(rows)
    print(df[["assay", "family", "precision", "hits", "distinct_actives", "annotated_share", "seconds"]].to_string(
        index=False))  # fmt: skip
    print(f"mean precision@{args.k}: {np.nanmean(df['precision']):.3f}")
    (work / "explain_benchmark.json").write_text(json.dumps({"k": args.k, "assays": rows}, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", type=Path, default=None, help="folder with raw/ (truth.csv), events/, images/")
    ap.add_argument("--project", type=Path, default=None,
                    help="score the drivers a pipeline run already wrote (PROJECT/reports/<assay>/drivers.csv, "
                         "e.g. after `make demo`) against PROJECT/data/raw/truth.csv; nothing is refitted")  # fmt: skip
    ap.add_argument("--work", type=Path, default=None,
                    help="models/ and reports/ go here (default <cohort>/work); with --project: explain "
                         "its champions again with this code, into WORK/reports/<assay>/drivers.csv")  # fmt: skip
    ap.add_argument("--models-dir", type=Path, default=None)
    ap.add_argument("--reports-dir", type=Path, default=None)
    ap.add_argument("--size", default="75x70")
    ap.add_argument("--assay", action="append", default=None)
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--block", type=int, default=3)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-refit", action="store_true", help="in-sample final model instead of per-fold refits")
    args = ap.parse_args(argv)

    from explain_truth import precision_at_k, read_truth

    if args.project is not None and args.work is not None:
        return reexplain_project(args)
    if args.project is not None:
        truth = read_truth(args.project / "data" / "raw" / "truth.csv")
        print(f"{'assay':<9} {'precision@' + str(args.k):>13} {'annotated share':>16}")
        for assay in args.assay or list(ASSAYS):
            r = precision_at_k(pd.read_csv(args.project / "reports" / assay / "drivers.csv"), truth, assay, k=args.k)
            print(f"{assay:<9} {r['precision']:>13.2f} {r['annotated_share']:>16.2f}")
        return 0
    if args.cohort is None:
        ap.error("give --cohort (fit and explain) or --project (score a pipeline run's drivers)")
    from ms2img.explain.pipeline import ExplainConfig, explain_assay

    work = args.work or args.cohort / "work"
    models_dir = args.models_dir or work / "models"
    reports_dir = args.reports_dir or work / "reports"
    assays = args.assay or list(ASSAYS)
    truth = read_truth(args.cohort / "raw" / "truth.csv")
    t0 = time.perf_counter()
    if args.models_dir is None and not all((models_dir / a / "rf-image").is_dir() for a in assays):
        fit_rf_image(args.cohort, work, args.size, assays, args.trees, args.seed)
    t_fit = time.perf_counter() - t0
    cfg = ExplainConfig(block=args.block, refit=not args.no_refit)
    rows = []
    for assay in assays:
        t = time.perf_counter()
        res = explain_assay(
            assay, models_dir, reports_dir, args.cohort / "images", args.cohort / "events",
            assays_csv=args.cohort / "raw" / "assays.csv", config=cfg,
        )  # fmt: skip
        score = precision_at_k(res.drivers, truth, assay, k=args.k)
        score.update(family=res.family, attribution=res.meta["attribution"], seconds=round(time.perf_counter() - t, 1),
                     seconds_attribution=res.meta["seconds_attribution"])  # fmt: skip
        rows.append(score)
    df = pd.DataFrame(rows)
    cols = ["assay", "family", "attribution", "precision", "hits", "n_actives", "distinct_actives", "recall_weight",
            "annotated_share", "n_annotated", "seconds_attribution", "seconds"]  # fmt: skip
    print(df[cols].to_string(index=False))
    print(f"mean precision@{args.k}: {np.nanmean(df['precision']):.3f}; fit {t_fit:.1f} s")
    out = {"k": args.k, "block": args.block, "fit_seconds": round(t_fit, 1), "assays": rows}
    (work / "explain_benchmark.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
