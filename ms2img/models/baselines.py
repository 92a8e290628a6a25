"""Baselines for the MS2toImg CNN: random forest (feature table or flattened image), PCA and OPLS-DA.

Everything takes ``X`` (n_samples, n_features) -- or images (n_samples, H, W), which the RF flattens with
:class:`FlattenImages` -- 0/1 labels ``y`` (1 = high activity) and, for the RF, the *same* precomputed outer
folds ``[(train_idx, test_idx), ...]`` the CNN uses, so both are scored on identical splits.

The RF gets a tuning budget too: inside every outer training part a grid search with ``inner_folds``-fold
stratified (grouped, when ``groups`` is given) CV picks ``n_estimators`` / ``max_features`` by ROC AUC.
The test fold is never seen by the search. Only predictions are returned here; metrics live in
:mod:`ms2img.evaluate`.

OPLS-DA lives in :mod:`ms2img.models.oplsda` and is re-exported here; the figures live in :mod:`ms2img.plots`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ms2img.errors import ConfigError
from ms2img.models.oplsda import (
    OPLSDAResult,
    PermutationResult,
    oplsda,
    scale_matrix,
    venetian_folds,
)

__all__ = [
    "DEFAULT_RF_GRID",
    "FlattenImages",
    "OPLSDAResult",
    "PCAResult",
    "PermutationResult",
    "RFFold",
    "RFResult",
    "make_rf",
    "oplsda",
    "pca_scores",
    "rf_cross_validate",
    "rf_param_grid",
    "venetian_folds",
]

# params.yaml: baselines.rf_trees / baselines.rf_max_features
DEFAULT_RF_GRID: dict[str, list[Any]] = {"n_estimators": [200, 500], "max_features": ["sqrt", 0.1]}

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------------------------------------------
# Flattening images
# --------------------------------------------------------------------------------------------------------------
class FlattenImages(TransformerMixin, BaseEstimator):
    """(N, H, W[, C]) images -> (N, H*W[*C]) rows; 2-D input passes through.

    With ``drop_zero_columns=True`` the columns that are zero in every training sample (the masked diagonal,
    never-hit pixels) are learned in ``fit`` and dropped, which shrinks the RF's feature space without
    touching any column that carries a value.
    """

    def __init__(self, drop_zero_columns: bool = False):
        self.drop_zero_columns = drop_zero_columns

    @staticmethod
    def _as_2d(X) -> tuple[Any, tuple[int, ...] | None]:
        if hasattr(X, "columns"):  # a DataFrame is already a table
            return X, None
        if not hasattr(X, "ndim") and isinstance(X, list | tuple):
            arr = np.asarray(X)
            X = arr if arr.ndim > 2 else X
        if hasattr(X, "ndim") and X.ndim > 2:
            X = np.asarray(X)
            return X.reshape(X.shape[0], -1), tuple(X.shape[1:])
        return X, None

    def fit(self, X, y=None):
        X2, shape = self._as_2d(X)
        X2 = validate_data(self, X2, reset=True, dtype="numeric", ensure_all_finite=True)
        self.image_shape_ = shape
        if self.drop_zero_columns:
            self.support_ = np.any(X2 != 0, axis=0)
        else:
            self.support_ = np.ones(X2.shape[1], dtype=bool)
        return self

    def transform(self, X):
        check_is_fitted(self, "support_")
        X2, shape = self._as_2d(X)
        if shape is not None and self.image_shape_ is not None and shape != self.image_shape_:
            raise ValueError(f"images have shape {shape}, but FlattenImages was fitted on {self.image_shape_}")
        X2 = validate_data(self, X2, reset=False, dtype="numeric", ensure_all_finite=True)
        return X2[:, self.support_] if not self.support_.all() else X2

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "support_")
        if self.image_shape_ is not None and input_features is None:
            names = np.array(["px_" + "_".join(map(str, ix)) for ix in np.ndindex(*self.image_shape_)], dtype=object)
        else:
            names = _check_feature_names_in(self, input_features)
        return names[self.support_]

    def inverse_transform(self, X):
        """Put kept columns back in place (dropped columns as 0) and restore the image shape if any."""
        check_is_fitted(self, "support_")
        X = np.asarray(X)
        full = np.zeros((X.shape[0], self.support_.shape[0]), dtype=X.dtype)
        full[:, self.support_] = X
        return full.reshape((X.shape[0], *self.image_shape_)) if self.image_shape_ is not None else full


# --------------------------------------------------------------------------------------------------------------
# Random forest
# --------------------------------------------------------------------------------------------------------------
def rf_param_grid(baselines_params: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The RF search grid from params.yaml's ``baselines`` section (``rf_trees``, ``rf_max_features``)."""
    grid = dict(DEFAULT_RF_GRID)
    if "rf_trees" in baselines_params:
        grid["n_estimators"] = [int(v) for v in baselines_params["rf_trees"]]
    if "rf_max_features" in baselines_params:
        grid["max_features"] = list(baselines_params["rf_max_features"])
    return grid


