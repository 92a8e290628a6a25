"""Baselines for the MS2toImg CNN: random forest (feature table or flattened image), PCA and OPLS-DA.

Everything takes ``X`` (n_samples, n_features) -- or images (n_samples, H, W), which the RF flattens with
:class:`FlattenImages` -- 0/1 labels ``y`` (1 = high activity) and, for the RF, the *same* precomputed outer
folds ``[(train_idx, test_idx), ...]`` the CNN uses, so both are scored on identical splits.

The RF gets a tuning budget too: inside every outer training part its grid point (``n_estimators`` /
``max_features``) is chosen by out-of-bag AUC and its decision threshold from the out-of-bag predictions
(:class:`ms2img.models.estimators`), so no inner folds are needed and the test fold is never seen. Only
predictions are returned here; metrics live in :mod:`ms2img.training.fold_metrics`.

OPLS-DA lives in :mod:`ms2img.models.oplsda` and is re-exported here; the figures live in :mod:`ms2img.plots`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA
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
    "FlattenImages",
    "OPLSDAResult",
    "PCAResult",
    "PermutationResult",
    "oplsda",
    "pca_scores",
    "venetian_folds",
]

# params.yaml: baselines.rf_trees / baselines.rf_max_features


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
