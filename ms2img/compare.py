"""Baselines on exactly the CNN's folds: RF on the merged feature tables and on the flattened image, PCA, OPLS-DA.

This is what a lab would do without MS2toImg; the results sit next to the CNN's in ``metrics/<assay>_baselines.json``,
in ``plots/<assay>/`` and, with tracking on, as nested runs under the assay's training run in MLflow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ms2img import plots
from ms2img.evaluate import binary_metrics, summarize, write_metrics_json
from ms2img.features import FeatureTable
from ms2img.models.baselines import pca_scores, plot_pca, rf_cross_validate
from ms2img.models.oplsda import oplsda, plot_oplsda, plot_permutation
from ms2img.tracking import MlflowRunLogger, RunLogger
from ms2img.train import TrainingData, prepare_from_params, register_model

log = logging.getLogger(__name__)


def accession_folds(data: TrainingData, accessions: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The CNN's folds expressed as row indices into ``accessions`` (one row per accession)."""
    position = {a: i for i, a in enumerate(accessions)}
    out = []
    for train, test in data.folds:
        out.append(
            (
                np.array(sorted({position[a] for a in data.groups[train]})),
                np.array(sorted({position[a] for a in data.groups[test]})),
            )
        )
    return out


def feature_matrix(table: FeatureTable, accessions: np.ndarray) -> np.ndarray:
    """Rows of the feature table for ``accessions`` (absent accessions are all-zero), log-transformed."""
    values = table.values.reindex(index=accessions, fill_value=0.0).to_numpy(dtype=float)
    return np.log1p(values)


def _rf_summary(result, name: str) -> dict[str, Any]:
    folds = [binary_metrics(f.y_true, f.y_prob) for f in result.folds]
    return {
        "model": name,
        "folds": folds,
        "summary": summarize(folds),
        "best_params": [f.best_params for f in result.folds],
        "final_params": result.final_params,
        "y_true": [f.y_true.tolist() for f in result.folds],
        "y_prob": [f.y_prob.tolist() for f in result.folds],
    }


def _parent_context(assay: str, metrics_dir: Path, params: Mapping[str, Any], raw_data, track: bool):
    """Attach to the assay's training run (so CNN and baselines sit side by side), else open a new one."""
    if not track:
        return contextlib.nullcontext(RunLogger())
    import mlflow

    from ms2img import tracking

    cnn_metrics = metrics_dir / f"{assay}.json"
    run_id = json.loads(cnn_metrics.read_text()).get("mlflow_run_id") if cnn_metrics.exists() else None
    if run_id:
        tracking.ensure_experiment(assay)

        @contextlib.contextmanager
        def resumed():
            with mlflow.start_run(run_id=run_id):
                yield MlflowRunLogger()

        return resumed()
    return tracking.parent_run(assay, f"{assay.lower()} baselines", params, raw_data, {"run.kind": "baselines"})


