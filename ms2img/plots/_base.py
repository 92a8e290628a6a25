"""Shared figure plumbing: an Agg-backed Figure (no pyplot), atomic saving, colours and number formatting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ms2img.atomic import atomic_path

DPI = 150
TRAIN_COLOR = "#1f77b4"  # blue
INNER_COLOR = "#ff7f0e"  # orange: the inner (tuning) validation split
HELDOUT_COLOR = "#d62728"  # red: the outer held-out test fold
VAL_COLOR = HELDOUT_COLOR  # old name
HIGH_COLOR = "#d62728"  # red, as in the paper's Fig. 4
LOW_COLOR = "#1f77b4"  # blue
MIDDLE_COLOR = "#9e9e9e"  # gray: mid-range accessions, left out of training
FAMILY_COLORS = {
    "cnn": "#1f77b4",
    "rf-image": "#2ca02c",
    "rf-cosine": "#ff7f0e",
    "rf-entropy": "#9467bd",
    "image-ensemble": "#17becf",
}
_CYCLE = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def family_color(family: str, index: int = 0) -> str:
    """A stable colour per model family (the four contract families fixed, others from a cycle)."""
    return FAMILY_COLORS.get(str(family), _CYCLE[index % len(_CYCLE)])


def new_figure(width: float = 5.5, height: float = 4.5) -> Figure:
    """A constrained-layout Figure on its own Agg canvas: headless, never touches pyplot's global state."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Save ``fig`` to ``path`` atomically (format from the suffix, PNG when there is none)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    return path


def fmt(mean: Any, sd: Any = float("nan"), digits: int = 2) -> str:
    """``mean ± sd`` (or ``mean``, or ``n/a``) for labels."""
    try:
        mean = float(mean)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(mean):
        return "n/a"
    try:
        sd = float(sd)
    except (TypeError, ValueError):
        sd = float("nan")
    return f"{mean:.{digits}f} ± {sd:.{digits}f}" if np.isfinite(sd) else f"{mean:.{digits}f}"


def with_units(label: str, units: str | None) -> str:
    """``"DPPH (% scavenging)"`` from a label and optional units."""
    return f"{label} ({units})" if units else label


def scatter_classes(ax: Any, x: np.ndarray, y_coord: np.ndarray, labels: np.ndarray, names: tuple[str, str]) -> None:
    """Low blue / high red scatter with class counts in the legend and the origin axes (Fig. 4A/B)."""
    labels = np.asarray(labels)
    if labels.shape[0] != np.asarray(x).shape[0]:
        raise ValueError(f"got {labels.shape[0]} labels for {np.asarray(x).shape[0]} samples")
    for value, name, color in ((0, names[0], LOW_COLOR), (1, names[1], HIGH_COLOR)):
        sel = labels == value
        ax.scatter(x[sel], y_coord[sel], s=18, c=color, alpha=0.75, edgecolors="none", label=f"{name} (n={sel.sum()})")
    ax.axhline(0, color="0.7", lw=0.6, zorder=0)
    ax.axvline(0, color="0.7", lw=0.6, zorder=0)
    ax.legend(frameon=False, fontsize=8)
