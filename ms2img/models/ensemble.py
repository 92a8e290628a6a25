"""The image ensemble family: the CNN and the random forest on the same pixels, their ranks averaged.

The two read a fingerprint differently (the column network sees each pixel's rank among the training images and
local fragment patterns; the forest splits on single pixels), so their errors are partly independent. Their
probabilities are not on one scale (a class-weighted sigmoid against a share of tree votes), so a plain mean lets
the more spread-out member decide; each member's probability is therefore first turned into its quantile among
that member's own held-out predictions on the training rows (mid-rank empirical CDF: the CNN's cross-fitted inner
folds, the forest's out-of-bag votes), and the ensemble's score is the mean of the two quantiles, in [0, 1]. The
decision threshold is chosen on the same held-out quantiles: no test fold, no refit.

In cross-validation and the final fit the ensemble is built from the very ``cnn`` and ``rf-image`` estimators of
the same training part when those families run too (:meth:`ImageEnsembleClassifier.from_members`), so it costs
nothing beyond them; alone it fits both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ms2img.errors import ConfigError
from ms2img.training.fold_metrics import predict_labels
from ms2img.training.scores import choose_threshold

MEMBERS = ("cnn", "rf-image")  # the families whose ranks the ensemble averages


def quantile(reference: np.ndarray, p: Any) -> np.ndarray:
    """Mid-rank empirical CDF of ``p`` among the sorted ``reference`` predictions, in [0, 1]. Compared in float32,
    the precision every path delivers (a forest's vote share 0.45 is 0.44999998 once served as float32)."""
    reference = np.asarray(reference, dtype=np.float32)
    p = np.asarray(p, dtype=np.float32)
    below = np.searchsorted(reference, p, side="left")
    upto = np.searchsorted(reference, p, side="right")
    return (below + upto) / (2.0 * max(len(reference), 1))


def mean_quantile(references: dict[str, np.ndarray], probabilities: dict[str, Any]) -> np.ndarray:
    """The ensemble's score: the mean over members of each member's quantile (one rule for fit, CV and serving).

    Rounded to 12 decimals: quantiles are multiples of ``1 / (2 n)``, so two accessions with equal sums (3 + 5 and
    4 + 4) are a tie, which AUC counts as one half; unrounded, the last bit of a float sum broke such ties at random
    (a fold's AUC 0.9265 in memory, 0.9235 from its own oof.csv)."""
    return np.round(np.mean([quantile(references[m], probabilities[m]) for m in MEMBERS], axis=0), 12)


class ImageEnsembleClassifier(ClassifierMixin, BaseEstimator):
    """Mean quantile of ``cnn``'s and ``forest``'s P(high) among their held-out predictions (``inner_proba_``)."""

    def __init__(self, cnn: Any = None, forest: Any = None):
        self.cnn = cnn
        self.forest = forest

    def fit(self, X: Any, y: Any, groups: Any = None) -> ImageEnsembleClassifier:
        if self.cnn is None or self.forest is None:
            raise ConfigError("the image ensemble needs a cnn and a forest estimator")
        self.cnn_ = self.cnn.fit(X, y, groups=groups)
        self.forest_ = self.forest.fit(X, y, groups=groups)
        return self._calibrate(y)

    @classmethod
    def from_members(cls, cnn: Any, forest: Any, y: Any) -> ImageEnsembleClassifier:
        """The ensemble of two estimators already fitted on the same rows with labels ``y``."""
        out = cls(cnn, forest)
        out.cnn_, out.forest_ = cnn, forest
        return out._calibrate(y)

    def _calibrate(self, y: Any) -> ImageEnsembleClassifier:
        y = np.asarray(y).astype(int)
        held = {"cnn": self.cnn_.inner_proba_, "rf-image": self.forest_.inner_proba_}
        seen = np.isfinite(held["cnn"]) & np.isfinite(held["rf-image"])  # rows the CNN held out (all, cross-fitted)
        self.references_ = {m: np.sort(np.asarray(held[m], dtype=np.float64)[seen]) for m in MEMBERS}
        self.inner_proba_ = np.full(len(y), np.nan)
        self.inner_proba_[seen] = mean_quantile(self.references_, {m: held[m][seen] for m in MEMBERS})
        self.threshold_ = choose_threshold(y[seen], self.inner_proba_[seen])
        self.classes_ = np.array([0, 1])
        return self

    @property
    def best_params_(self) -> dict[str, Any]:
        return {"cnn": self.cnn_.best_hp_, "rf-image": self.forest_.best_params_}

    def predict_proba(self, X: Any) -> np.ndarray:
        members = {"cnn": self.cnn_.predict_proba(X)[:, 1], "rf-image": self.forest_.predict_proba(X)[:, 1]}
        p = mean_quantile(self.references_, members)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return predict_labels(self.predict_proba(X)[:, 1], self.threshold_)
