"""The paper's Fig. 3A: per-accession predictions against the measured assay values, with units and cut-offs.

Two views: :func:`plot_predictions` (the paper's bars-and-dots: predicted class as gray bars, assay value as
red dots) and :func:`plot_oof_predictions` (out-of-fold P(high) against the raw assay value for every
accession, mid-range ones included: they were left out of training but are still predicted, so the plot
shows whether the probability rises with activity, summarised by Spearman's rho). :func:`plot_family_oof` draws
the latter from one family's oof.csv rows and :func:`decision_threshold` picks its threshold line: the one home of
Fig. 3A for the training stage and the report.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.plots._base import HIGH_COLOR, LOW_COLOR, MIDDLE_COLOR, new_figure, save_figure, with_units
from ms2img.training.labels import per_accession_oof
from ms2img.training.scores import spearman

MIDDLE_NOTE = "mid-range accessions were left out of training but are predicted"


def _corner_note(ax: Any, text: str, outside: bool = False) -> None:
    """A small boxed note in the lower right corner (e.g. that mid-range accessions were not trained on);
    ``outside``: right of the axes, under a legend placed there, so it hides no point."""
    if outside:
        ax.text(1.02, 0.0, textwrap.fill(text, 26), transform=ax.transAxes, ha="left", va="bottom", fontsize=7.5,
                color="0.3")  # fmt: skip
        return
    ax.text(0.99, 0.02, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=7.5, color="0.3",
            bbox={"facecolor": "white", "edgecolor": "0.8", "alpha": 0.85})  # fmt: skip


def _cutoff_lines(ax: Any, low_cutoff: float | None, high_cutoff: float | None, horizontal: bool) -> None:
    line = ax.axhline if horizontal else ax.axvline
    for value, color, name in ((low_cutoff, LOW_COLOR, "low cut-off"), (high_cutoff, HIGH_COLOR, "high cut-off")):
        if value is not None and np.isfinite(value):
            line(value, color=color, ls="--", lw=1.1, alpha=0.9, label=f"{name} ({value:.3g})")


def plot_predictions(
    accessions: Sequence[Any],
    values: Sequence[float],
    y_pred: Sequence[int],
    path: str | Path,
    title: str = "Predicted class and measured activity",
    value_label: str = "Assay value",
    y_true: Sequence[int] | None = None,
    sort: bool = True,
    *,
    units: str | None = None,
    low_cutoff: float | None = None,
    high_cutoff: float | None = None,
    note: str | None = None,
) -> Path:
    """Predicted class as gray bars (left axis, Low/High) and measured values as red dots (right axis).

    Samples are ordered by measured value when ``sort``. With ``y_true`` misclassified samples are crossed
    and accessions labelled -1 (mid-range, left out of training) are drawn as gray dots, with a note saying
    so. ``units`` goes on the value axis; ``low_cutoff`` / ``high_cutoff`` (raw units) are drawn as dashed
    lines. Accession names are printed on the x-axis when there are at most 60 samples.
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
    fig = new_figure(min(18.0, max(7.0, 0.18 * n + 2)), 4.4)
    ax = fig.add_subplot()
    x = np.arange(n)
    ax.bar(x, pred, width=0.85, color="0.75", label="Predicted class")
    ax.set_yticks([0, 1], ["Low", "High"])
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("Predicted label")
    ax2 = ax.twinx()
    label = with_units(value_label, units)
    middle = np.zeros(n, dtype=bool) if true is None else true < 0
    ax2.scatter(x[~middle], vals[~middle], color="#d62728", s=14, zorder=3, label=f"{value_label} (measured)")
    if middle.any():
        ax2.scatter(
            x[middle],
            vals[middle],
            color=MIDDLE_COLOR,
            s=14,
            zorder=3,
            label=f"mid-range (n={int(middle.sum())}, not trained on)",
        )
    _cutoff_lines(ax2, low_cutoff, high_cutoff, horizontal=True)
    ax2.set_ylabel(label)
    if true is not None:
        wrong = (pred != true) & ~middle
        if wrong.any():
            ax2.scatter(x[wrong], vals[wrong], marker="x", color="black", s=30, zorder=4, label="Misclassified")
    if n <= 60:
        ax.set_xticks(x, acc, rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
    ax.set_xlabel("Accession" + (" (sorted by measured value)" if sort else ""))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_title(title, fontsize=10)
    if note or middle.any():
        _corner_note(ax, note or MIDDLE_NOTE)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=7.5)
    return save_figure(fig, path)


