"""Correlation p-values that few samples can support: one rule for ``ms2img explain --method correlation`` (every
feature against the activity) and training's Spearman rho of P(high) with the assay value.

With up to ``PERMUTATION_MAX_N`` samples p comes from permutations of the values over the samples: every distinct
ordering when there are at most ``EXACT_MAX_ORDERINGS`` (exact), else ``PERMUTATIONS`` seeded ones plus the
observed. A handful of samples with a near yes/no activity allows few orderings (six zeros and activities 8, 8, 8,
7: 840), so no p can be below 1/840, while the t distribution (which assumes normal data) says 5e-6. Above that
many samples the t distribution (n - 2 d.f., as ``scipy.stats.pearsonr`` / ``spearmanr``) is close enough and
permutations would cost minutes on 20,000 features. Rows are features (or one row of predictions); everything is
one matrix product.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

PERMUTATION_MAX_N = 30  # up to this many samples p comes from permutations of the values (module docstring)
EXACT_MAX_ORDERINGS = 40_320  # every distinct ordering up to 8! of them (8 samples, or more with tied values)
PERMUTATIONS = 9_999  # seeded random orderings (plus the observed one) beyond that: p >= 1 / 10,000


def pearson_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r, two-sided p) of every row of ``x`` (features x samples) against ``y``; constant rows give NaN."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    x_norm = np.sqrt(np.einsum("ij,ij->i", xc, xc))
    y_norm = float(np.sqrt(yc @ yc))
    scale = np.abs(x).max(axis=1) * np.sqrt(n)
    constant = x_norm <= 1e-12 * np.where(scale > 0, scale, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (xc @ yc) / (x_norm * y_norm)
    r = np.clip(r, -1.0, 1.0)
    r[constant] = np.nan
    return r, p_of_r(r, n)


def p_of_r(r: np.ndarray, n: int) -> np.ndarray:
    """Two-sided p of a correlation r from n pairs: Student t with n - 2 d.f. (= regularised incomplete beta)."""
    df = n - 2
    with np.errstate(invalid="ignore"):
        return special.betainc(df / 2.0, 0.5, np.clip(1.0 - np.square(r), 0.0, 1.0))


def orderings_count(y: np.ndarray) -> int:
    """How many distinct orderings the values of ``y`` have: ``n!`` over the factorial of each value's count."""
    import math

    counts = np.unique(np.asarray(y, dtype=np.float64), return_counts=True)[1]
    total = math.factorial(int(counts.sum()))
    for c in counts:
        total //= math.factorial(int(c))
    return total


def mirrored(y: np.ndarray) -> bool:
    """Whether the activity values are symmetric about their mean (3 inactive and 3 active at one value): then every
    ordering has a mirror, ``max + min - y``, with the same |r| against any feature, so an exact two-sided p is at
    least 2 over the orderings, not 1."""
    v = np.sort(np.asarray(y, dtype=np.float64))
    return bool(v[-1] > v[0]) and bool(np.allclose(v + v[::-1], v[0] + v[-1], rtol=0, atol=1e-9 * (v[-1] - v[0])))


def p_method(y: np.ndarray) -> str:
    """How :func:`correlation_p` computes p for the values ``y``, and the smallest p it can give."""
    n = len(y)
    if n > PERMUTATION_MAX_N:
        return "the t distribution (n - 2 d.f.)"
    total = orderings_count(y)
    if total <= EXACT_MAX_ORDERINGS:
        floor = (2 if mirrored(y) else 1) / total
        return f"permutation, all {total:,} distinct orderings of the activity values (no p below {floor:.2g})"
    return (
        f"permutation, {PERMUTATIONS:,} seeded orderings of the activity values and the observed one (no p below "
        f"{1 / (PERMUTATIONS + 1):.2g})"
    )


def distinct_orderings(y: np.ndarray, limit: int = EXACT_MAX_ORDERINGS) -> np.ndarray | None:
    """Every distinct ordering of the values of ``y`` (tied values swapped count once), ``(N, n)``; None when there
    are more than ``limit``. Built value by value from the positions left, never through all ``n!``."""
    import itertools

    if orderings_count(y) > limit:
        return None
    values, counts = np.unique(np.asarray(y, dtype=np.float64), return_counts=True)
    layouts: list[tuple[np.ndarray, tuple[int, ...]]] = [(np.empty(len(y), dtype=np.int64), tuple(range(len(y))))]
    for v, c in enumerate(counts):
        grown = []
        for layout, free in layouts:
            for chosen in itertools.combinations(free, int(c)):
                placed = layout.copy()
                placed[list(chosen)] = v
                grown.append((placed, tuple(i for i in free if i not in chosen)))
        layouts = grown
    return values[np.array([layout for layout, _ in layouts])]


def permutation_p(x: np.ndarray, y: np.ndarray, r: np.ndarray, seed: int = 0) -> np.ndarray:
    """Two-sided permutation p of each row's correlation ``r`` with ``y``: the share of orderings of ``y`` over the
    samples whose |r| reaches the row's (ties in a row kept as they are). Every distinct ordering when there are at
    most ``EXACT_MAX_ORDERINGS`` (exact), else ``PERMUTATIONS`` seeded ones plus the observed (:func:`p_method`
    says which). NaN r gives NaN p."""
    y = np.asarray(y, dtype=np.float64)
    orders = distinct_orderings(y)
    if orders is None:
        rng = np.random.default_rng(seed)
        orders = np.vstack([y, np.array([rng.permutation(y) for _ in range(PERMUTATIONS)])])
    oc = orders - orders.mean(axis=1, keepdims=True)
    oc /= np.sqrt(np.einsum("ij,ij->i", oc, oc))[:, None]  # every ordering has the same norm
    xc = np.asarray(x, dtype=np.float64) - np.asarray(x, dtype=np.float64).mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = xc / np.sqrt(np.einsum("ij,ij->i", xc, xc))[:, None]
    p = np.full(len(r), np.nan)
    chunk = max(1, 2**22 // len(orders))  # features per block: ~32 MB of null correlations at a time
    for start in range(0, len(r), chunk):
        part = slice(start, start + chunk)
        null = xc[part] @ oc.T
        np.abs(null, out=null)
        p[part] = (null >= np.abs(r[part])[:, None] - 1e-9).mean(axis=1)
    p[np.isnan(r)] = np.nan
    return p


def correlation_p(x: np.ndarray, y: np.ndarray, seed: int = 0, ranks: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(r, two-sided p) of every row of ``x`` against ``y`` by the rule of the module docstring (:func:`p_method`
    says which applies); ``ranks``: Spearman's rho (average ranks) instead of Pearson's r."""
    x, y = np.atleast_2d(np.asarray(x, dtype=np.float64)), np.asarray(y, dtype=np.float64)
    if ranks:
        x, y = stats.rankdata(x, axis=1), stats.rankdata(y)
    r, p = pearson_rows(x, y)
    if y.size <= PERMUTATION_MAX_N:
        p = permutation_p(x, y, r, seed)
    return r, p
