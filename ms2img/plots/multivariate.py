"""Figures of the multivariate baselines (the paper's Fig. 4A/B): PCA scores, OPLS-DA scores and the
OPLS-DA permutation test with its intercepts.

The results are read by attribute only (``PCAResult``, ``OPLSDAResult`` from :mod:`ms2img.models`), so this
module never imports the models and the models never need matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from ms2img.plots._base import new_figure, save_figure, scatter_classes

if TYPE_CHECKING:  # pragma: no cover
    from ms2img.models.baselines import PCAResult
    from ms2img.models.oplsda import OPLSDAResult

R2Y_COLOR = "#2ca02c"
Q2Y_COLOR = "#9467bd"


def _prefix(assay: str | None) -> str:
    return f"{assay}: " if assay else ""


def plot_pca(
    result: PCAResult,
    y: np.ndarray,
    path: str | Path,
    *,
    class_names: tuple[str, str] = ("Low", "High"),
    assay: str | None = None,
    title: str | None = None,
    data_label: str | None = None,
) -> Path:
    """PC1 vs PC2 scores, high red / low blue, explained variance per component on the axes (Fig. 4A)."""
    scores = np.asarray(result.scores)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ValueError("plot_pca needs at least 2 components")
    fig = new_figure()
    ax = fig.add_subplot()
    scatter_classes(ax, scores[:, 0], scores[:, 1], np.asarray(y), class_names)
    evr = np.asarray(result.explained_variance_ratio, dtype="float64")
    ax.set_xlabel(f"PC1 ({100 * evr[0]:.1f}% of variance explained)")
    ax.set_ylabel(f"PC2 ({100 * evr[1]:.1f}% of variance explained)")
    default = f"{_prefix(assay)}PCA scores" + (f" ({data_label})" if data_label else "")
    ax.set_title(title or default + f"\nPC1 + PC2 explain {100 * (evr[0] + evr[1]):.1f}% of the variance", fontsize=10)
    return save_figure(fig, path)


def plot_oplsda(
    result: OPLSDAResult,
    y: np.ndarray,
    path: str | Path,
    *,
    class_names: tuple[str, str] = ("Low", "High"),
    assay: str | None = None,
    title: str | None = None,
) -> Path:
    """Scores plot t_pred vs t_orth[1] coloured by class, R2Y and Q2Y in the title (Fig. 4B)."""
    fig = new_figure()
    ax = fig.add_subplot()
    r2x = np.asarray(result.r2x_components, dtype="float64")
    if result.n_orthogonal:
        y_coord = np.asarray(result.t_orth)[:, 0]
        ax.set_ylabel(f"t_orth1 ({100 * r2x[1]:.1f}% of X)")
    else:
        y_coord = np.zeros_like(np.asarray(result.t_pred))
        ax.set_ylabel("(no orthogonal component)")
    scatter_classes(ax, np.asarray(result.t_pred), y_coord, y, class_names)
    ax.set_xlabel(f"t_pred ({100 * r2x[0]:.1f}% of X)")
    ax.set_title(
        title
        or f"{_prefix(assay)}OPLS-DA  R²Y = {result.r2y:.3f}, Q²Y = {result.q2y:.3f}\n"
        f"1 predictive + {result.n_orthogonal} orthogonal, {result.cv_folds}-fold CV",
        fontsize=10,
    )
    return save_figure(fig, path)


def permutation_intercepts(result: OPLSDAResult) -> dict[str, float]:
    """SIMCA/ropls-style intercepts: regress R2Y (Q2Y) on label similarity over the permuted models plus the
    observed one (similarity 1) and read the line at similarity 0. A valid model has R2Y's intercept well
    below its R2Y (< 0.3-0.4 by convention) and Q2Y's below 0.05."""
    perm = result.permuted
    out = {"r2y": float("nan"), "q2y": float("nan")}
    sim = np.append(np.asarray(perm.similarity, dtype="float64"), 1.0)
    if sim.size < 3 or np.ptp(sim) == 0:
        return out
    for key, obs, values in (("r2y", result.r2y, perm.r2y), ("q2y", result.q2y, perm.q2y)):
        v = np.append(np.asarray(values, dtype="float64"), float(obs))
        ok = np.isfinite(v)
        if ok.sum() >= 3:
            _slope, intercept = np.polyfit(sim[ok], v[ok], 1)
            out[key] = float(intercept)
    return out


