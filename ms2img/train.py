"""Per-assay CNN training: nested cross-validation with Keras Tuner, the final model, and the resolution study.

Everything a reviewer needs is written to ``metrics/`` (JSON, DVC metrics) and ``plots/<assay>/`` (PNG), and,
with tracking on, into one MLflow parent run per job with a nested run per outer fold and per tuner trial.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ms2img import plots, tracking
from ms2img.atomic import atomic_path
from ms2img.evaluate import binary_metrics, confusion_matrices, cv_report, write_metrics_json
from ms2img.labels import align_images_to_labels, class_counts, grouped_stratified_folds, make_labels, read_assays
from ms2img.render import ImageSet, save_png
from ms2img.tracking import RunLogger

log = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """Images and labels of one assay, aligned, with the outer folds every model shares."""

    assay: str
    images: ImageSet
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    labels: pd.DataFrame
    folds: list[tuple[np.ndarray, np.ndarray]]

    @property
    def size(self) -> str:
        return self.images.size


def prepare_data(
    images_path: str | Path, assays_csv: str | Path, assay: str, *, low: float, high: float, n_splits: int, seed: int
) -> TrainingData:
    """Load images and assay values, label them and cut grouped stratified folds; fail before any training."""
    imageset = ImageSet.load(images_path)
    labels = make_labels(read_assays(assays_csv), assay, low=low, high=high, n_splits=n_splits)
    index, y, groups = align_images_to_labels(imageset.ids, labels, image_groups=imageset.ids)
    folds = grouped_stratified_folds(y, groups, n_splits=n_splits, seed=seed)
    return TrainingData(assay, imageset, imageset.images[index], y, groups, labels, folds)


def prepare_from_params(images_path: str | Path, assays_csv: str | Path, assay: str, params: Mapping[str, Any]):
    """:func:`prepare_data` with thresholds, folds and seed from params.yaml (every model uses the same folds)."""
    return prepare_data(
        images_path,
        assays_csv,
        assay,
        low=float(params["labels"]["low"]),
        high=float(params["labels"]["high"]),
        n_splits=int(params["cv"]["folds"]),
        seed=int(params["cv"]["seed"]),
    )


def _parent_or_nothing(track: bool, assay: str, run_name: str, params, raw_data, tags):
    """The MLflow parent run when tracking, else a logger that records nothing."""
    if track:
        return tracking.parent_run(assay, run_name, params, raw_data=raw_data, tags=tags)
    return contextlib.nullcontext(RunLogger())


def _trial_logger(logger: RunLogger, label: str):
    def log_trial(info: Mapping[str, Any]) -> None:
        with logger.child(f"{label} trial {info['trial_id']}", params=info.get("hyperparameters") or {}) as trial:
            trial.set_tags({"trial.status": str(info.get("status")), "run.kind": "tuner-trial"})
            if info.get("score") is not None:
                trial.log_metrics({"objective": info["score"]})
            for history in (info.get("histories") or [])[:1]:
                trial.log_history(history)

    return log_trial


def cross_validate_cnn(
    data: TrainingData,
    cnn_params: Mapping[str, Any],
    tune_params: Mapping[str, Any],
    *,
    seed: int,
    workdir: str | Path,
    tune: bool = True,
    logger: RunLogger | None = None,
    label: str = "cnn",
) -> dict[str, Any]:
    """Outer CV: per fold tune on the training part only (nested), fit, and score the held-out accessions."""
    from ms2img.models.cnn import fit_cnn, paper_hp_values, predict_proba

    logger = logger or RunLogger()
    y_true, y_prob, histories, best_hps, test_ids = [], [], [], [], []
    bar = tqdm(data.folds, desc=f"{data.assay} {label} folds", unit="fold", disable=None)
    for k, (train, test) in enumerate(bar, start=1):
        with logger.child(f"{label} fold {k}") as fold_log:
            fold_log.set_tags({"run.kind": "outer-fold", "fold": str(k)})
            hp, score = paper_hp_values(cnn_params), None
            if tune and int(tune_params["trials"]) > 0:
                from ms2img.models.tuning import SearchSpace, tune_cnn

                result = tune_cnn(
                    data.x[train],
                    data.y[train],
                    trials=int(tune_params["trials"]),
                    epochs=int(tune_params.get("epochs", cnn_params["epochs"])),
                    seed=seed + k,
                    directory=Path(workdir) / f"fold{k}",
                    validation_split=float(tune_params.get("validation_split", 0.2)),
                    batch_size=int(cnn_params["batch_size"]),
                    objective=str(tune_params.get("objective", "val_accuracy")),
                    space=SearchSpace.from_mapping(tune_params.get("space")),
                    on_trial_end=_trial_logger(fold_log, f"{label} fold {k}"),
                )
                hp, score = result.best_hp, result.best_score
            model, history = fit_cnn(
                data.x[train],
                data.y[train],
                hp,
                epochs=int(cnn_params["epochs"]),
                batch_size=int(cnn_params["batch_size"]),
                seed=seed + k,
                validation_data=(data.x[test], data.y[test]),
            )
            prob = predict_proba(model, data.x[test])
            metrics = binary_metrics(data.y[test], prob)
            fold_log.log_params({f"hp.{k_}": v for k_, v in hp.items()})
            fold_log.log_metrics(metrics)
            fold_log.log_history(history)
            bar.set_postfix(auc=f"{metrics['roc_auc']:.3f}")
        del model
        _free_backend_memory()  # one model per fold: without this, memory grows fold after fold
        y_true.append(data.y[test])
        y_prob.append(prob)
        histories.append(history)
        best_hps.append({"hp": hp, "inner_score": score})
        test_ids.append(data.groups[test].tolist())
    report = cv_report(y_true, y_prob)
    return {
        **report,
        "histories": histories,
        "best_hps": best_hps,
        "y_true": [a.tolist() for a in y_true],
        "y_prob": [a.tolist() for a in y_prob],
        "test_accessions": test_ids,
    }


def _free_backend_memory() -> None:
    """Release the backend's graphs and weights of finished models (Keras keeps them in a global state)."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def choose_hyperparameters(best_hps: list[dict[str, Any]]) -> dict[str, Any]:
    """The final model's hyperparameters: those of the fold whose inner (tuning) score was best.

    Inner scores never saw an outer test fold, so choosing by them keeps the outer estimate honest.
    """
    scored = [b for b in best_hps if b["inner_score"] is not None]
    return dict(max(scored, key=lambda b: b["inner_score"])["hp"] if scored else best_hps[0]["hp"])


