"""A molecular-fingerprint image drawn for people: m/z axes from the ImageSet bin edges, a colour bar.

``ImageSet`` rows are fragment bins ascending (row 0 = lowest fragment m/z) and columns precursor bins
ascending, so the image is drawn with ``origin="lower"`` over the bin edges: x = precursor m/z, y = fragment
m/z. Fragments heavier than their precursor cannot exist, so the region above the diagonal is shaded and
labelled as masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ms2img.plots._base import new_figure, save_figure


def fingerprint_title(
    accession: str,
    assay: str | None = None,
    value: float | None = None,
    label: int | str | None = None,
    units: str | None = None,
) -> str:
    """``"ACC0003 - DPPH 71.2 % (high)"``: the accession and its measured activity for a fingerprint title."""
    parts = [str(accession)]
    if assay:
        act = str(assay)
        if value is not None and np.isfinite(float(value)):
            act += f" {float(value):.3g}" + (f" {units}" if units else "")
        if label is not None:
            name = (
                {1: "high", 0: "low", -1: "mid-range"}.get(label, str(label)) if not isinstance(label, str) else label
            )
            act += f" ({name})"
        parts.append(act)
    return " - ".join(parts)


def plot_fingerprint(
    image: Any,
    x_edges: Any,
    y_edges: Any,
    path: str | Path,
    title: str = "",
    *,
    gamma: float = 0.4,
    cmap: str = "magma",
    colorbar_label: str = "pixel intensity (scaled)",
    show_diagonal: bool = True,
) -> Path:
    """Draw one (H, W) fingerprint with x = precursor m/z and y = fragment m/z over its bin edges.

    ``x_edges`` (W+1) and ``y_edges`` (H+1) come from the ImageSet (``ImageSet.x_edges``/``y_edges``,
    precursor 100-1500 and fragment 0-1500 m/z by default). Intensities are shown with a power-law
    colour scale (``gamma`` < 1 lifts weak fragments, the colour bar keeps the true values).
    """
    from matplotlib.colors import PowerNorm

    img = np.asarray(image, dtype="float64")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"a fingerprint is a 2-D (fragment bins, precursor bins) image, got shape {img.shape}")
    xe = np.asarray(x_edges, dtype="float64").ravel()
    ye = np.asarray(y_edges, dtype="float64").ravel()
    h, w = img.shape
    if xe.size != w + 1 or ye.size != h + 1:
        raise ValueError(f"image {h}x{w} needs {w + 1} x edges and {h + 1} y edges, got {xe.size} and {ye.size}")
    vmax = float(np.nanmax(img)) if np.isfinite(img).any() and np.nanmax(img) > 0 else 1.0
    fig = new_figure(6.4, 5.2)
    ax = fig.add_subplot()
    ax.set_facecolor("black")
    mesh = ax.pcolormesh(
        xe, ye, img, cmap=cmap, norm=PowerNorm(gamma=gamma, vmin=0.0, vmax=vmax), shading="flat", rasterized=True
    )
    if show_diagonal:
        lo, hi = max(xe[0], ye[0]), min(xe[-1], ye[-1])
        if hi > lo:
            ax.plot([lo, hi], [lo, hi], color="white", lw=0.8, ls="--", alpha=0.7)
        xs = np.linspace(xe[0], xe[-1], 64)
        ax.fill_between(xs, np.clip(xs, ye[0], ye[-1]), ye[-1], color="0.35", alpha=0.55, lw=0, zorder=2)
        ax.text(
            xe[0] + 0.04 * (xe[-1] - xe[0]),
            ye[-1] - 0.06 * (ye[-1] - ye[0]),
            "masked: fragment m/z > precursor m/z",
            color="white",
            fontsize=7.5,
            va="top",
        )
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel(f"Precursor m/z  ({w} bins)")
    ax.set_ylabel(f"Fragment m/z  ({h} bins)")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(mesh, ax=ax, shrink=0.85, label=colorbar_label + f", γ = {gamma:g}")
    return save_figure(fig, path)
