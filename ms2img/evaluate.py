"""Cross-validation metrics as the paper reports them: per fold, mean ± SD, pooled ROC, mean confusion matrix.

Conventions (the same for every model, CNN or baseline, so their numbers compare):

- A probability becomes class 1 when it is strictly greater than the threshold (``p > 0.5``), as Keras'
  ``binary_accuracy`` does and as scikit-learn's ``predict`` does for a two-class ``predict_proba``.
- precision/recall/F1 use ``zero_division=0``; ROC AUC is NaN (with a warning) for a fold holding one class.
- ``summarize`` reports the mean and the *sample* standard deviation (``ddof=1``) over folds, ignoring NaN
  folds (``nanmean`` / ``nanstd``); with fewer than two finite values the SD is NaN (``null`` in JSON).
- Confusion matrices hold counts; rows are the true class (Low, High), columns the predicted class.

The plotting functions live in :mod:`ms2img.plots` (matplotlib is imported only when one is used) and are
re-exported here under the names the architecture fixes: ``plot_roc``, ``plot_confusion``, ...
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from ms2img.atomic import write_text

logger = logging.getLogger(__name__)

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
METRIC_LABELS = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1", "roc_auc": "AUC"}
_ACCURACY_KEYS = ("accuracy", "binary_accuracy", "acc")

_PLOTS = (
    "plot_roc",
    "plot_confusion",
    "plot_learning_curves",
    "plot_resolution_study",
    "plot_metric_comparison",
    "plot_predictions",
)


def __getattr__(name: str) -> Any:
    """Lazy re-export of the plotting functions so importing metrics never pulls in matplotlib."""
    if name in _PLOTS:
        from ms2img import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------------------
# Per-fold metrics
# --------------------------------------------------------------------------------------------------------------


def _check_binary(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).ravel()
    y_prob = np.asarray(y_prob, dtype="float64").ravel()
    if y_true.shape != y_prob.shape:
        raise ValueError(f"y_true has {y_true.size} values but y_prob has {y_prob.size}")
    if y_true.size == 0:
        raise ValueError("no predictions to score")
    if not set(np.unique(y_true).tolist()) <= {0, 1}:
        raise ValueError(f"y_true must hold 0/1 labels, got {sorted(set(np.unique(y_true).tolist()))[:5]}")
    if not np.isfinite(y_prob).all():
        raise ValueError("y_prob holds NaN or infinite values (did training diverge?)")
    return y_true.astype("int64"), y_prob


def predict_labels(y_prob: Any, threshold: float = 0.5) -> np.ndarray:
    """Class 1 where the probability is strictly above ``threshold``."""
    return (np.asarray(y_prob, dtype="float64") > threshold).astype("int64")


def binary_metrics(y_true: Any, y_prob: Any, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (at ``threshold``) and ROC AUC (threshold-free) for one fold."""
    y_true, y_prob = _check_binary(y_true, y_prob)
    y_pred = predict_labels(y_prob, threshold)
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
    }
    if len(np.unique(y_true)) < 2:
        warnings.warn(
            f"ROC AUC is undefined for a fold with only class {int(y_true[0])} ({y_true.size} samples); reporting NaN",
            UserWarning,
            stacklevel=2,
        )
        out["roc_auc"] = float("nan")
    else:
        out["roc_auc"] = float(roc_auc_score(y_true, y_prob))
    return out


