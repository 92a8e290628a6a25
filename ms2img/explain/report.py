"""The drivers figure: the mean fingerprint with the top boxes outlined and labelled, and the top drivers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.atomic import atomic_path
from ms2img.explain.labels import shown_name
from ms2img.plots._base import new_figure

UP_COLOR = "#d62728"  # supports high activity (red, as the project's high class)
DOWN_COLOR = "#1f77b4"


def plot_drivers(
    mean_image: np.ndarray,
    x_edges: np.ndarray,
    y_edges: np.ndarray,
    boxes: pd.DataFrame,
    drivers: pd.DataFrame,
    path: str | Path,
    title: str = "",
    n_boxes: int = 10,
    n_drivers: int = 15,
    gamma: float = 0.4,
) -> Path:
    """Left: mean fingerprint (precursor m/z x fragment m/z) with the ``n_boxes`` most important boxes outlined
    and numbered (red: the box pushes towards high activity on average, blue: towards low) and the top drivers'
    precursor m/z marked. Right: the top ``n_drivers`` in rank order (up first), their bars the quantity they are
    ranked by (``conditional_importance`` when computed), labelled with rank, m/z, RT and library name."""
    from matplotlib.colors import PowerNorm
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    img = np.asarray(mean_image, dtype=np.float64)
    xe, ye = np.asarray(x_edges, dtype=np.float64), np.asarray(y_edges, dtype=np.float64)
    fig = new_figure(12.5, 5.4)
    ax, bx = fig.subplots(1, 2, width_ratios=[1.15, 1.0])
    vmax = float(img.max()) if img.size and img.max() > 0 else 1.0
    ax.set_facecolor("black")
    mesh = ax.pcolormesh(xe, ye, img, cmap="magma", norm=PowerNorm(gamma, vmin=0, vmax=vmax), rasterized=True)
    xs = np.linspace(xe[0], xe[-1], 64)
    ax.fill_between(xs, np.clip(xs, ye[0], ye[-1]), ye[-1], color="0.35", alpha=0.5, lw=0)
    for b in boxes.head(n_boxes).itertuples(index=False):
        color = UP_COLOR if getattr(b, "contribution", 1.0) >= 0 else DOWN_COLOR
        ax.add_patch(
            Rectangle(
                (b.precursor_mz_lo, b.fragment_mz_lo),
                b.precursor_mz_hi - b.precursor_mz_lo,
                b.fragment_mz_hi - b.fragment_mz_lo,
                fill=False,
                lw=1.4,
                ec=color,
            )
        )
        ax.text(b.precursor_mz_hi, b.fragment_mz_hi, f"B{b.box}", color="white", fontsize=7, va="bottom", ha="left")
    top = drivers.head(n_drivers)
    if len(top):
        ax.scatter(top["precursor_mz"], np.full(len(top), ye[0]), marker="^", s=28, c="cyan", clip_on=False, zorder=5)
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel("Precursor m/z")
    ax.set_ylabel("Fragment m/z")
    ax.set_title("mean fingerprint, top boxes B1.. (red: towards high, blue: towards low); ▲ top drivers", fontsize=8.5)
    fig.colorbar(mesh, ax=ax, shrink=0.8, label=f"mean pixel intensity, γ = {gamma:g}")

    labels = []
    for r in top.itertuples(index=False):
        name = shown_name(r)
        labels.append(f"#{r.rank} m/z {r.precursor_mz:.4f} @ {r.rt_min:.2f} min" + (f"  {name[:28]}" if name else ""))
    y = np.arange(len(top))[::-1]
    colors = [UP_COLOR if d == "up" else DOWN_COLOR for d in top.get("direction", [])]
    conditional = "conditional_effect" in top and top["conditional_effect"].notna().any()  # explain.conditional
    ranked_by = "conditional_importance" if conditional else "importance"
    bx.barh(y, top[ranked_by].to_numpy() if len(top) else [], color=colors)  # the quantity the ranks sort by
    bx.set_yticks(y, labels, fontsize=7)
    bx.xaxis.set_major_locator(MaxNLocator(4))
    bx.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))  # 0.0014 as 1.4 x 1e-3: labels apart
    # two lines: constrained layout centres an axis label under its axes and lets a wider one run off the page
    bx.set_xlabel(f"{ranked_by.replace('_', ' ')}\n(red: more abundant in high-activity accessions)")
    bx.set_title("top drivers", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.05)  # long labels stay on the page
    return path
