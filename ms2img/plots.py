"""Evaluation figures in the paper's style (Fig. 3A-C, Fig. 5, Table 1), written as PNG atomically.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas directly (no pyplot), so they work
headless, never touch the global backend and do not leak figures in long-running flows. Every function
returns the path it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ms2img.atomic import atomic_path
from ms2img.evaluate import (
    METRIC_LABELS,
    METRICS,
    fold_rocs,
    history_curve,
    pooled_roc,
    size_sort_key,
    summarize,
)

DPI = 150
TRAIN_COLOR = "#1f77b4"
VAL_COLOR = "#d62728"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(path)


def _fmt(mean: float, sd: float, digits: int = 2) -> str:
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{mean:.{digits}f}"


# --------------------------------------------------------------------------------------------------------------
# Fig. 3B: ROC
# --------------------------------------------------------------------------------------------------------------


def plot_roc(folds: Sequence[tuple[Any, Any]], path: str | Path, title: str = "ROC curve") -> Path:
    """Per-fold ROC curves (thin), the pooled out-of-fold curve (bold) and the chance diagonal.

    ``folds`` is a sequence of ``(y_true, y_prob)`` pairs, one per CV fold. The legend gives the pooled AUC
    and the per-fold AUC as mean ± SD.
    """
    if not folds:
        raise ValueError("no folds to plot")
    y_true = [f[0] for f in folds]
    y_prob = [f[1] for f in folds]
    per_fold = fold_rocs(y_true, y_prob)
    pooled = pooled_roc(y_true, y_prob)
    aucs = np.array([f["auc"] for f in per_fold])
    finite = aucs[np.isfinite(aucs)]
    auc_sd = float(np.std(finite, ddof=1)) if finite.size >= 2 else float("nan")
    auc_mean = float(np.mean(finite)) if finite.size else float("nan")

    fig = _figure(5.2, 5.0)
    ax = fig.add_subplot()
    for i, f in enumerate(per_fold):
        if len(f["fpr"]):
            ax.plot(f["fpr"], f["tpr"], lw=0.9, alpha=0.45, label=f"Fold {i + 1} (AUC = {f['auc']:.2f})")
    if len(pooled["fpr"]):
        ax.plot(
            pooled["fpr"],
            pooled["tpr"],
            lw=2.4,
            color="#08306b",
            label=f"Pooled (AUC = {pooled['auc']:.2f})\nFolds: AUC = {_fmt(auc_mean, auc_sd)}",
        )
    ax.plot([0, 1], [0, 1], ls="--", lw=1.2, color="gray", label="Chance (AUC = 0.5)")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), xlabel="False positive rate", ylabel="True positive rate")
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7.5, frameon=True)
    return _save(fig, path)


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
    fig = _figure(4.6, 4.0)
    ax = fig.add_subplot()
    vmax = float(np.nanmax(mean)) if np.isfinite(mean).any() and np.nanmax(mean) > 0 else 1.0
    im = ax.imshow(mean, cmap="Blues", vmin=0, vmax=vmax)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            dark = np.isfinite(mean[i, j]) and mean[i, j] > 0.6 * vmax
            ax.text(
                j,
                i,
                _fmt(mean[i, j], sd[i, j], digits=1),
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
    fig.colorbar(im, ax=ax, shrink=0.8, label="Samples per fold")
    return _save(fig, path)


# --------------------------------------------------------------------------------------------------------------
# Learning curves and the resolution study (Table 1)
# --------------------------------------------------------------------------------------------------------------


def _curve_panel(ax: Any, histories: Any, metric: str, legend: bool = True) -> None:
    drew = False
    for validation, color, name in ((False, TRAIN_COLOR, "Train"), (True, VAL_COLOR, "Validation")):
        mean, sd, n = history_curve(histories, metric, validation)
        if not mean.size:
            continue
        epochs = np.arange(1, mean.size + 1)
        folds = int(n.max())
        ax.plot(epochs, mean, color=color, lw=1.6, label=f"{name} (n={folds})" if folds > 1 else name)
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


def plot_learning_curves(histories: Any, path: str | Path, title: str = "Learning curves") -> Path:
    """Loss and accuracy per epoch, train vs validation, as mean ± SD bands across folds.

    ``histories``: a list of Keras ``History.history`` dicts (``loss``, ``val_loss``, ``accuracy``,
    ``val_accuracy``; ``binary_accuracy`` also works) or History objects, one per fold; lengths may differ.
    """
    fig = _figure(9.0, 3.8)
    axes = fig.subplots(1, 2)
    _curve_panel(axes[0], histories, "loss")
    _curve_panel(axes[1], histories, "accuracy")
    fig.suptitle(title)
    return _save(fig, path)


def plot_resolution_study(
    results_by_size: Mapping[Any, Mapping[str, Any]], path: str | Path, title: str = "Input image resolution"
) -> Path:
    """The paper's Table 1: one row per resolution (smallest first), loss (left) and accuracy (right) curves.

    Each result is a dict with ``"histories"`` (fold histories) and optionally ``"fold_metrics"`` or
    ``"summary"``, whose validation AUC/accuracy are added to the row label.
    """
    if not results_by_size:
        raise ValueError("no resolutions to plot")
    sizes = sorted(results_by_size, key=size_sort_key)
    fig = _figure(9.0, 2.9 * len(sizes) + 0.5)
    axes = np.atleast_2d(fig.subplots(len(sizes), 2, sharex=True, sharey="col", squeeze=False))
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for row, size in enumerate(sizes):
        result = results_by_size[size]
        histories = result.get("histories") or []
        for col, metric in enumerate(("loss", "accuracy")):
            ax = axes[row, col]
            if histories:
                _curve_panel(ax, histories, metric, legend=row == 0 and col == 0)
            else:
                ax.text(0.5, 0.5, "no history", ha="center", va="center", transform=ax.transAxes, color="gray")
            ax.set_title(f"{letters[(2 * row + col) % 26]}   {size}: {metric}", loc="left", fontsize=10)
            if row < len(sizes) - 1:
                ax.set_xlabel("")
        summary = result.get("summary") or (summarize(result["fold_metrics"]) if result.get("fold_metrics") else {})
        note = ""
        if summary:
            acc, auc = summary.get("accuracy", {}), summary.get("roc_auc", {})
            note = (
                f"\nacc {_fmt(acc.get('mean', np.nan), acc.get('sd', np.nan))}"
                f"\nAUC {_fmt(auc.get('mean', np.nan), auc.get('sd', np.nan))}"
            )
        axes[row, 0].set_ylabel(f"{size}{note}\n\nLoss", fontsize=9)
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------------------------
# Fig. 5: model comparison
# --------------------------------------------------------------------------------------------------------------


def plot_metric_comparison(
    results_by_model: Mapping[str, Any],
    path: str | Path,
    metrics: Sequence[str] = METRICS,
    title: str = "Cross-validated performance",
) -> Path:
    """Grouped bars of mean ± SD per metric and model (e.g. CNN vs RF), fold values as dots.

    Each value is a list of per-fold metric dicts (dots are drawn) or a :func:`summarize` result.
    """
    if not results_by_model:
        raise ValueError("no models to compare")
    models = list(results_by_model)
    summaries, points = {}, {}
    for name, res in results_by_model.items():
        if isinstance(res, Mapping) and all(isinstance(v, Mapping) for v in res.values()):
            summaries[name], points[name] = dict(res), None
        else:
            summaries[name], points[name] = summarize(list(res)), list(res)
    fig = _figure(max(6.0, 1.0 * len(metrics) + 0.5 * len(metrics) * len(models) ** 0.5 + 1.5), 4.2)
    ax = fig.add_subplot()
    x = np.arange(len(metrics))
    width = 0.8 / len(models)
    rng = np.random.default_rng(0)
    for k, name in enumerate(models):
        means = np.array([summaries[name].get(m, {}).get("mean", np.nan) for m in metrics], dtype="float64")
        sds = np.array([summaries[name].get(m, {}).get("sd", np.nan) for m in metrics], dtype="float64")
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, np.nan_to_num(means), width * 0.92, yerr=np.nan_to_num(sds), capsize=3, label=name, alpha=0.85)
        for p, mval, sval in zip(pos, means, np.nan_to_num(sds), strict=True):
            if np.isfinite(mval):
                top = min(mval + sval, 1.06)
                ax.text(p, top + 0.01, f"{mval:.2f}", ha="center", va="bottom", fontsize=7)
        if points[name]:
            for j, m in enumerate(metrics):
                vals = np.array([f.get(m, np.nan) for f in points[name]], dtype="float64")
                vals = vals[np.isfinite(vals)]
                jitter = rng.uniform(-width * 0.2, width * 0.2, vals.size)
                ax.scatter(pos[j] + jitter, vals, s=9, color="black", alpha=0.6, zorder=3, edgecolors="none")
    ax.set_xticks(x, [METRIC_LABELS.get(m, m) for m in metrics])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("Score (mean ± SD over folds)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


# --------------------------------------------------------------------------------------------------------------
# Fig. 3A: predictions vs assay values
# --------------------------------------------------------------------------------------------------------------


def plot_predictions(
    accessions: Sequence[Any],
    values: Sequence[float],
    y_pred: Sequence[int],
    path: str | Path,
    title: str = "Predicted class and measured activity",
    value_label: str = "Assay value",
    y_true: Sequence[int] | None = None,
    sort: bool = True,
) -> Path:
    """Predicted class as gray bars (left axis, Low/High) and measured values as red dots (right axis).

    Samples are ordered by measured value when ``sort``; with ``y_true`` misclassified samples are marked.
    Accession names are printed on the x-axis when there are at most 60 samples.
    """
    acc = np.asarray([str(a) for a in accessions], dtype=object)
    vals = np.asarray(values, dtype="float64").ravel()
    pred = np.asarray(y_pred).astype("int64").ravel()
    if not (acc.size == vals.size == pred.size) or acc.size == 0:
        raise ValueError(
            f"need equal, non-zero numbers of accessions ({acc.size}), values ({vals.size}) and "
            f"predictions ({pred.size})"
        )
    true = None if y_true is None else np.asarray(y_true).astype("int64").ravel()
    if true is not None and true.size != acc.size:
        raise ValueError(f"y_true has {true.size} labels for {acc.size} accessions")
    order = np.argsort(vals, kind="stable") if sort else np.arange(acc.size)
    acc, vals, pred = acc[order], vals[order], pred[order]
    true = None if true is None else true[order]

    n = acc.size
    fig = _figure(min(18.0, max(6.0, 0.18 * n + 2)), 4.0)
    ax = fig.add_subplot()
    x = np.arange(n)
    ax.bar(x, pred, width=0.85, color="0.7", label="Predicted class")
    ax.set_yticks([0, 1], ["Low", "High"])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("Predicted label")
    ax2 = ax.twinx()
    ax2.scatter(x, vals, color="#d62728", s=14, zorder=3, label=value_label)
    ax2.set_ylabel(value_label)
    if true is not None:
        wrong = pred != true
        if wrong.any():
            ax2.scatter(x[wrong], vals[wrong], marker="x", color="black", s=30, zorder=4, label="Misclassified")
    if n <= 60:
        ax.set_xticks(x, acc, rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
    ax.set_xlabel("Sample" + (" (sorted by measured value)" if sort else ""))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_title(title)
    handles = ax.get_legend_handles_labels()
    handles2 = ax2.get_legend_handles_labels()
    ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="upper left", fontsize=8)
    return _save(fig, path)