def summarize(fold_metrics: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean": m, "sd": s}}`` over folds: nanmean and nanstd with ddof=1 (sample SD).

    Non-numeric entries are skipped; a metric that is NaN in some folds is averaged over the others.
    """
    if not fold_metrics:
        raise ValueError("no fold metrics to summarize")
    keys: list[str] = []
    for m in fold_metrics:
        keys += [k for k in m if k not in keys]
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        raw = [m.get(key, float("nan")) for m in fold_metrics]
        raw = [float("nan") if v is None else v for v in raw]
        if not all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in raw):
            continue
        vals = np.asarray(raw, dtype="float64")
        finite = np.isfinite(vals)
        n = int(finite.sum())
        if 0 < n < len(vals):
            logger.warning("%s is undefined in %d of %d folds; mean/SD use the others", key, len(vals) - n, len(vals))
        mean = float(np.mean(vals[finite])) if n else float("nan")
        sd = float(np.std(vals[finite], ddof=1)) if n >= 2 else float("nan")
        out[key] = {"mean": mean, "sd": sd}
    return out


def confusion_matrices(
    y_true_by_fold: Sequence[Any], y_pred_by_fold: Sequence[Any], threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD (ddof=1) over folds of the 2x2 count matrices (rows true Low/High, columns predicted).

    ``y_pred_by_fold`` holds 0/1 predictions; pass ``threshold`` to give probabilities instead.
    """
    if len(y_true_by_fold) != len(y_pred_by_fold):
        raise ValueError(f"{len(y_true_by_fold)} folds of labels but {len(y_pred_by_fold)} folds of predictions")
    if not y_true_by_fold:
        raise ValueError("no folds")
    mats = []
    for yt, yp in zip(y_true_by_fold, y_pred_by_fold, strict=True):
        yt = np.asarray(yt).astype("int64").ravel()
        yp = predict_labels(yp, threshold) if threshold is not None else np.asarray(yp).astype("int64").ravel()
        if yt.shape != yp.shape:
            raise ValueError(f"a fold has {yt.size} labels but {yp.size} predictions")
        mats.append(confusion_matrix(yt, yp, labels=[0, 1]))
    stack = np.stack(mats).astype("float64")
    sd = stack.std(axis=0, ddof=1) if len(mats) > 1 else np.full((2, 2), np.nan)
    return stack.mean(axis=0), sd


def fold_rocs(y_true_by_fold: Sequence[Any], y_prob_by_fold: Sequence[Any]) -> list[dict[str, Any]]:
    """Per-fold ROC curves ``[{"fpr", "tpr", "auc"}, ...]``; a one-class fold gets empty curves and NaN AUC."""
    if len(y_true_by_fold) != len(y_prob_by_fold):
        raise ValueError(f"{len(y_true_by_fold)} folds of labels but {len(y_prob_by_fold)} folds of probabilities")
    out = []
    for yt, yp in zip(y_true_by_fold, y_prob_by_fold, strict=True):
        yt, yp = _check_binary(yt, yp)
        if len(np.unique(yt)) < 2:
            out.append({"fpr": np.array([]), "tpr": np.array([]), "auc": float("nan")})
            continue
        fpr, tpr, _ = roc_curve(yt, yp)
        out.append({"fpr": fpr, "tpr": tpr, "auc": float(roc_auc_score(yt, yp))})
    return out


def pooled_roc(y_true_by_fold: Sequence[Any], y_prob_by_fold: Sequence[Any]) -> dict[str, Any]:
    """ROC of all out-of-fold predictions pooled: ``{"fpr", "tpr", "thresholds", "auc"}``.

    Every sample is tested once across the folds, so pooling gives one curve over the whole labelled set.
    """
    if len(y_true_by_fold) != len(y_prob_by_fold):
        raise ValueError(f"{len(y_true_by_fold)} folds of labels but {len(y_prob_by_fold)} folds of probabilities")
    if not y_true_by_fold:
        raise ValueError("no folds")
    yt, yp = _check_binary(
        np.concatenate([np.asarray(y).ravel() for y in y_true_by_fold]),
        np.concatenate([np.asarray(p, dtype="float64").ravel() for p in y_prob_by_fold]),
    )
    if len(np.unique(yt)) < 2:
        warnings.warn("pooled ROC is undefined: all samples are one class", UserWarning, stacklevel=2)
        return {"fpr": np.array([]), "tpr": np.array([]), "thresholds": np.array([]), "auc": float("nan")}
    fpr, tpr, thresholds = roc_curve(yt, yp)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thresholds, "auc": float(roc_auc_score(yt, yp))}


def cv_report(y_true_by_fold: Sequence[Any], y_prob_by_fold: Sequence[Any], threshold: float = 0.5) -> dict[str, Any]:
    """Everything a CV run reports, JSON-ready via :func:`write_metrics_json`.

    ``{"folds": [per-fold metrics + n_test], "summary": {metric: {mean, sd}}, "pooled_auc": float,
    "confusion": {"mean": 2x2, "sd": 2x2}, "threshold": float}``.
    """
    folds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one-class folds: reported via NaN and summarize's log
        for yt, yp in zip(y_true_by_fold, y_prob_by_fold, strict=True):
            m = binary_metrics(yt, yp, threshold)
            folds.append({**m, "n_test": int(np.asarray(yt).size)})
        pooled = pooled_roc(y_true_by_fold, y_prob_by_fold)
    summary = summarize([{k: f[k] for k in METRICS} for f in folds])
    cm_mean, cm_sd = confusion_matrices(y_true_by_fold, y_prob_by_fold, threshold=threshold)
    return {
        "folds": folds,
        "summary": summary,
        "pooled_auc": pooled["auc"],
        "confusion": {"mean": cm_mean, "sd": cm_sd},
        "threshold": float(threshold),
    }


# --------------------------------------------------------------------------------------------------------------
# Training histories (keras History.history dicts) and the resolution study
# --------------------------------------------------------------------------------------------------------------


def _as_history(h: Any) -> Mapping[str, Sequence[float]]:
    return h.history if hasattr(h, "history") else h


def _histories(histories: Any) -> list[Mapping[str, Sequence[float]]]:
    if isinstance(histories, Mapping) or hasattr(histories, "history"):
        histories = [histories]
    out = [_as_history(h) for h in histories]
    if not out:
        raise ValueError("no training histories")
    return out


def history_key(history: Mapping[str, Any], metric: str, validation: bool = False) -> str | None:
    """The key Keras used for ``metric`` ("loss" or "accuracy", which Keras may call "binary_accuracy")."""
    names = _ACCURACY_KEYS if metric == "accuracy" else (metric,)
    for name in names:
        key = f"val_{name}" if validation else name
        if key in history:
            return key
    return None