def write_cv_plots(data: TrainingData, cv: Mapping[str, Any], plot_dir: Path, title: str) -> dict[str, Path]:
    """ROC, confusion matrix, learning curves and per-accession predictions as PNG."""
    folds = list(zip(cv["y_true"], cv["y_prob"], strict=True))
    mean, sd = confusion_matrices(cv["y_true"], cv["y_prob"], threshold=0.5)
    prob_by_acc = {
        a: p for ids, ps in zip(cv["test_accessions"], cv["y_prob"], strict=True) for a, p in zip(ids, ps, strict=True)
    }
    labelled = data.labels.set_index("accession")
    accs = [a for a in labelled.index if a in prob_by_acc]
    return {
        "roc": plots.plot_roc(folds, plot_dir / "roc.png", title=f"{title}: ROC"),
        "confusion": plots.plot_confusion(
            mean, sd, plot_dir / "confusion.png", title=f"{title}: confusion (mean ± SD)"
        ),
        "learning_curves": plots.plot_learning_curves(cv["histories"], plot_dir / "learning_curves.png", title=title),
        "predictions": plots.plot_predictions(
            accs,
            labelled.loc[accs, "value"].to_numpy(),
            [int(prob_by_acc[a] >= 0.5) for a in accs],
            plot_dir / "predictions.png",
            title=f"{title}: predicted class vs measured {data.assay}",
            value_label=data.assay,
            y_true=labelled.loc[accs, "label"].to_numpy(),
        ),
    }