def plot_oof_predictions(
    values: Sequence[float],
    probabilities: Sequence[float],
    labels: Sequence[int],
    path: str | Path,
    *,
    value_label: str = "Assay value",
    units: str | None = None,
    low_cutoff: float | None = None,
    high_cutoff: float | None = None,
    threshold: float | None = 0.5,
    title: str = "Out-of-fold predictions vs measured activity",
    note: str | None = None,
    threshold_label: str | None = None,
    threshold_band: tuple[float, float] | None = None,
) -> Path:
    """Out-of-fold P(high) (y) against the raw assay value (x), one dot per accession and repeat.

    ``labels``: 1 high, 0 low, -1 mid-range (left out of training, predicted by the fold that held the
    accession out). Cut-offs (raw units) are vertical dashed lines, the decision threshold a horizontal one
    (``threshold_label`` says whose: a model's own threshold, not 0.5, is what its classes come from; None draws
    none), ``threshold_band`` shades a range (e.g. the folds' own thresholds); Spearman's rho over all accessions
    (mid-range included) is in the legend title.
    """
    vals = np.asarray(values, dtype="float64").ravel()
    prob = np.asarray(probabilities, dtype="float64").ravel()
    lab = np.asarray(labels).astype("int64").ravel()
    if not (vals.size == prob.size == lab.size) or vals.size == 0:
        raise ValueError(
            f"need equal, non-zero numbers of values ({vals.size}), probabilities ({prob.size}) and labels ({lab.size})"
        )
    rho = spearman(vals, prob)
    fig = new_figure(7.2, 4.6)
    ax = fig.add_subplot()
    for value, name, color in (
        (0, "low (trained)", LOW_COLOR),
        (1, "high (trained)", HIGH_COLOR),
        (-1, "mid-range (not trained on)", MIDDLE_COLOR),
    ):
        sel = lab == value
        if sel.any():
            ax.scatter(
                vals[sel],
                prob[sel],
                s=20,
                color=color,
                alpha=0.75,
                edgecolors="none",
                label=f"{name}, n={int(sel.sum())}",
            )
    _cutoff_lines(ax, low_cutoff, high_cutoff, horizontal=False)
    if threshold_band is not None and all(np.isfinite(threshold_band)):
        ax.axhspan(*threshold_band, color="0.5", alpha=0.12, lw=0, label="folds' thresholds")
    if threshold is not None and np.isfinite(threshold):
        ax.axhline(threshold, color="0.3", lw=1.0, ls=":", label=threshold_label or f"threshold {threshold:.3g}")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("Measured " + with_units(value_label, units))
    ax.set_ylabel("Out-of-fold P(high)")
    ax.set_title(title, fontsize=10)
    rho_text = f"Spearman ρ = {rho:.2f}" if np.isfinite(rho) else "Spearman ρ = n/a"
    # beside the axes: inside, it hid the corner where a mispredicted accession (low value, high P) would sit
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7.5, title=rho_text, title_fontsize=8)
    if note or (lab < 0).any():
        _corner_note(ax, note or MIDDLE_NOTE, outside=True)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_regression_oof(
    values: Sequence[float],
    predictions: Sequence[float],
    path: str | Path,
    *,
    value_label: str = "Assay value",
    units: str | None = None,
    title: str = "Out-of-fold predicted vs measured activity",
) -> Path:
    """``labels.mode: regression``: out-of-fold predicted value (y) against the measured one (x), one dot per
    accession (the train stage passes the mean over repeats), the identity line dashed; Spearman's rho, RMSE and R2
    of the dots in the legend title."""
    from ms2img.training.scores import regression_scores

    vals = np.asarray(values, dtype="float64").ravel()
    pred = np.asarray(predictions, dtype="float64").ravel()
    if vals.size != pred.size or vals.size == 0:
        raise ValueError(f"need equal, non-zero numbers of values ({vals.size}) and predictions ({pred.size})")
    s = regression_scores(vals, pred)
    fig = new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    ax.scatter(vals, pred, s=20, color=HIGH_COLOR, alpha=0.7, edgecolors="none", label=f"accessions, n={vals.size}")
    finite = np.concatenate([vals[np.isfinite(vals)], pred[np.isfinite(pred)]])
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        ax.plot([lo, hi], [lo, hi], color="0.4", ls="--", lw=1.0, label="predicted = measured")
    ax.set_xlabel("Measured " + with_units(value_label, units))
    ax.set_ylabel("Out-of-fold predicted " + with_units(value_label, units))
    ax.set_title(title, fontsize=10)
    head = f"Spearman ρ = {s['spearman']:.2f}, RMSE = {s['rmse']:.3g}, R² = {s['r2']:.2f}"
    ax.legend(loc="upper left", fontsize=7.5, title=head, title_fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def decision_threshold(
    saved: float | None, fold_thresholds: Sequence[float] = ()
) -> tuple[float | None, str | None, tuple[float, float] | None]:
    """``(threshold, label, band)`` of a family's Fig. 3A: the saved model's own threshold (the one it is served at)
    or, without a saved model, the median of the folds' thresholds; and the range of the folds' thresholds (each
    fold picked its own on its training part: one fold's value is not the model's). ``(None, None, band)`` when
    nothing recorded one."""
    per_fold = sorted(float(t) for t in fold_thresholds if t is not None and np.isfinite(t))
    band = (per_fold[0], per_fold[-1]) if len(per_fold) > 1 and per_fold[0] < per_fold[-1] else None
    if saved is not None and np.isfinite(saved):
        label = f"saved model's threshold {float(saved):.3g}"
        if band is not None and not band[0] <= saved <= band[1]:  # the final fit's own cut-off, chosen on its own
            label += "\n(outside the folds' thresholds,\nat which these dots were scored)"
        return float(saved), label, band
    if per_fold:
        med = float(np.median(per_fold))
        return med, f"median fold threshold {med:.3g}", band
    return None, None, band


def plot_family_oof(
    oof: pd.DataFrame,
    path: str | Path,
    *,
    title: str,
    threshold: float | None = None,
    threshold_label: str | None = None,
    threshold_band: tuple[float, float] | None = None,
    **kwargs: Any,
) -> Path:
    """:func:`plot_oof_predictions` of one family's out-of-fold rows (oof.csv: ``accession``, ``repeat``,
    ``probability``, ``value``, ``label``): one dot per accession at its mean P(high) over the repeats, so the
    legend's ``n`` counts accessions, not repeats x accessions; the title says how many repeats were averaged.
    ``kwargs``: value_label, units, cut-offs, note."""
    if oof.empty:
        raise ValueError("no out-of-fold rows")
    per = per_accession_oof(oof)
    repeats = int(oof["repeat"].nunique()) if "repeat" in oof.columns else 1
    return plot_oof_predictions(
        per["value"],
        per["probability"],
        per["label"],
        path,
        threshold=threshold,
        threshold_label=threshold_label,
        threshold_band=threshold_band,
        title=title + (f" (mean of {repeats} repeats)" if repeats > 1 else ""),
        **kwargs,
    )
