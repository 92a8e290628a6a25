"""Every figure of the project, written as PNG atomically (matplotlib's Agg canvas, no pyplot).

- :mod:`.cv`: ROC (Fig. 3B), confusion (Fig. 3C), learning curves and the resolution study (Table 1),
  model comparison and the per-family metric box plots (Fig. 5).
- :mod:`.predictions`: predictions against measured activity with units and cut-offs (Fig. 3A).
- :mod:`.multivariate`: PCA, OPLS-DA scores and the permutation test (Fig. 4A/B).
- :mod:`.fingerprint`: a fingerprint image with m/z axes and a colour bar.
"""

from __future__ import annotations

from ms2img.plots._base import (
    DPI,
    FAMILY_COLORS,
    HELDOUT_COLOR,
    HIGH_COLOR,
    INNER_COLOR,
    LOW_COLOR,
    MIDDLE_COLOR,
    TRAIN_COLOR,
    VAL_COLOR,
    family_color,
    new_figure,
    save_figure,
)
from ms2img.plots.cv import (
    FOLD_METRICS,
    curve_stats,
    mean_roc,
    plot_confusion,
    plot_metric_boxplots,
    plot_resolution_study,
    plot_roc,
)
from ms2img.plots.fingerprint import fingerprint_title, plot_fingerprint
from ms2img.plots.multivariate import permutation_intercepts, plot_oplsda, plot_pca, plot_permutation
from ms2img.plots.predictions import (
    decision_threshold,
    plot_family_oof,
    plot_oof_predictions,
    plot_predictions,
    plot_regression_oof,
    spearman,
)

__all__ = [
    "DPI",
    "FAMILY_COLORS",
    "FOLD_METRICS",
    "HELDOUT_COLOR",
    "HIGH_COLOR",
    "INNER_COLOR",
    "LOW_COLOR",
    "MIDDLE_COLOR",
    "TRAIN_COLOR",
    "VAL_COLOR",
    "curve_stats",
    "decision_threshold",
    "family_color",
    "fingerprint_title",
    "mean_roc",
    "new_figure",
    "permutation_intercepts",
    "plot_confusion",
    "plot_family_oof",
    "plot_fingerprint",
    "plot_metric_boxplots",
    "plot_oof_predictions",
    "plot_oplsda",
    "plot_pca",
    "plot_permutation",
    "plot_predictions",
    "plot_regression_oof",
    "plot_resolution_study",
    "plot_roc",
    "save_figure",
    "spearman",
]