def _null_histogram(ax: Any, null: np.ndarray, observed: float, p_value: float, color: str, name: str) -> None:
    null = np.asarray(null, dtype="float64")
    null = null[np.isfinite(null)]
    lo = min(float(null.min()) if null.size else observed, observed)
    hi = max(float(null.max()) if null.size else observed, observed)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05
    bins = np.linspace(lo - pad, hi + pad, max(10, min(40, null.size // 4 + 1)) + 1)
    # the observed line sits *under* the bars (zorder) and is dashed, so a null piled up at the observed
    # value (R2Y of a p >> n table) stays visible
    ax.axvline(observed, color="black", lw=1.4, ls="--", zorder=1, label=f"observed {name} = {observed:.3f}")
    if null.size:
        ax.hist(
            null,
            bins=bins,
            color=color,
            alpha=0.75,
            edgecolor="black",
            linewidth=0.5,
            zorder=2,
            label=f"permuted (n={null.size}), median {np.median(null):.3f}",
        )
    ax.set_xlim(bins[0], bins[-1])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # a null piled up near 1 has long tick labels that collide
    ax.set_xlabel(name)
    ax.set_ylabel("permutations")
    ax.set_title(f"{name} null: p = {p_value:.3g}", fontsize=9)
    ax.legend(frameon=False, fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below: bars stay clear


def plot_permutation(
    result: OPLSDAResult, path: str | Path, *, assay: str | None = None, title: str | None = None
) -> Path:
    """Permutation test of the OPLS-DA model: the ropls/SIMCA plot (R2Y and Q2Y of each permuted model against
    the share of labels it kept, the observed model at 1, regression lines and their intercepts) and the
    null histograms of R2Y and Q2Y each on its own axis, with the observed value marked."""
    perm = result.permuted
    fig = new_figure(11.4, 4.6)  # fits a report page at the size it is drawn (11.4 in = 1,094 CSS px)
    ax_sim, ax_r2, ax_q2 = fig.subplots(1, 3, width_ratios=[1.25, 1, 1])
    icpt = permutation_intercepts(result)
    sim = np.asarray(perm.similarity, dtype="float64")
    for key, color, name, obs, values in (
        ("r2y", R2Y_COLOR, "R²Y", result.r2y, perm.r2y),
        ("q2y", Q2Y_COLOR, "Q²Y", result.q2y, perm.q2y),
    ):
        ax_sim.scatter(sim, values, s=14, c=color, alpha=0.6, edgecolors="none", label=f"{name} permuted")
        ax_sim.scatter([1.0], [obs], s=70, c=color, edgecolors="k", marker="D", zorder=4, label=f"{name} observed")
        if np.isfinite(icpt[key]):
            ax_sim.plot(
                [0.0, 1.0], [icpt[key], obs], color=color, lw=1.2, ls="--", label=f"{name} intercept = {icpt[key]:.3f}"
            )
    ax_sim.axhline(0, color="0.7", lw=0.6)
    ax_sim.set_xlim(-0.02, 1.05)
    ax_sim.set_xlabel("similarity of permuted labels to the true labels")
    ax_sim.set_ylabel("R²Y, Q²Y")
    # below the axes, never over the observed markers at similarity 1 (a low observed Q2Y sat under it)
    ax_sim.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    ax_sim.set_title("permutation plot (ropls)", fontsize=9)
    _null_histogram(ax_r2, perm.r2y, result.r2y, result.permutation_p_r2y, R2Y_COLOR, "R²Y")
    _null_histogram(ax_q2, perm.q2y, result.q2y, result.permutation_p_q2y, Q2Y_COLOR, "Q²Y")
    fig.suptitle(
        title
        or f"{_prefix(assay)}OPLS-DA permutation test, {len(perm)} permutations: "
        f"p(R²Y) = {result.permutation_p_r2y:.3g}, p(Q²Y) = {result.permutation_p_q2y:.3g}",
        fontsize=10,
    )
    return save_figure(fig, path)
