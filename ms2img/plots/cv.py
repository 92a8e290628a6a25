"""Cross-validation figures in the paper's style: ROC (Fig. 3B), confusion (Fig. 3C), learning curves and the
resolution study (Table 1), model comparison and per-family metric box plots (Fig. 5).

Every function writes its figure atomically and returns the path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ms2img.plots._base import (
    HELDOUT_COLOR,
    INNER_COLOR,
    TRAIN_COLOR,
    family_color,
    fmt,
    new_figure,
    save_figure,
)
from ms2img.training.fold_metrics import fold_rocs, pooled_roc, size_sort_key, summarize

# Metric columns of reports/<assay>/folds.csv (docs/contracts.md) and their labels.
FOLD_METRICS = ("auc", "balanced_accuracy", "mcc", "f1")
FOLD_METRIC_LABELS = {
    "auc": "ROC AUC",
    "balanced_accuracy": "Balanced accuracy",
    "mcc": "MCC",
    "f1": "F1",
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "roc_auc": "ROC AUC",
    "precision_top10": "Precision, top 10%",
    "spearman": "Spearman ρ",
    "rmse": "RMSE",
    "r2": "R²",
}
_ACCURACY_KEYS = ("accuracy", "binary_accuracy", "acc")


# --------------------------------------------------------------------------------------------------------------
# Fig. 3B: ROC
# --------------------------------------------------------------------------------------------------------------
def mean_roc(per_fold: Sequence[Mapping[str, Any]], grid: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Vertical averaging of fold ROC curves on a common FPR grid: mean TPR and its SD (ddof=1) per point."""
    grid = np.linspace(0.0, 1.0, 101) if grid is None else np.asarray(grid, dtype="float64")
    rows = []
    for f in per_fold:
        fpr, tpr = np.asarray(f["fpr"], dtype="float64"), np.asarray(f["tpr"], dtype="float64")
        if fpr.size < 2:
            continue
        t = np.interp(grid, fpr, tpr)
        t[0] = 0.0
        rows.append(t)
    if not rows:
        empty = np.array([], dtype="float64")
        return {"fpr": empty, "tpr": empty, "sd": empty}
    stack = np.vstack(rows)
    mean = stack.mean(axis=0)
    mean[-1] = 1.0
    sd = stack.std(axis=0, ddof=1) if len(rows) > 1 else np.zeros_like(mean)
    return {"fpr": grid, "tpr": mean, "sd": sd}


def plot_roc(
    folds: Sequence[tuple[Any, Any]],
    path: str | Path,
    title: str = "ROC curve",
    *,
    show_folds: bool = True,
    show_pooled: bool = True,
    color: str = "#08306b",
) -> Path:
    """Per-fold ROC curves (thin), the mean curve with a ±1 SD band, the pooled out-of-fold curve and chance.

    ``folds`` is a sequence of ``(y_true, y_prob)`` pairs, one per CV fold (every repeat's folds when the CV
    is repeated). The legend gives the per-fold AUC as mean ± SD and the pooled AUC.
    """
    if not folds:
        raise ValueError("no folds to plot")
    y_true = [f[0] for f in folds]
    y_prob = [f[1] for f in folds]
    per_fold = fold_rocs(y_true, y_prob)
    aucs = np.array([f["auc"] for f in per_fold], dtype="float64")
    finite = aucs[np.isfinite(aucs)]
    auc_mean = float(np.mean(finite)) if finite.size else float("nan")
    auc_sd = float(np.std(finite, ddof=1)) if finite.size >= 2 else float("nan")
    curve = mean_roc(per_fold)

    fig = new_figure(5.4, 5.0)
    ax = fig.add_subplot()
    if show_folds:
        label_each = len(per_fold) <= 6
        for i, f in enumerate(per_fold):
            if len(f["fpr"]):
                label = f"Fold {i + 1} (AUC = {f['auc']:.2f})" if label_each else ("Folds" if i == 0 else None)
                ax.plot(f["fpr"], f["tpr"], lw=0.8, alpha=0.35, color="0.45" if not label_each else None, label=label)
    if curve["fpr"].size:
        lo = np.clip(curve["tpr"] - curve["sd"], 0, 1)
        hi = np.clip(curve["tpr"] + curve["sd"], 0, 1)
        ax.fill_between(curve["fpr"], lo, hi, color=color, alpha=0.18, lw=0, label="±1 SD over folds")
        ax.plot(curve["fpr"], curve["tpr"], lw=2.4, color=color, label=f"Mean (AUC = {fmt(auc_mean, auc_sd)})")
    if show_pooled:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            pooled = pooled_roc(y_true, y_prob)
        if len(pooled["fpr"]):
            ax.plot(
                pooled["fpr"], pooled["tpr"], lw=1.2, ls=":", color="black", label=f"Pooled (AUC = {pooled['auc']:.2f})"
            )
    ax.plot([0, 1], [0, 1], ls="--", lw=1.2, color="gray", label="Chance (AUC = 0.5)")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="False positive rate", ylabel="True positive rate")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7.5, frameon=True)
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------------------------
# Fig. 3C: confusion matrix
# --------------------------------------------------------------------------------------------------------------
def plot_confusion(
    mean: Any,
    sd: Any,
    path: str | Path,
    labels: Sequence[str] = ("Low", "High"),
    title: str = "Confusion matrix (mean ± SD over folds)",
) -> Path:
    """Heat map of the mean confusion matrix with "mean ± SD" in each cell (rows true, columns predicted)."""
    mean = np.asarray(mean, dtype="float64")
    sd = np.full_like(mean, np.nan) if sd is None else np.asarray(sd, dtype="float64")
    if mean.ndim != 2 or mean.shape[0] != mean.shape[1] or sd.shape != mean.shape:
        raise ValueError(f"mean {mean.shape} and sd {sd.shape} must be the same square matrix shape")
    if len(labels) != mean.shape[0]:
        raise ValueError(f"{len(labels)} class labels for a {mean.shape[0]}x{mean.shape[0]} matrix")
    fig = new_figure(4.6, 4.0)
    ax = fig.add_subplot()
    vmax = float(np.nanmax(mean)) if np.isfinite(mean).any() and np.nanmax(mean) > 0 else 1.0
    im = ax.imshow(mean, cmap="Blues", vmin=0, vmax=vmax)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            dark = np.isfinite(mean[i, j]) and mean[i, j] > 0.6 * vmax
            ax.text(
                j,
                i,
                fmt(mean[i, j], sd[i, j], digits=1),
                ha="center",
                va="center",
                fontsize=11,
                color="white" if dark else "black",
            )
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels)
    ax.set_yticks(ticks, labels)
    ax.set(xlabel="Predicted label", ylabel="True label")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Accessions per fold (mean)")
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------------------------
# Learning curves and the resolution study (Table 1)
# --------------------------------------------------------------------------------------------------------------
def _histories(histories: Any) -> list[Mapping[str, Sequence[float]]]:
    if isinstance(histories, Mapping) or hasattr(histories, "history"):
        histories = [histories]
    out = [h.history if hasattr(h, "history") else h for h in histories]
    if not out:
        raise ValueError("no training histories")
    return out