def write_example_images(data: TrainingData, out_dir: Path, per_class: int = 3) -> list[Path]:
    """A few fingerprint images of each class, for people to look at."""
    paths = []
    for label, name in ((1, "high"), (0, "low")):
        for i in np.flatnonzero(data.y == label)[:per_class]:
            paths.append(save_png(data.x[i], out_dir / f"{name}_{data.groups[i]}.png", gamma=0.5))
    return paths


def train_assay(
    *,
    assay: str,
    images_path: str | Path,
    assays_csv: str | Path,
    params: Mapping[str, Any],
    metrics_dir: str | Path = "metrics",
    plots_dir: str | Path = "plots",
    models_dir: str | Path = "models",
    workdir: str | Path = "kt",
    events_dir: str | Path | None = None,
    raw_data: str | Path | None = None,
    validation_report: str | Path | None = None,
    track: bool = True,
    register: bool = True,
) -> dict[str, Any]:
    """Train and evaluate the CNN for one assay; log to MLflow and register the final model when asked."""
    started = time.perf_counter()
    seed = int(params["cv"]["seed"])
    data = prepare_from_params(images_path, assays_csv, assay, params)
    counts = class_counts(data.labels)
    log.info("%s: %s labelled accessions at %s (%s)", assay, len(data.y), data.size, counts)
    plot_dir = Path(plots_dir) / assay
    run_name = f"{assay.lower()} cnn {data.size}"
    tags = {"run.kind": "training", "size": data.size}
    with _parent_or_nothing(track, assay, run_name, params, raw_data, tags) as logger:
        logger.log_metrics({f"n_{k}": v for k, v in counts.items()})
        cv = cross_validate_cnn(
            data, params["cnn"], params["tune"], seed=seed, workdir=Path(workdir) / assay, logger=logger, label="cnn"
        )
        summary = cv["summary"]
        logger.log_metrics({f"cv_{m}_{s}": v for m, stats in summary.items() for s, v in stats.items()})
        logger.log_metrics({"cv_pooled_auc": cv["pooled_auc"]})
        for path in write_cv_plots(data, cv, plot_dir, run_name).values():
            logger.log_artifact(path, "plots")
        for path in write_example_images(data, plot_dir / "examples"):
            logger.log_artifact(path, "examples")
        if validation_report and Path(validation_report).exists():
            logger.log_artifact(validation_report, "validation")

        from ms2img.models.cnn import fit_cnn

        final_hp = choose_hyperparameters(cv["best_hps"])
        model, final_history = fit_cnn(
            data.x,
            data.y,
            final_hp,
            epochs=int(params["cnn"]["epochs"]),
            batch_size=int(params["cnn"]["batch_size"]),
            seed=seed,
        )
        model_path = Path(models_dir) / assay / "cnn.keras"
        with atomic_path(model_path) as tmp:
            model.save(tmp)
        logger.log_params({f"final_hp.{k}": v for k, v in final_hp.items()})
        logger.log_history(final_history, prefix="final_")
        payload: dict[str, Any] = {
            "assay": assay,
            "size": data.size,
            "class_counts": counts,
            "n_accessions": len(data.y),
            "cnn": {k: cv[k] for k in ("summary", "folds", "pooled_auc", "confusion")},
            "final_hp": final_hp,
            "seconds": round(time.perf_counter() - started, 1),
        }
        if track:
            import mlflow

            payload["mlflow_run_id"] = mlflow.active_run().info.run_id
            if register:
                payload["registered"] = register_model(
                    model,
                    data,
                    params,
                    kind="cnn",
                    events_dir=events_dir,
                    auc=summary["roc_auc"]["mean"],
                    raw_data=raw_data,
                )
        metrics_path = write_metrics_json(Path(metrics_dir) / f"{assay}.json", payload)
        logger.log_artifact(metrics_path, "metrics")
    log.info(
        "%s: CNN AUC %.3f ± %.3f (%.0f s)",
        assay,
        summary["roc_auc"]["mean"],
        summary["roc_auc"]["sd"],
        payload["seconds"],
    )
    return payload