def make_rf(seed: int, n_jobs: int = 1, **params: Any) -> RandomForestClassifier:
    """The project's RF: class-balanced, seeded; ``params`` (n_estimators, max_features, ...) override."""
    return RandomForestClassifier(random_state=seed, class_weight="balanced", n_jobs=n_jobs, **params)


@dataclass(frozen=True)
class RFFold:
    """One outer fold: the test predictions and what the inner search chose on the training part."""

    fold: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    y_true: np.ndarray
    y_prob: np.ndarray  # P(class 1 = high) for test_idx
    best_params: dict[str, Any]
    inner_auc: float  # mean inner-CV ROC AUC of best_params


@dataclass
class RFResult:
    """Per-fold predictions plus the model refit on all samples with the most frequently chosen params."""

    folds: list[RFFold]
    final_params: dict[str, Any]
    final_model: Any  # RandomForestClassifier, or Pipeline(flatten, rf) for image input
    param_grid: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def test_idx(self) -> np.ndarray:
        return np.concatenate([f.test_idx for f in self.folds])

    @property
    def y_true(self) -> np.ndarray:
        return np.concatenate([f.y_true for f in self.folds])

    @property
    def y_prob(self) -> np.ndarray:
        return np.concatenate([f.y_prob for f in self.folds])

    def out_of_fold_prob(self, n_samples: int) -> np.ndarray:
        """P(high) per sample from the fold that held it out; NaN for samples in no test fold."""
        out = np.full(n_samples, np.nan)
        out[self.test_idx] = self.y_prob
        return out


def _check_labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ConfigError(f"y must be a vector of {n} labels, got shape {y.shape}")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1} or len(values) < 2:
        raise ConfigError(f"y must hold both 0/1 class labels (1 = high activity), got values {sorted(values)[:5]}")
    return y.astype(int)


