"""OPLS-DA as the paper ran it in R ``ropls`` (Trygg & Wold 2002, NIPALS), in plain numpy.

What ``ropls::opls(x, y, predI = 1, orthoI = NA, crossvalI = 7, permI = N)`` does, and so what this does:

* X is mean-centred and scaled once on all samples (``uv``: unit variance with the n-1 standard deviation,
  ``pareto``: square root of it); columns with variance < machine epsilon are dropped first. The 0/1 response
  is centred and scaled to unit variance (ropls always does that for a class response).
* One predictive component plus orthogonal components. With ``n_orthogonal="auto"`` components are added
  while each new level raises R2Y by >= 0.01 **and** Q2Y by >= 0.01 (ropls rules N4 and R1, at most 9).
  ropls refuses to build a model when the predictive or the first orthogonal component already fails
  those rules; we then keep one orthogonal component (what ropls' error message tells the user to do) and
  say so in :attr:`OPLSDAResult.selection`.
* Q2Y = 1 - PRESS / SS(y) from 7 "venetian blind" segments (sample i is in segment i mod 7, in the given
  row order). As in ropls each segment refits the components on the other rows of the *globally* scaled
  matrix and deflates its own left-out rows with its own orthogonal components.
* Permutation test (Szymanska et al. 2012): refit with permuted labels and the same number of components;
  p = (#(stat_perm >= stat) + 1) / (n_perm + 1). ropls divides by n_perm instead, which can print p = 0.05
  for 20 permutations; ours is the standard conservative estimate. The "similarity" of a permutation is the
  share of labels it leaves unchanged (ropls' x axis of the permutation plot).

Checked against the ropls vignette on its ``sacurine`` data (R2X 0.275, R2Y 0.73, Q2 0.602, RMSEE 0.262,
2 orthogonal components) in ``tests/models/test_baselines.py``.

Speed: the deflated matrices are never formed. Deflation is kept as low-rank corrections
(E = X - T_o P_o'), the 7 segments, the full fit and a batch of permutations are stacked as columns, so
each step is one matrix product over X: the fit plus 200 permutations of a 545 x 21,000 table took about
10 s of CPU on one core.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ms2img.errors import ConfigError

__all__ = [
    "OPLSDAResult",
    "PermutationResult",
    "oplsda",
    "scale_matrix",
    "venetian_folds",
]

Scale = Literal["uv", "pareto", "center"]

_EPS = np.finfo(float).eps
_RULE_THRESHOLD = 0.01  # ropls: a level is kept if its R2Y gain >= 0.01 and its Q2Y gain >= 0.01 (OPLS)
_MAX_ORTHOGONAL = 9  # ropls: autMaxN = min(10, dim(x)); orthoI <= autMaxN - 1
_PERM_BATCH_BYTES = 64 * 2**20


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PermutationResult:
    """R2Y and Q2Y of the models refitted on permuted labels (one entry per permutation)."""

    r2y: np.ndarray
    q2y: np.ndarray
    similarity: np.ndarray  # share of labels a permutation left in place (ropls' x axis)
    orders: np.ndarray  # (n_permutations, n_samples): permutation i relabels sample j with y[orders[i, j]]

    def __len__(self) -> int:
        return int(self.r2y.shape[0])


@dataclass(frozen=True)
class OPLSDAResult:
    """A fitted OPLS-DA model, its cross-validated quality and its permutation test.

    ``r2x`` is the cumulative share of X variance the model describes (predictive + orthogonal), ``r2y`` the
    share of the (scaled) class response it fits and ``q2y`` the cross-validated one. ``t_pred`` (n,) and
    ``t_orth`` (n, n_orthogonal) are the sample scores plotted in the paper's Fig. 4B.
    """

    r2x: float
    r2y: float
    q2y: float
    n_orthogonal: int
    permutation_p_r2y: float
    permutation_p_q2y: float
    permuted: PermutationResult
    t_pred: np.ndarray
    t_orth: np.ndarray
    r2x_components: np.ndarray  # [predictive, o1, o2, ...]
    r2y_levels: np.ndarray  # cumulative R2Y with 0, 1, ... orthogonal components (as computed)
    q2y_levels: np.ndarray  # cumulative Q2Y with 0, 1, ... orthogonal components (as computed)
    rmsee: float
    y_fitted: np.ndarray  # fitted response on the 0/1 scale
    y_cv: np.ndarray  # cross-validated prediction of each sample (0/1 scale), from its left-out segment
    selection: str  # how n_orthogonal was chosen ("fixed", "auto", or the fallback and why)
    scale: str
    cv_folds: int
    n_features_used: int
    n_features_dropped: int

    def summary(self) -> dict[str, float | int | str]:
        """The ropls summary line (R2X(cum), R2Y(cum), Q2(cum), RMSEE, pre, ort, pR2Y, pQ2) as a flat dict."""
        return {
            "r2x": self.r2x,
            "r2y": self.r2y,
            "q2y": self.q2y,
            "rmsee": self.rmsee,
            "n_predictive": 1,
            "n_orthogonal": self.n_orthogonal,
            "permutation_p_r2y": self.permutation_p_r2y,
            "permutation_p_q2y": self.permutation_p_q2y,
            "n_permutations": len(self.permuted),
            "selection": self.selection,
        }


# --------------------------------------------------------------------------------------------------------------
# Preprocessing and folds
# --------------------------------------------------------------------------------------------------------------
def scale_matrix(X: np.ndarray, scale: Scale | str = "uv") -> tuple[np.ndarray, np.ndarray]:
    """Centre and scale columns as ropls does; drop near-constant columns.

    Returns the scaled matrix and the boolean mask of the columns kept. ``uv`` divides by the n-1 standard
    deviation, ``pareto`` by its square root, ``center`` only centres.
    """
    if scale not in ("uv", "pareto", "center"):
        raise ConfigError(f"scale must be 'uv', 'pareto' or 'center', not {scale!r}")
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ConfigError(f"X must be a 2-D (samples x features) matrix, got shape {X.shape}")
    if X.shape[0] < 2:
        raise ConfigError(f"need at least 2 samples, got {X.shape[0]}")
    if not np.all(np.isfinite(X)):
        raise ConfigError("X contains NaN or infinite values; fill absent features (e.g. with 0) first")
    var = X.var(axis=0, ddof=1)
    keep = var >= _EPS
    if not keep.any():
        raise ConfigError("every column of X is constant; nothing to model")
    Xk = X[:, keep]
    sd = np.sqrt(var[keep])
    divisor = {"uv": sd, "pareto": np.sqrt(sd), "center": np.ones_like(sd)}[scale]
    return (Xk - Xk.mean(axis=0)) / divisor, keep


def venetian_folds(n_samples: int, n_folds: int = 7) -> list[tuple[np.ndarray, np.ndarray]]:
    """ropls' cross-validation segments: sample i (0-based) is left out in segment ``i % n_folds``."""
    if not 2 <= n_folds <= n_samples:
        raise ConfigError(f"cv_folds must be between 2 and the number of samples ({n_samples}), got {n_folds}")
    idx = np.arange(n_samples)
    return [(idx[idx % n_folds != k], idx[idx % n_folds == k]) for k in range(n_folds)]