def example_request(events_dir: str | Path | None, accession: str | None = None, max_rows: int = 500) -> pd.DataFrame:
    """Request rows (one per precursor) of one real accession, for the model's input example and smoke test."""
    from ms2img.io.schema import read_events
    from ms2img.serving import events_to_request

    files = sorted(Path(events_dir).glob("*.parquet")) if events_dir else []
    if not files:
        raise FileNotFoundError(f"no events in {events_dir} to build an input example from")
    chosen = next((f for f in files if accession and f.stem == accession), files[0])
    return events_to_request(read_events(chosen)).head(max_rows)


def register_model(
    model, data: TrainingData, params: Mapping[str, Any], *, kind: str, events_dir, auc: float, raw_data
) -> dict[str, str]:
    """Log ``model`` as a raw-peaks pyfunc in the active run and register it as a new version.

    ``kind`` "cnn" registers ``ms2img-<assay>``; "rf" (the RF on flattened images) ``ms2img-<assay>-rf``.
    """
    import mlflow

    from ms2img import registry
    from ms2img.serving import log_fingerprint_model
    from ms2img.tracking import data_hash

    name = registry.model_name(data.assay, kind, prefix=params["registry"]["model_prefix"])
    version = registry.next_version(name)
    info = log_fingerprint_model(
        model,
        assay=data.assay,
        render_config=data.images.config,
        input_example=example_request(events_dir),
        model_version=version,
        max_rows=int(params["serve"]["max_rows"]),
        name="model" if kind == "cnn" else f"{kind}_model",
    )
    tags = {
        registry.AUC_TAG: f"{auc:.6f}",
        registry.DATA_TAG: (data_hash(raw_data) if raw_data else None) or "unknown",
        "run_id": mlflow.active_run().info.run_id,
        "size": data.size,
    }
    got = registry.register(info.model_uri, name, tags)
    if got != version:
        log.warning("%s: registered as version %s, expected %s (concurrent registration?)", name, got, version)
    return {"name": name, "version": got, "model_uri": info.model_uri}


def resolution_study(
    *,
    assay: str,
    image_paths: Mapping[str, str | Path],
    assays_csv: str | Path,
    params: Mapping[str, Any],
    metrics_dir: str | Path = "metrics",
    plots_dir: str | Path = "plots",
    raw_data: str | Path | None = None,
    track: bool = True,
) -> dict[str, Any]:
    """The paper's Table 1: the same CV protocol (paper network, no tuning) at each resolution, side by side."""
    from ms2img.evaluate import resolution_table

    seed = int(params["cv"]["seed"])
    results: dict[str, Any] = {}
    run_name = f"{assay.lower()} resolution study"
    with _parent_or_nothing(track, assay, run_name, params, raw_data, {"run.kind": "resolution"}) as logger:
        for size, path in image_paths.items():
            data = prepare_from_params(path, assays_csv, assay, params)
            with logger.child(f"{assay.lower()} cnn {size}") as size_log:
                cv = cross_validate_cnn(
                    data,
                    params["cnn"],
                    params["tune"],
                    seed=seed,
                    workdir="kt",
                    tune=False,
                    logger=size_log,
                    label=f"cnn {size}",
                )
                size_log.log_metrics({f"cv_{m}_{s}": v for m, st in cv["summary"].items() for s, v in st.items()})
            results[size] = {"histories": cv["histories"], "summary": cv["summary"], "fold_metrics": cv["folds"]}
        table = resolution_table(results)
        figure = plots.plot_resolution_study(
            results, Path(plots_dir) / assay / "resolution_study.png", title=f"{assay}: input image resolution"
        )
        payload = {
            "assay": assay,
            "table": table.to_dict(orient="records"),
            "summary": {s: r["summary"] for s, r in results.items()},
        }
        path = write_metrics_json(Path(metrics_dir) / f"{assay}_resolution.json", payload)
        logger.log_artifact(figure, "plots")
        logger.log_artifact(path, "metrics")
    return payload