def _check_folds(folds: Folds, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if not folds:
        raise ConfigError("no folds given")
    out = []
    for i, (train, test) in enumerate(folds):
        train = np.asarray(train, dtype=int)
        test = np.asarray(test, dtype=int)
        for name, idx in (("train", train), ("test", test)):
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
                raise ConfigError(f"fold {i}: {name} indices must be a non-empty subset of 0..{n - 1}")
        if np.intersect1d(train, test).size:
            raise ConfigError(f"fold {i}: train and test indices overlap")
        out.append((train, test))
    return out


def _freeze(params: Mapping[str, Any]) -> tuple:
    return tuple(sorted(params.items(), key=lambda kv: kv[0]))


def rf_cross_validate(
    X: np.ndarray,
    y: np.ndarray,
    folds: Folds,
    *,
    seed: int,
    param_grid: Mapping[str, Sequence[Any]] | None = None,
    inner_folds: int = 3,
    groups: np.ndarray | None = None,
    n_jobs: int = 1,
    drop_zero_columns: bool = True,
) -> RFResult:
    """Nested CV of a class-balanced RF on the given outer ``folds``.

    For each outer fold a ``GridSearchCV`` over ``param_grid`` (default: params.yaml's
    ``n_estimators`` [200, 500] x ``max_features`` [sqrt, 0.1]) with ROC AUC scoring and ``inner_folds``
    stratified folds (``StratifiedGroupKFold`` on ``groups`` when given, e.g. replicate injections of one
    accession) runs on the training part only; the refit best model predicts P(high) for the test part.
    Image input (n, H, W) is flattened inside the pipeline (``drop_zero_columns`` learned per training part).
    The returned ``final_model`` is refit on all samples with the most frequently chosen parameters.
    """
    X = np.asarray(X)
    if X.ndim < 2:
        raise ConfigError(f"X must be (samples, features) or (samples, H, W), got shape {X.shape}")
    n = X.shape[0]
    y = _check_labels(y, n)
    folds = _check_folds(folds, n)
    grid = {k: list(v) for k, v in (param_grid or DEFAULT_RF_GRID).items()}
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise ConfigError(f"param_grid needs at least one value per parameter, got {grid}")
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape[0] != n:
            raise ConfigError(f"groups must have one entry per sample ({n}), got {groups.shape[0]}")
    images = X.ndim > 2

    def estimator(params: Mapping[str, Any] | None = None):
        rf = make_rf(seed, n_jobs=n_jobs, **(params or {}))
        if images:
            return Pipeline([("flatten", FlattenImages(drop_zero_columns=drop_zero_columns)), ("rf", rf)])
        return rf

    prefix = "rf__" if images else ""
    search_grid = {prefix + k: v for k, v in grid.items()}

    results: list[RFFold] = []
    for i, (train, test) in enumerate(folds):
        y_train = y[train]
        minority = int(np.bincount(y_train, minlength=2).min())
        if minority < inner_folds:
            raise ConfigError(
                f"fold {i}: the training part has only {minority} samples of one class, fewer than "
                f"inner_folds={inner_folds}; use fewer inner folds or more samples"
            )
        if groups is not None:
            inner = StratifiedGroupKFold(n_splits=inner_folds, shuffle=True, random_state=seed)
            n_groups = np.unique(groups[train]).size
            if n_groups < inner_folds:
                raise ConfigError(f"fold {i}: {n_groups} groups in the training part, fewer than inner_folds")
            fit_kw = {"groups": groups[train]}
        else:
            inner = StratifiedKFold(n_splits=inner_folds, shuffle=True, random_state=seed)
            fit_kw = {}
        search = GridSearchCV(estimator(), search_grid, scoring="roc_auc", cv=inner, refit=True, n_jobs=1)
        search.fit(X[train], y_train, **fit_kw)
        best = {k.removeprefix(prefix): v for k, v in search.best_params_.items()}
        classes = list(search.best_estimator_.classes_)
        prob = search.predict_proba(X[test])[:, classes.index(1)]
        results.append(
            RFFold(
                fold=i,
                train_idx=train,
                test_idx=test,
                y_true=y[test],
                y_prob=prob,
                best_params=best,
                inner_auc=float(search.best_score_),
            )
        )

    counts = Counter(_freeze(f.best_params) for f in results)
    top = max(counts.values())
    # ties: the setting chosen first (in fold order) wins, so the result does not depend on dict ordering
    final_params = next(f.best_params for f in results if counts[_freeze(f.best_params)] == top)
    final_model = estimator(final_params).fit(X, y)
    return RFResult(folds=results, final_params=dict(final_params), final_model=final_model, param_grid=grid)


# --------------------------------------------------------------------------------------------------------------
# PCA
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PCAResult:
    scores: np.ndarray  # (n_samples, n_components)
    explained_variance_ratio: np.ndarray  # (n_components,), share of the total (scaled) variance


def pca_scores(X: np.ndarray, y: np.ndarray | None = None, n_components: int = 2, scale: bool = True) -> PCAResult:
    """PCA scores of the feature table (ropls-like: centred, unit-variance scaled when ``scale``).

    Constant columns are dropped first. ``y`` is only checked against X (the plot colours by it).
    """
    X = np.asarray(X, dtype=float)
    if X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    Xs, _ = scale_matrix(X, "uv" if scale else "center")
    if y is not None and np.asarray(y).shape[0] != X.shape[0]:
        raise ConfigError(f"got {np.asarray(y).shape[0]} labels for {X.shape[0]} samples")
    max_comp = min(Xs.shape)
    if not 1 <= n_components <= max_comp:
        raise ConfigError(f"n_components must be between 1 and {max_comp}, got {n_components}")
    pca = PCA(n_components=n_components, svd_solver="full")
    scores = pca.fit_transform(Xs)
    # deterministic signs: the largest-magnitude score of each component is positive
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(n_components)])
    signs[signs == 0] = 1
    return PCAResult(scores=scores * signs, explained_variance_ratio=pca.explained_variance_ratio_.copy())


# --------------------------------------------------------------------------------------------------------------
# The figures moved to ms2img.plots (models hold computation only)
# --------------------------------------------------------------------------------------------------------------
_MOVED_TO_PLOTS = ("plot_pca", "plot_oplsda", "plot_permutation", "HIGH_COLOR", "LOW_COLOR")


def __getattr__(name: str):
    """Transitional: the baseline figures now live in :mod:`ms2img.plots`; import them there.

    No import cycle: :mod:`ms2img.plots` never imports the models at run time.
    """
    if name in _MOVED_TO_PLOTS:
        from ms2img import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