def run_baselines(
    *,
    assay: str,
    images_path: str | Path,
    features_dir: str | Path,
    assays_csv: str | Path,
    params: Mapping[str, Any],
    metrics_dir: str | Path = "metrics",
    plots_dir: str | Path = "plots",
    raw_data: str | Path | None = None,
    track: bool = True,
    register: bool = True,
    events_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run every baseline for one assay on the CNN's folds and write metrics, plots and MLflow runs."""
    started = time.perf_counter()
    seed = int(params["cv"]["seed"])
    bp = params["baselines"]
    data = prepare_from_params(images_path, assays_csv, assay, params)
    accessions = np.array(list(dict.fromkeys(data.groups.tolist())))
    y_acc = np.array([int(data.y[data.groups == a][0]) for a in accessions])
    acc_folds = accession_folds(data, accessions)
    grid = {"n_estimators": list(bp["rf_trees"]), "max_features": list(bp["rf_max_features"])}
    plot_dir = Path(plots_dir) / assay
    metrics_dir = Path(metrics_dir)
    results: dict[str, Any] = {}
    with _parent_context(assay, metrics_dir, params, raw_data, track) as logger:
        for method in params["features"]["similarity"]:
            table = FeatureTable.load(features_dir, method)
            X = feature_matrix(table, accessions)
            name = f"rf {method}"
            with logger.child(f"{assay.lower()} {name}") as child:
                child.set_tags({"run.kind": "baseline", "model": name})
                rf = rf_cross_validate(X, y_acc, acc_folds, seed=seed, param_grid=grid)
                results[name] = _rf_summary(rf, name)
                child.log_metrics(
                    {f"cv_{m}_{s}": v for m, st in results[name]["summary"].items() for s, v in st.items()}
                )
                child.log_params(
                    {
                        "n_features": X.shape[1],
                        **{f"table.{k}": v for k, v in table.stats.items() if isinstance(v, int | float | str)},
                    }
                )
            if method == params["features"]["similarity"][0]:
                results["pca"], results["oplsda"] = _multivariate(X, y_acc, bp, seed, plot_dir, logger, assay)

        with logger.child(f"{assay.lower()} rf image {data.size}") as child:
            child.set_tags({"run.kind": "baseline", "model": "rf image"})
            rf_img = rf_cross_validate(data.x, data.y, data.folds, seed=seed, param_grid=grid, groups=data.groups)
            results["rf image"] = _rf_summary(rf_img, "rf image")
            child.log_metrics(
                {f"cv_{m}_{s}": v for m, st in results["rf image"]["summary"].items() for s, v in st.items()}
            )
            if register and track:
                results["rf image"]["registered"] = register_model(
                    rf_img.final_model,
                    data,
                    params,
                    kind="rf",
                    events_dir=events_dir,
                    auc=results["rf image"]["summary"]["roc_auc"]["mean"],
                    raw_data=raw_data,
                )

        comparison = {k: v["folds"] for k, v in results.items() if k.startswith("rf")}
        cnn_metrics = metrics_dir / f"{assay}.json"
        if cnn_metrics.exists():
            comparison = {"cnn": json.loads(cnn_metrics.read_text())["cnn"]["folds"], **comparison}
        figure = plots.plot_metric_comparison(
            comparison, plot_dir / "model_comparison.png", title=f"{assay}: CNN vs baselines (same folds)"
        )
        rf_rocs = {
            k: list(zip(v["y_true"], v["y_prob"], strict=True)) for k, v in results.items() if k.startswith("rf")
        }
        roc_paths = [
            plots.plot_roc(folds, plot_dir / f"roc_{k.replace(' ', '_')}.png", title=f"{assay}: {k} ROC")
            for k, folds in rf_rocs.items()
        ]
        for path in [figure, *roc_paths]:
            logger.log_artifact(path, "plots")
        payload = {
            "assay": assay,
            "n_accessions": len(accessions),
            **{k: {kk: vv for kk, vv in v.items() if kk not in ("y_true", "y_prob")} for k, v in results.items()},
            "seconds": round(time.perf_counter() - started, 1),
        }
        path = write_metrics_json(metrics_dir / f"{assay}_baselines.json", payload)
        logger.log_artifact(path, "metrics")
    for k, v in results.items():
        if k.startswith("rf"):
            s = v["summary"]["roc_auc"]
            log.info("%s %s: AUC %.3f ± %.3f", assay, k, s["mean"], s["sd"])
    return payload


def _multivariate(X, y, bp, seed, plot_dir: Path, logger: RunLogger, assay: str) -> tuple[dict, dict]:
    """PCA scores and OPLS-DA (R2Y, Q2Y by 7-fold CV, permutation test) on the feature table."""
    pca = pca_scores(X, y)
    pca_plot = plot_pca(pca, y, plot_dir / "pca_scores.png")
    result = oplsda(X, y, cv_folds=int(bp["oplsda_cv_folds"]), permutations=int(bp["oplsda_permutations"]), seed=seed)
    summary = result.summary()
    with logger.child(f"{assay.lower()} pca + opls-da") as child:
        child.set_tags({"run.kind": "baseline", "model": "opls-da"})
        child.log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)})
        for path in (
            pca_plot,
            plot_oplsda(result, y, plot_dir / "oplsda_scores.png"),
            plot_permutation(result, plot_dir / "oplsda_permutation.png"),
        ):
            child.log_artifact(path, "plots")
    return ({"explained_variance_ratio": pca.explained_variance_ratio.tolist()}, summary)