def history_curve(histories: Any, metric: str, validation: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-epoch mean, SD (ddof=1) and number of folds for ``metric`` across fold histories.

    Histories may have different lengths (early stopping): epoch ``e`` averages the folds that reached it.
    Returns empty arrays when no history has the metric.
    """
    curves = []
    for h in _histories(histories):
        key = history_key(h, metric, validation)
        if key is not None and len(h[key]):
            curves.append(np.asarray(h[key], dtype="float64").ravel())
    if not curves:
        empty = np.array([], dtype="float64")
        return empty, empty, empty
    length = max(len(c) for c in curves)
    grid = np.full((len(curves), length), np.nan)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
    n = np.isfinite(grid).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(grid, axis=0)
        sd = np.where(n >= 2, np.nanstd(grid, axis=0, ddof=1), np.nan)
    return mean, sd, n.astype("float64")


def final_accuracy_gap(histories: Any, window: int = 5) -> dict[str, float]:
    """Train and validation accuracy at the end of training and their gap (the overfitting signal of Table 1).

    Per fold the mean over its last ``window`` epochs, then the mean over folds. NaN when a history lacks
    validation accuracy.
    """
    train, val = [], []
    for h in _histories(histories):
        tk, vk = history_key(h, "accuracy"), history_key(h, "accuracy", validation=True)
        if tk is None or vk is None or not len(h[tk]) or not len(h[vk]):
            continue
        train.append(float(np.mean(np.asarray(h[tk], dtype="float64")[-window:])))
        val.append(float(np.mean(np.asarray(h[vk], dtype="float64")[-window:])))
    if not train:
        nan = float("nan")
        return {"train_accuracy": nan, "val_accuracy": nan, "gap": nan}
    t, v = float(np.mean(train)), float(np.mean(val))
    return {"train_accuracy": t, "val_accuracy": v, "gap": t - v}


def size_sort_key(size: Any) -> tuple[float, str]:
    """Sort "75x70" < "150x140" < "300x280" by pixel count; anything unparsable sorts last by name."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(size))
    if match:
        return float(int(match.group(1)) * int(match.group(2))), str(size)
    if isinstance(size, tuple | list) and len(size) == 2:
        return float(size[0]) * float(size[1]), str(size)
    return math.inf, str(size)


def _result_summary(result: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    if result.get("summary"):
        return dict(result["summary"])
    if result.get("fold_metrics"):
        return summarize(result["fold_metrics"])
    return {}


def resolution_table(results_by_size: Mapping[Any, Mapping[str, Any]], window: int = 5) -> pd.DataFrame:
    """The resolution study as a table, one row per image size (smallest first).

    Each result is a dict with ``"fold_metrics"`` (list of :func:`binary_metrics` dicts) or ``"summary"``
    (:func:`summarize` output), optionally ``"histories"`` (fold histories, for the train/validation accuracy
    gap, see :func:`final_accuracy_gap`) and ``"fit_seconds"``. Columns: size, auc_mean, auc_sd,
    accuracy_mean, accuracy_sd, f1_mean, f1_sd, train_accuracy, val_accuracy, train_val_gap, fit_seconds.
    """
    rows = []
    nan = float("nan")
    for size in sorted(results_by_size, key=size_sort_key):
        result = results_by_size[size]
        summary = _result_summary(result)

        def stat(metric: str, which: str, summary: dict = summary) -> float:
            return float(summary.get(metric, {}).get(which, nan))

        gap = final_accuracy_gap(result["histories"], window) if result.get("histories") else {}
        rows.append(
            {
                "size": str(size),
                "auc_mean": stat("roc_auc", "mean"),
                "auc_sd": stat("roc_auc", "sd"),
                "accuracy_mean": stat("accuracy", "mean"),
                "accuracy_sd": stat("accuracy", "sd"),
                "f1_mean": stat("f1", "mean"),
                "f1_sd": stat("f1", "sd"),
                "train_accuracy": gap.get("train_accuracy", nan),
                "val_accuracy": gap.get("val_accuracy", nan),
                "train_val_gap": gap.get("gap", nan),
                "fit_seconds": float(result.get("fit_seconds", nan)),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------------------
# Metrics files (DVC / MLflow)
# --------------------------------------------------------------------------------------------------------------


def to_jsonable(obj: Any) -> Any:
    """Plain-JSON version of ``obj``: numpy scalars/arrays to Python, NaN/inf to None, keys to str."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=str) if isinstance(obj, set | frozenset) else obj
        return [to_jsonable(v) for v in items]
    if hasattr(obj, "item") and callable(obj.item):  # 0-d arrays and other numpy-likes
        return to_jsonable(obj.item())
    raise TypeError(f"cannot write {type(obj).__name__} to a metrics file")


def write_metrics_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as a JSON metrics file atomically: sorted keys, NaN/inf as null, numpy converted."""
    text = json.dumps(to_jsonable(payload), sort_keys=True, indent=2, allow_nan=False)
    return write_text(path, text + "\n")
