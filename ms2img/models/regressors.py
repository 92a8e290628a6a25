"""Every model family as a regressor of the raw assay value (``labels.mode: regression``), on the same inputs.

:func:`make_regressor` takes the family's classifier exactly as :func:`ms2img.models.estimators.make_estimator`
configures it from params.yaml and builds its regression twin with the same settings, so the two modes never drift:

* forests (``rf-image``, ``rf-cosine``, ``rf-entropy``) -> :class:`ForestRegressor`: a random forest regressor on
  the same inputs, its grid point chosen by the out-of-bag Spearman rho (no inner folds; the test fold unseen);
* ``cnn`` -> :class:`CNNRegressor`: the same tuned network with a linear output and a Huber loss
  (:mod:`ms2img.models.cnn_regression`), trials ranked and stopped early on the inner loss, the inner split
  stratified by value-quantile bins.

Every family has a regressor; the descriptive PCA / OPLS-DA (discriminant analysis) are skipped in regression with
one logged line by the train stage. ``predict`` returns values in the assay's units.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor

from ms2img.models.estimators import (
    CNNClassifier,
    ForestClassifier,
    ForestGrid,
    fixed_hp,
    group_out_of_bag,
    make_estimator,
)
from ms2img.training.scores import spearman

log = logging.getLogger(__name__)


class ForestRegressor(RegressorMixin, ForestGrid):
    """Random forest regressor whose grid point is chosen by out-of-bag Spearman rho (as the classifier by OOB AUC)."""

    def _make(self, n_trees: int, max_features: Any) -> Any:
        return self._forest(RandomForestRegressor, n_trees, max_features)

    def fit(self, X: Any, y: Any, groups: Any = None) -> ForestRegressor:
        """``groups``: the accession of each row (replicate images): out of bag with all of its images."""
        y = np.asarray(y, dtype=float)
        best = None
        for n in self.n_estimators:
            for mf in self.max_features:
                model = self._make(n, mf).fit(X, y)
                rf = model[-1] if self.flatten else model
                oob = rf.oob_prediction_ if groups is None else group_out_of_bag(model, X, groups)
                seen = np.isfinite(oob)
                rho = spearman(oob[seen], y[seen])
                score = rho if np.isfinite(rho) else -np.inf
                if best is None or score > best[0]:
                    best = (score, model, {"n_estimators": int(n), "max_features": mf})
        self.oob_spearman_, self.model_, self.best_params_ = best
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.model_.predict(X), dtype=float)


class CNNRegressor(RegressorMixin, CNNClassifier):
    """The tuned CNN of :class:`~ms2img.models.estimators.CNNClassifier` (same settings) predicting the value.

    The targets are standardised with the training part's mean and SD; trials run on an inner split stratified by
    value-quantile bins, ranked and early-stopped on the inner Huber loss (``val_loss``, whatever ``tune.objective``
    says: AUC and accuracy mean nothing here); ``ensemble`` members are refitted on all of ``X`` for the best
    epoch count, and every member answers in the assay's units (:func:`~ms2img.models.cnn_regression.in_units`).
    No pixel relevance weights (``cnn.relevance_power`` is chosen on classes): weighting pixels by their |Spearman
    rho| with the value cost DPPH 0.09 in Spearman rho on two cohorts (the demo cohort 0.657 -> 0.567, cohort B
    seed 7 0.511 -> 0.417; elastase there 0.436 -> 0.485).
    """

    def fit(self, X: Any, y: Any, groups: Any = None) -> CNNRegressor:
        """``groups``: the accession of each row (replicate images): the inner split keeps them on one side."""
        import keras

        from ms2img.models.cnn import as_model_input
        from ms2img.models.cnn_regression import RegressionHyperModel, in_units, standardise
        from ms2img.models.tuning import stratified_split
        from ms2img.training.dataset import value_strata

        x = as_model_input(X)
        z, self.target_mean_, self.target_scale_ = standardise(y)
        fraction = float(self.validation_split)
        strata = value_strata(z, max(2, round(1 / fraction)))
        train_idx, val_idx = stratified_split(strata, fraction, int(self.seed), groups)  # value bins as classes
        hypermodel = RegressionHyperModel(self._hypermodel(x, relevance_power=0.0))  # see the class docstring
        x = hypermodel.prepare(x)  # what the networks read (the column network: pixel channels)
        result = self._tune(x, z, hypermodel, int(self.seed), (train_idx, val_idx), continuous=True)
        self.best_hp_, self.inner_score_ = result.best_hp, result.best_score
        self.best_epoch_ = max(int(result.best_epoch), min(int(self.min_epochs), int(self.max_epochs)))
        self.history_ = result.tuner.best_history
        members = [] if int(self.ensemble) > 0 else [result.best_model]
        for k in range(int(self.ensemble)):
            keras.utils.set_random_seed(int(self.seed) + 7919 * (k + 1))
            model = hypermodel.build(fixed_hp(result.tuner, result.best_hp))
            epochs = self.best_epoch_ * int(getattr(hypermodel.inner, "passes_per_epoch", 1))  # as the tuner's epochs
            model.fit(x, z, epochs=epochs, batch_size=int(self.batch_size), callbacks=list(self.callbacks),
                      shuffle=True, verbose=0)  # fmt: skip
            members.append(model)
        self.members_ = [in_units(hypermodel.served(m), self.target_mean_, self.target_scale_) for m in members]
        self.threshold_ = float("nan")  # no decision threshold: the answer is the value
        return self

    def predict(self, X: Any) -> np.ndarray:
        from ms2img.models.cnn import predict_proba  # the network's output as it is: here the value, not P(high)

        return np.mean([predict_proba(m, X) for m in self.members_], axis=0).astype(float)

    def predict_proba(self, X: Any) -> np.ndarray:
        raise AttributeError("a CNNRegressor predicts values (predict), not probabilities")


def make_regressor(family: str, params: Mapping[str, Any], seed: int, on_trial_end=None) -> BaseEstimator:
    """The regression twin of ``family``'s classifier, with every setting the classifier gets from params.yaml."""
    classifier = make_estimator(family, params, seed, on_trial_end)
    if isinstance(classifier, CNNClassifier):
        return CNNRegressor(**classifier.get_params(deep=False))
    if isinstance(classifier, ForestClassifier):
        return ForestRegressor(**classifier.get_params(deep=False))
    raise TypeError(f"no regressor for family {family!r} ({type(classifier).__name__})")