def _check_binary(y: np.ndarray, n_samples: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ConfigError(f"y must be a vector of {n_samples} labels, got shape {y.shape}")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ConfigError(f"y must hold 0/1 class labels (1 = high activity), got values {sorted(values)[:5]}")
    if len(values) < 2:
        raise ConfigError("y holds a single class; OPLS-DA needs both classes")
    return y.astype(float)


# --------------------------------------------------------------------------------------------------------------
# Core: NIPALS OPLS on stacked models (columns), with implicit deflation
# --------------------------------------------------------------------------------------------------------------
@dataclass
class _Level:
    """Per-level state for every stacked model column (n rows, p features, M columns)."""

    t: np.ndarray  # (n, M) predictive scores of all rows (left-out rows deflated by the model's own comps)
    c: np.ndarray  # (M,) y weight
    w: np.ndarray  # (p, M) predictive weights (unit norm)
    p: np.ndarray  # (p, M) predictive loadings
    yhat: np.ndarray  # (n, M) fitted/predicted scaled response, t * c


def _opls_levels(Xs: np.ndarray, Ys: np.ndarray, train: np.ndarray) -> Iterator[tuple[_Level, list[np.ndarray]]]:
    """Yield OPLS level 0, 1, 2, ... (that many orthogonal components removed) for every column at once.

    ``Ys`` (n, M) is the scaled response per column and ``train`` (n, M) its training rows. Column m is the
    model fitted on rows ``train[:, m]`` of the globally scaled ``Xs``; its left-out rows are predicted after
    removing the model's own orthogonal components from them, as ropls' cross-validation does. After a level
    is yielded, the next orthogonal component is extracted and the generator yields the next level; the
    second item yielded is the list of orthogonal components ``(t_o (n, M), p_o (p, M), w_o (p, M))``
    removed so far.
    """
    mask = train.astype(float)
    ym = Ys * mask
    xty = Xs.T @ ym  # (p, M): X'y on each column's training rows
    t_orth: list[np.ndarray] = []  # (n, M) each, all rows
    p_orth: list[np.ndarray] = []  # (p, M) each
    w_orth: list[np.ndarray] = []

    def xt_dot(v_masked: np.ndarray) -> np.ndarray:
        """E' v for training-masked v: X'v minus the removed components' share."""
        out = Xs.T @ v_masked
        for to, po in zip(t_orth, p_orth, strict=True):
            out -= po * np.einsum("nm,nm->m", to, v_masked)
        return out

    def x_dot(v: np.ndarray) -> np.ndarray:
        """E v on all rows."""
        out = Xs @ v
        for to, po in zip(t_orth, p_orth, strict=True):
            out -= to * np.einsum("pm,pm->m", po, v)
        return out

    while True:
        w = xty.copy()
        for to, po in zip(t_orth, p_orth, strict=True):
            w -= po * np.einsum("nm,nm->m", to, ym)
        w_norm = np.linalg.norm(w, axis=0)
        if np.any(w_norm <= 0):
            raise ConfigError("X carries no variation along the response; OPLS-DA cannot be fitted")
        w /= w_norm
        t = x_dot(w)
        tt = np.einsum("nm,nm->m", t * mask, t)
        c = np.einsum("nm,nm->m", ym, t) / tt
        p = xt_dot(t * mask) / tt
        yield _Level(t=t, c=c, w=w, p=p, yhat=t * c), list(zip(t_orth, p_orth, w_orth, strict=True))

        wo = p - w * np.einsum("pm,pm->m", w, p)
        wo_norm = np.linalg.norm(wo, axis=0)
        if np.any(wo_norm <= np.sqrt(_EPS) * np.linalg.norm(p, axis=0)):
            raise ConfigError("no orthogonal variation left in X; use fewer orthogonal components")
        wo /= wo_norm
        to = x_dot(wo)
        tot = np.einsum("nm,nm->m", to * mask, to)
        po = xt_dot(to * mask) / tot
        t_orth.append(to)
        p_orth.append(po)
        w_orth.append(wo)


def _stack_columns(y_scaled: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Columns 0..k-1: the CV segments; column k: the full fit. Returns (Ys, train) of shape (n, k+1)."""
    n = y_scaled.shape[0]
    k = len(folds)
    train = np.ones((n, k + 1), dtype=bool)
    for j, (_, test) in enumerate(folds):
        train[test, j] = False
    return np.repeat(y_scaled[:, None], k + 1, axis=1), train


def _level_stats(level: _Level, Ys: np.ndarray, train: np.ndarray, ssy: np.ndarray, n_models: int, k: int):
    """R2Y of each model's full column and Q2Y from its k CV columns. Columns are grouped per model (k+1 each)."""
    yhat = level.yhat.reshape(level.yhat.shape[0], n_models, k + 1)
    ys = Ys.reshape(Ys.shape[0], n_models, k + 1)
    test = ~train.reshape(train.shape[0], n_models, k + 1)
    press = np.sum(((ys[:, :, :k] - yhat[:, :, :k]) ** 2) * test[:, :, :k], axis=(0, 2))
    r2y = np.sum(yhat[:, :, k] ** 2, axis=0) / ssy
    return r2y, 1.0 - press / ssy


def _fit_observed(
    Xs: np.ndarray, y_scaled: np.ndarray, folds, n_orthogonal: int | str, max_orthogonal: int
) -> tuple[int, str, list[float], list[float], _Level, list, np.ndarray]:
    """Fit the observed labels level by level; choose n_orthogonal (ropls rules) when 'auto'."""
    k = len(folds)
    Ys, train = _stack_columns(y_scaled, folds)
    ssy = float(np.sum(y_scaled**2))
    auto = n_orthogonal == "auto"
    last = max_orthogonal if auto else int(n_orthogonal)
    r2y_levels: list[float] = []
    q2y_levels: list[float] = []
    levels: list[tuple[_Level, list]] = []
    selection = "fixed"
    stop_at: int | None = None  # first level that fails the rules (auto)
    for i, (level, orth) in enumerate(_opls_levels(Xs, Ys, train)):
        r2y, q2y = _level_stats(level, Ys, train, np.array([ssy]), 1, k)
        r2y_levels.append(float(r2y[0]))
        q2y_levels.append(float(q2y[0]))
        levels.append((level, orth))
        if auto:
            gain_r2y = r2y_levels[i] - (r2y_levels[i - 1] if i else 0.0)
            gain_q2y = q2y_levels[i] - (q2y_levels[i - 1] if i else 0.0)
            significant = gain_r2y >= _RULE_THRESHOLD and gain_q2y >= _RULE_THRESHOLD
            if not significant and stop_at is None:
                stop_at = i
            if stop_at is not None and i >= max(stop_at, 1):
                break
        if i >= last:
            break
    if auto:
        if stop_at is None:
            n_orth = last
            selection = f"auto: reached the maximum of {last} orthogonal components with every level significant"
        elif stop_at == 0:
            n_orth = 1
            selection = (
                "fallback: the predictive component is not significant (R2Y or Q2Y gain < 0.01; ropls builds no "
                "model); one orthogonal component kept"
            )
        elif stop_at == 1:
            n_orth = 1
            selection = (
                "fallback: the first orthogonal component is not significant (ropls builds no model); "
                "one orthogonal component kept"
            )
        else:
            n_orth = stop_at - 1
            selection = "auto"
    else:
        n_orth = int(n_orthogonal)
    level, orth = levels[n_orth]
    y_cv = np.zeros_like(y_scaled)
    for j, (_, test) in enumerate(folds):
        y_cv[test] = level.yhat[test, j]
    return n_orth, selection, r2y_levels, q2y_levels, level, orth, y_cv


def _permutation_stats(
    Xs: np.ndarray, y_scaled: np.ndarray, folds, n_orth: int, permutations: int, rng: np.random.Generator
) -> PermutationResult:
    """R2Y and Q2Y with ``n_orth`` orthogonal components for ``permutations`` label permutations."""
    n, p = Xs.shape
    k = len(folds)
    ssy = float(np.sum(y_scaled**2))
    perms = np.stack([rng.permutation(n) for _ in range(permutations)]) if permutations else np.empty((0, n), int)
    # memory per stacked column: stored p_o/w_o (p) and t_o (n) per level plus a few work vectors
    per_column = 8 * (p + n) * (2 * n_orth + 6)
    batch = max(1, min(permutations, _PERM_BATCH_BYTES // (per_column * (k + 1)))) if permutations else 1
    r2y_all = np.empty(permutations)
    q2y_all = np.empty(permutations)
    for start in range(0, permutations, batch):
        idx = perms[start : start + batch]
        b = idx.shape[0]
        y_perm = y_scaled[idx].T  # (n, b)
        Ys = np.repeat(y_perm, k + 1, axis=1)  # (n, b*(k+1)), grouped per permutation
        _, train1 = _stack_columns(y_scaled, folds)
        train = np.tile(train1, (1, b))
        for i, (level, _) in enumerate(_opls_levels(Xs, Ys, train)):
            if i == n_orth:
                r2y, q2y = _level_stats(level, Ys, train, np.full(b, ssy), b, k)
                r2y_all[start : start + b] = r2y
                q2y_all[start : start + b] = q2y
                break
    y_int = y_scaled > 0
    similarity = (y_int[perms] == y_int[None, :]).mean(axis=1) if permutations else np.empty(0)
    return PermutationResult(r2y=r2y_all, q2y=q2y_all, similarity=similarity, orders=perms)


def oplsda(
    X: np.ndarray,
    y: np.ndarray,
    *,
    cv_folds: int = 7,
    permutations: int = 200,
    seed: int = 42,
    scale: Scale | str = "uv",
    n_orthogonal: int | Literal["auto"] = "auto",
    max_orthogonal: int = _MAX_ORTHOGONAL,
) -> OPLSDAResult:
    """OPLS-DA of the 0/1 labels ``y`` on ``X`` (n_samples, n_features), ropls-style (see the module doc).

    ``n_orthogonal="auto"`` picks the number of orthogonal components with ropls' rules (at least 1);
    an int fixes it (0 gives a one-component PLS-DA). ``permutations`` label permutations (seeded by
    ``seed``) give the p-values of R2Y and Q2Y; 0 skips the test (p-values are then NaN).
    Rows are used in the given order for the venetian-blind CV segments, as ropls does.
    """
    Xs, keep = scale_matrix(X, scale)
    n, p = Xs.shape
    yv = _check_binary(y, n)
    if permutations < 0:
        raise ConfigError(f"permutations must be >= 0, got {permutations}")
    max_dim = min(n, p) - 1
    if n_orthogonal == "auto":
        max_orthogonal = int(min(max_orthogonal, max_dim))
        if max_orthogonal < 1:
            raise ConfigError(f"OPLS needs at least 2 samples and 2 varying features, got X of shape {Xs.shape}")
    elif isinstance(n_orthogonal, int | np.integer) and not isinstance(n_orthogonal, bool):
        if not 0 <= n_orthogonal <= max_dim:
            raise ConfigError(f"n_orthogonal must be between 0 and {max_dim} for X of shape {Xs.shape}")
    else:
        raise ConfigError(f"n_orthogonal must be 'auto' or an integer, not {n_orthogonal!r}")
    folds = venetian_folds(n, cv_folds)
    y_mean = yv.mean()
    y_sd = yv.std(ddof=1)
    y_scaled = (yv - y_mean) / y_sd

    n_orth, selection, r2y_levels, q2y_levels, level, orth, y_cv = _fit_observed(
        Xs, y_scaled, folds, n_orthogonal, max_orthogonal
    )
    full = len(folds)  # index of the full-data column
    t_pred = level.t[:, full].copy()
    p_pred = level.p[:, full]
    t_orth = np.column_stack([to[:, full] for to, _, _ in orth[:n_orth]]) if n_orth else np.zeros((n, 0))
    p_orth = [po[:, full] for _, po, _ in orth[:n_orth]]
    ssx = float(np.sum(Xs**2))
    r2x_components = np.array(
        [float(t_pred @ t_pred) * float(p_pred @ p_pred) / ssx]
        + [float(t_orth[:, j] @ t_orth[:, j]) * float(p_orth[j] @ p_orth[j]) / ssx for j in range(n_orth)]
    )
    y_fitted = level.yhat[:, full] * y_sd + y_mean
    dof = n - (1 + 1 + n_orth)
    rmsee = float(np.sqrt(np.mean((yv - y_fitted) ** 2) * n / dof)) if dof > 0 else math.nan
    r2y = r2y_levels[n_orth]
    q2y = q2y_levels[n_orth]

    rng = np.random.default_rng(seed)
    permuted = _permutation_stats(Xs, y_scaled, folds, n_orth, permutations, rng)
    perm_r2y, perm_q2y = permuted.r2y, permuted.q2y
    if permutations:
        # a tiny tolerance so that a permutation reproducing the observed fit counts as ">="
        tol = 1e-10
        p_r2y = (int(np.sum(perm_r2y >= r2y - tol)) + 1) / (permutations + 1)
        p_q2y = (int(np.sum(perm_q2y >= q2y - tol)) + 1) / (permutations + 1)
    else:
        p_r2y = p_q2y = math.nan

    return OPLSDAResult(
        r2x=float(r2x_components.sum()),
        r2y=float(r2y),
        q2y=float(q2y),
        n_orthogonal=n_orth,
        permutation_p_r2y=p_r2y,
        permutation_p_q2y=p_q2y,
        permuted=permuted,
        t_pred=t_pred,
        t_orth=t_orth,
        r2x_components=r2x_components,
        r2y_levels=np.array(r2y_levels),
        q2y_levels=np.array(q2y_levels),
        rmsee=rmsee,
        y_fitted=y_fitted,
        y_cv=y_cv * y_sd + y_mean,
        selection=selection,
        scale=str(scale),
        cv_folds=cv_folds,
        n_features_used=int(keep.sum()),
        n_features_dropped=int((~keep).sum()),
    )