def _key(history: Mapping[str, Any], metric: str, prefix: str) -> str | None:
    for name in _ACCURACY_KEYS if metric == "accuracy" else (metric,):
        if f"{prefix}{name}" in history:
            return f"{prefix}{name}"
    return None


def curve_stats(histories: Any, metric: str, prefix: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-epoch mean, SD (ddof=1, NaN below 2 folds) and fold count of ``<prefix><metric>`` across histories.

    Histories may differ in length (early stopping): epoch ``e`` averages the folds that reached it.
    """
    curves = []
    for h in _histories(histories):
        key = _key(h, metric, prefix)
        if key is not None and len(h[key]):
            curves.append(np.asarray(h[key], dtype="float64").ravel())
    if not curves:
        empty = np.array([], dtype="float64")
        return empty, empty, empty
    grid = np.full((len(curves), max(len(c) for c in curves)), np.nan)
    for i, c in enumerate(curves):
        grid[i, : len(c)] = c
    n = np.isfinite(grid).sum(axis=0)
    with np.errstate(all="ignore"):
        mean = np.nanmean(grid, axis=0)
        sd = np.full(mean.shape, np.nan)
        ok = n >= 2
        if ok.any():
            sd[ok] = np.nanstd(grid[:, ok], axis=0, ddof=1)
    return mean, sd, n.astype("float64")


def _curve_panel(ax: Any, histories: Any, metric: str, series: Sequence[tuple[str, str, str]], legend: bool) -> None:
    drew = False
    for prefix, color, name in series:
        mean, sd, n = curve_stats(histories, metric, prefix)
        if not mean.size:
            continue
        epochs = np.arange(1, mean.size + 1)
        folds = int(n.max())
        ax.plot(epochs, mean, color=color, lw=1.6, label=f"{name} (n={folds} folds)" if folds > 1 else name)
        band = np.nan_to_num(sd)
        ax.fill_between(epochs, mean - band, mean + band, color=color, alpha=0.18, lw=0)
        drew = True
    ax.set_xlabel("Epoch")
    ax.set_ylabel(metric.capitalize())
    if metric == "accuracy":
        ax.set_ylim(0, 1.02)
    if not drew:
        ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center", transform=ax.transAxes, color="gray")
    elif legend:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _series(heldout_prefix: str, inner_prefix: str | None) -> list[tuple[str, str, str]]:
    out = [("", TRAIN_COLOR, "Train")]
    if inner_prefix:
        out.append((inner_prefix, INNER_COLOR, "Inner validation"))
    out.append((heldout_prefix, HELDOUT_COLOR, "Held-out fold"))
    return out


def plot_resolution_study(
    results_by_size: Mapping[Any, Mapping[str, Any]],
    path: str | Path,
    title: str = "Input image resolution",
    *,
    heldout_prefix: str = "val_",
    inner_prefix: str | None = "inner_val_",
) -> Path:
    """The paper's Table 1: one row per resolution (smallest first), loss (left) and accuracy (right) curves.

    The curves are Keras' per-epoch loss and accuracy on the training and inner-validation data. Each result is a
    dict with ``"histories"`` (fold histories) and optionally ``"fold_metrics"`` or ``"summary"``, whose held-out
    ``auc`` and ``balanced_accuracy`` (:data:`ms2img.training.scores.SCORES` names) are added to the row label.
    """
    if not results_by_size:
        raise ValueError("no resolutions to plot")
    sizes = sorted(results_by_size, key=size_sort_key)
    fig = new_figure(9.0, 2.9 * len(sizes) + 0.5)
    axes = np.atleast_2d(fig.subplots(len(sizes), 2, sharex=True, sharey="col", squeeze=False))
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    series = _series(heldout_prefix, inner_prefix)
    for row, size in enumerate(sizes):
        result = results_by_size[size]
        histories = result.get("histories") or []
        for col, metric in enumerate(("loss", "accuracy")):
            ax = axes[row, col]
            if histories:
                _curve_panel(ax, histories, metric, series, legend=row == 0 and col == 0)
            else:
                ax.text(0.5, 0.5, "no history", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_title(f"{letters[(2 * row + col) % 26]}   {size}: {metric}", loc="left", fontsize=10)
            if row < len(sizes) - 1:
                ax.set_xlabel("")
        summary = result.get("summary") or (summarize(result["fold_metrics"]) if result.get("fold_metrics") else {})
        note = ""
        if summary:
            bacc, auc = summary.get("balanced_accuracy", {}), summary.get("auc", {})
            note = (
                f"\nbal. acc {fmt(bacc.get('mean', np.nan), bacc.get('sd', np.nan))}"
                f"\nAUC {fmt(auc.get('mean', np.nan), auc.get('sd', np.nan))}"
            )
        axes[row, 0].set_ylabel(f"{size}{note}\n\nLoss (binary cross-entropy)", fontsize=9)
    fig.suptitle(title)
    return save_figure(fig, path)


# --------------------------------------------------------------------------------------------------------------
# Fig. 5: model comparison
# --------------------------------------------------------------------------------------------------------------


def plot_metric_boxplots(
    folds: Any,
    path: str | Path,
    *,
    metrics: Sequence[str] = FOLD_METRICS,
    families: Sequence[str] | None = None,
    title: str = "Per-fold metrics by model family",
) -> Path:
    """The paper's Fig. 5 from ``reports/<assay>/folds.csv``: one panel per metric, one box per family.

    ``folds`` is that table (a DataFrame or a path to the CSV): columns ``family`` and the metric columns
    (``auc, balanced_accuracy, mcc, f1`` by default). Every fold of every repeat is a dot over its box.
    Metrics absent from the table, or without one finite value, are skipped; MCC and Spearman are drawn on [-1, 1],
    RMSE and R2 on their own range, the others on [0, 1].
    """
    import pandas as pd

    df = pd.read_csv(folds) if isinstance(folds, str | Path) else pd.DataFrame(folds)
    if df.empty or "family" not in df.columns:
        raise ValueError("folds table needs a 'family' column and at least one row")
    # a column with no finite value (precision in the top 10% where no fold's top holds enough accessions) is skipped
    present = [m for m in metrics if m in df.columns and np.isfinite(pd.to_numeric(df[m], errors="coerce")).any()]
    if not present:
        raise ValueError(f"folds table has none of the metric columns {list(metrics)}")
    fams = [
        f for f in (families or list(dict.fromkeys(df["family"].astype(str)))) if f in set(df["family"].astype(str))
    ]
    fig = new_figure(max(6.0, 2.2 * len(present) + 0.4 * len(fams)), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(present), squeeze=False)[0])
    rng = np.random.default_rng(0)
    letters = "ABCDEFGH"
    for j, (ax, metric) in enumerate(zip(axes, present, strict=True)):
        data = [
            pd.to_numeric(df.loc[df["family"].astype(str) == f, metric], errors="coerce").dropna().to_numpy()
            for f in fams
        ]
        positions = np.arange(1, len(fams) + 1)
        keep = [i for i, d in enumerate(data) if d.size]
        if keep:
            box = ax.boxplot(
                [data[i] for i in keep],
                positions=positions[keep],
                widths=0.6,
                patch_artist=True,
                showfliers=False,
                medianprops={"color": "black"},
            )
            for patch, i in zip(box["boxes"], keep, strict=True):
                patch.set_facecolor(family_color(fams[i], i))
                patch.set_alpha(0.45)
        for i, d in enumerate(data):
            ax.scatter(
                positions[i] + rng.uniform(-0.15, 0.15, d.size),
                d,
                s=10,
                color=family_color(fams[i], i),
                edgecolors="black",
                linewidths=0.3,
                zorder=3,
            )
        ax.set_xticks(positions, fams, rotation=30, ha="right", fontsize=8)
        if metric in ("mcc", "spearman"):
            ax.set_ylim(-1.05, 1.05)
        elif metric not in ("rmse", "r2"):  # regression's RMSE (assay units) and R2 (unbounded below): as they fall
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{letters[j % 8]}   {FOLD_METRIC_LABELS.get(metric, metric)}", loc="left", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, path)
