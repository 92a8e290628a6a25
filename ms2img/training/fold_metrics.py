"""Cross-validation metrics as the paper reports them: per fold, mean ± SD, pooled ROC, mean confusion matrix.

Conventions (the same for every model, CNN or baseline, so their numbers compare):

- A probability becomes class 1 when it is strictly greater than the threshold (``p > 0.5``), as Keras'
  ``binary_accuracy`` does and as scikit-learn's ``predict`` does for a two-class ``predict_proba``.
- precision/recall/F1 use ``zero_division=0``; ROC AUC is NaN (with a warning) for a fold holding one class.
- ``summarize`` reports the mean and the *sample* standard deviation (``ddof=1``) over folds, ignoring NaN
  folds (``nanmean`` / ``nanstd``); with fewer than two finite values the SD is NaN (``null`` in JSON).
- Confusion matrices hold counts; rows are the true class (Low, High), columns the predicted class.

The figures live in :mod:`ms2img.plots`, which imports this module (never the other way round).
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    confusion_matrix,
    roc_auc_score,
    roc_curve,
)

from ms2img.jsonio import write_json

logger = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------------------------------------------
# Training histories (keras History.history dicts) and the resolution study
# --------------------------------------------------------------------------------------------------------------


def size_sort_key(size: Any) -> tuple[float, str]:
    """Sort "75x70" < "150x140" < "300x280" by pixel count; anything unparsable sorts last by name."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(size))
    if match:
        return float(int(match.group(1)) * int(match.group(2))), str(size)
    if isinstance(size, tuple | list) and len(size) == 2:
        return float(size[0]) * float(size[1]), str(size)
    return math.inf, str(size)


# --------------------------------------------------------------------------------------------------------------
# Metrics files (DVC / MLflow)
# --------------------------------------------------------------------------------------------------------------


def write_metrics_json(path: str | Path, payload: Any) -> Path:
    """A DVC/MLflow metrics file: numbers only, NaN/inf as null, sorted keys, written atomically."""
    return write_json(path, payload, nonfinite="null")
