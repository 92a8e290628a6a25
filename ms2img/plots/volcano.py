"""The volcano figure of the activity scores: Pearson r against -log10 q, the strongest features labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.plots._base import HIGH_COLOR, LOW_COLOR, new_figure, save_figure


def plot_volcano(
    scores: pd.DataFrame,
    path: str | Path,
    title: str = "",
    assay: str = "activity",
    alpha: float = 0.05,
    n_labels: int = 8,
) -> Path:
    """Red: q < ``alpha`` and r > 0 (follows the activity), blue: q < ``alpha`` and r < 0, grey: the rest.

    q = 0 (a perfect correlation) is drawn at the smallest positive q so it stays on the axis.
    """
    r = scores["r"].to_numpy(dtype=np.float64)
    q = scores["q"].to_numpy(dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(q)
    floor = np.nanmin(q[ok & (q > 0)]) if np.any(ok & (q > 0)) else 1e-300
    y = -np.log10(np.maximum(q, floor))
    fig = new_figure(6.0, 4.8)
    ax = fig.add_subplot(1, 1, 1)
    sig = ok & (q < alpha)
    groups = (
        (ok & ~sig, "0.65", f"q >= {alpha:g}"),
        (sig & (r > 0), HIGH_COLOR, f"q < {alpha:g}, r > 0"),
        (sig & (r < 0), LOW_COLOR, f"q < {alpha:g}, r < 0"),
    )
    for mask, color, label in groups:
        ax.scatter(r[mask], y[mask], s=12, c=color, alpha=0.8, edgecolors="none", label=f"{label} (n={mask.sum()})")
    ax.axhline(-np.log10(alpha), color="0.4", lw=0.7, ls="--")
    ax.axvline(0, color="0.8", lw=0.6, zorder=0)
    span = max(float(np.nanmax(y[ok])) if ok.any() else 1.0, 1.0)
    placed: list[tuple[float, float]] = []
    for i in np.flatnonzero(ok)[:n_labels]:  # scores are sorted by evidence
        mz, rt = scores["precursor_mz"].iat[i], scores["rt_min"].iat[i]
        near = sum(abs(r[i] - a) < 0.4 and abs(y[i] - b) < 0.04 * span for a, b in placed)  # a label is ~0.35 r wide
        placed.append((r[i], y[i]))
        ax.annotate(
            f"{mz:.4f} @ {rt:.2f}", (r[i], y[i]), fontsize=6, xytext=(-4, 2 - 7 * near), textcoords="offset points",
            ha="right",
        )  # fmt: skip
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(f"Pearson r (normalised abundance vs {assay})")
    ax.set_ylabel("-log10 q (Benjamini-Hochberg)")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    return save_figure(fig, path)
