"""Scores, intervals and paired tests that can decide between models scored on the same folds.

Repeated k-fold CV gives ``J = repeats x folds`` scores per model, but they are not independent (training sets
overlap), so a plain t interval is too narrow. We use the corrected resampled t statistic of Nadeau & Bengio
(2003, Machine Learning 52:239), as recommended by Bouckaert & Frank (2004) for repeated CV: the variance of
the mean is ``(1/J + n_test/n_train) * s^2`` instead of ``s^2 / J``, with ``J - 1`` degrees of freedom. The same
correction gives the interval of one model's mean and the paired test of two models on the same folds.

Five folds estimate the folds' SD poorly: on a small cohort two test accessions per fold give AUC 0 or 1 and folds
that all say 1 give "1.000-1.000", and on any cohort five folds that happen to agree (a fold SD of 0.006 where ~30
test accessions make ~0.06 the rule) give an interval narrower than the accessions can support. :func:`count_floor`
is the floor the labelled accessions allow whatever the folds say, applied to every family's interval: Newcombe's
score interval for an AUC from ``n_low`` x ``n_high`` pairs (2006, Stat Med 25:559, method 5), a Wilson score
interval for the other scores as proportions of the labelled accessions. On a small cohort the paired difference
of two families gets the floor their two floors allow (:func:`paired_floor`). Spearman's rho gets no Fisher-z interval
below :data:`SPEARMAN_MIN_PAIRS` pairs (an exact permutation p instead, :func:`spearman_p`), and the precision among
the top 10% none below :data:`TOP_MIN_K` accessions there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps
from sklearn.metrics import balanced_accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

from ms2img.training.fold_metrics import predict_labels

SCORES = ("auc", "balanced_accuracy", "mcc", "f1", "precision_top10")  # classification (labels.mode: classification)
TOP_SHARE = 0.10  # precision_top10: the share of accessions a lab follows up, ranked by P(high)
# precision_top10: per fold where every fold's top 10% holds this many labelled accessions, pooled where its top does
TOP_MIN_K = 5
SPEARMAN_MIN_PAIRS = 10  # no Fisher-z interval for Spearman's rho below this many pairs (Bonett & Wright 2000)
REGRESSION_SCORES = ("spearman", "rmse", "r2")  # regression (labels.mode: regression), in the assay's units
BOUNDS = {
    "auc": (0.0, 1.0),
    "balanced_accuracy": (0.0, 1.0),
    "mcc": (-1.0, 1.0),
    "f1": (0.0, 1.0),
    "precision_top10": (0.0, 1.0),
    "spearman": (-1.0, 1.0),
    "rmse": (0.0, math.inf),
    "r2": (-math.inf, 1.0),
}
PRIMARY = {"classification": "auc", "regression": "spearman"}  # the score that selects and promotes a family
CHANCE = {"auc": 0.5, "spearman": 0.0}  # what a model that knows nothing scores, in expectation
LABELS = {
    "auc": "AUC",
    "spearman": "Spearman rho",
    "rmse": "RMSE",
    "r2": "R2",
    "precision_top10": "precision in top 10%",
}


def scores_of(mode: str) -> tuple[str, ...]:
    """The per-fold scores of a ``labels.mode``: one vocabulary for metrics files, MLflow, cards and the report."""
    return REGRESSION_SCORES if mode == "regression" else SCORES


def youden_threshold(y_true: np.ndarray, prob: np.ndarray) -> float:
    """The probability cut-off that maximises balanced accuracy (Youden's J) on ``prob``: the middle of the best
    plateau. Exact on the rows given, unstable on new ones (:func:`choose_threshold`)."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=float)
    if len(np.unique(y)) < 2:
        return 0.5
    cuts = np.unique(p)
    mids = np.concatenate([[cuts[0] - 1e-6], (cuts[1:] + cuts[:-1]) / 2, [cuts[-1] + 1e-6]])
    pos, neg = y == 1, y == 0
    tpr = np.array([(p[pos] > c).mean() for c in mids])
    tnr = np.array([(p[neg] <= c).mean() for c in mids])
    j = tpr + tnr
    best = np.flatnonzero(j == j.max())
    return float(mids[best[len(best) // 2]])  # the middle of the best plateau


def choose_threshold(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Every family's decision cut-off: where a class-balanced logistic regression of the label on ``logit(prob)``
    crosses 1/2, ``prob`` being the training rows' held-out predictions.

    A fixed 0.5 is wrong for imbalanced classes and for models whose probabilities are not calibrated (an RF's
    vote share, a CNN trained with class weights); the cut-off is a model parameter, chosen without the test fold.
    Why not Youden's J (:func:`youden_threshold`): on a hundred-odd held-out rows whose classes barely overlap the
    best plateau is wide and its middle moves from fold to fold (the CNN's thresholds had an SD of 0.07-0.34 over 5
    folds of four development cohorts); the logistic crossing, the balanced-accuracy rule under a logistic model,
    is moved a little by every row and decided by none (SD 0.03-0.12), and the CNN's test balanced accuracy rose
    by 0.012-0.032 per cohort (``benchmarks/thresholds.py``: both rules on the same fitted models; README).
    Falls back to Youden's J when one class is missing or the predictions do not rise with the label.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y_true).astype(int)
    raw = np.asarray(prob, dtype=float)
    p = np.clip(raw, 1e-3, 1 - 1e-3)  # a vote share of 0 or 1 stays finite in logit
    if len(np.unique(y)) < 2 or np.ptp(p) == 0:  # (the fallback sees the predictions unclipped: 1e-5 < 1e-4)
        return youden_threshold(y, raw)
    z = np.log(p / (1 - p)).reshape(-1, 1)
    fit = LogisticRegression(class_weight="balanced", C=1e4).fit(z, y)
    slope, intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if not slope > 0:
        return youden_threshold(y, raw)
    return float(1.0 / (1.0 + np.exp(intercept / slope)))


def withheld_top(k: int, note: str = "") -> str:
    """How a withheld precision in the top 10% reads (card, report): why, with the count (and ``note``)."""
    return f"n/a (top 10% is {k} accession{'s' if k != 1 else ''}{'; ' + note if note else ''})"


def precision_at_top(y_true: Sequence[int], prob: Sequence[float], share: float = TOP_SHARE) -> tuple[float, int]:
    """``(precision, k)``: the share of truly high (1) among the ``k = ceil(share x n)`` accessions with the highest
    P(high): what a lab that follows up the top of the ranking finds. NaN for none. Accessions tied at the cut
    count by their expected share (a random pick among the tie), so the rows' order cannot move the score (a
    forest's votes and the image ensemble's ranks tie often)."""
    y, p = np.asarray(y_true).astype(int).ravel(), np.asarray(prob, dtype=float).ravel()
    if y.size == 0:
        return float("nan"), 0
    p = np.where(np.isnan(p), -np.inf, p)  # no probability: ranked last, never followed up
    k = max(1, math.ceil(share * y.size))
    cut = np.sort(p)[::-1][k - 1]
    above, tied = p > cut, p == cut
    hits = y[above].sum() + (k - above.sum()) * y[tied].mean()
    return float(hits / k), k


def fold_scores(y_true: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    """AUC (threshold-free) and balanced accuracy, MCC, F1 at the model's own threshold for one test fold, and the
    precision among its top 10% by P(high) (threshold-free, :func:`precision_at_top`): NaN when that top holds fewer
    than :data:`TOP_MIN_K` accessions, as it does in a fold of fewer than 41 (the pooled figure is the one to read)."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(prob, dtype=float)
    pred = predict_labels(p, threshold)
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    precision, k = precision_at_top(y, p)
    return {
        "auc": auc,
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "mcc": float(matthews_corrcoef(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "precision_top10": precision if k >= TOP_MIN_K else float("nan"),
    }


def regression_scores(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """Spearman rho, RMSE and R2 of predicted against measured values (one test fold, or pooled predictions).

    R2 is ``1 - SS_res / SS_tot`` about the fold's own mean (negative: worse than predicting that mean); NaN with
    fewer than two values or constant measured values, and rho NaN as :func:`spearman` says."""
    y, p = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    if y.size == 0:
        return {"spearman": float("nan"), "rmse": float("nan"), "r2": float("nan")}
    ss_res = float(((y - p) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "spearman": spearman(p, y),
        "rmse": math.sqrt(ss_res / y.size),
        "r2": 1.0 - ss_res / ss_tot if y.size >= 2 and ss_tot > 0 else float("nan"),
    }


def corrected_se(values: np.ndarray, test_train_ratio: float) -> float:
    """Standard error of the mean of ``J`` per-fold scores, corrected for overlapping training sets:
    ``sqrt((1/J + n_test/n_train) * s^2)`` (Nadeau & Bengio); 0 for fewer than two scores."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return 0.0
    return math.sqrt((1.0 / v.size + test_train_ratio) * float(v.var(ddof=1)))


def corrected_interval(
    values: Sequence[float], test_train_ratio: float, level: float = 0.95, bounds: tuple[float, float] | None = None
) -> dict[str, float]:
    """Mean, SD and the corrected resampled t interval of per-fold scores (NaN folds ignored), clipped to the
    score's range (``bounds``) when given."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    j = v.size
    if j == 0:
        return {"mean": float("nan"), "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    mean = float(v.mean())
    if j < 2:
        return {"mean": mean, "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    sd = float(v.std(ddof=1))
    se = corrected_se(v, test_train_ratio)
    t = float(sps.t.ppf(0.5 + level / 2, j - 1))
    lo, hi = mean - t * se, mean + t * se
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"mean": mean, "sd": sd, "ci_low": lo, "ci_high": hi}


def proportion_interval(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` units (never zero width for n > 0)."""
    if not np.isfinite(p) or n < 1:
        return float("nan"), float("nan")
    p = min(max(float(p), 0.0), 1.0)
    z = float(sps.norm.ppf(0.5 + level / 2))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def auc_interval(auc: float, n_low: int, n_high: int, level: float = 0.95) -> tuple[float, float]:
    """Newcombe's score interval for an AUC from ``n_low`` negatives and ``n_high`` positives (method 5: the
    Hanley-McNeil variance with both counts set to their mean, inverted as a score test, so an AUC of 1.000 from
    3 + 3 accessions gives 0.50-1.00, not 1.00-1.00)."""
    if not np.isfinite(auc) or n_low < 1 or n_high < 1:
        return float("nan"), float("nan")
    z2 = float(sps.norm.ppf(0.5 + level / 2)) ** 2
    half_n = (n_low + n_high) / 2.0
    theta = np.linspace(0.0, 1.0, 20001)
    var = theta * (1 - theta) / (n_low * n_high) * (2 * half_n - 1 - 3 * (half_n - 1) / ((2 - theta) * (1 + theta)))
    inside = (auc - theta) ** 2 <= z2 * np.maximum(var, 0.0) + 1e-12
    accepted = theta[inside]
    lo = float(min(accepted.min(), auc)) if accepted.size else float(auc)
    hi = float(max(accepted.max(), auc)) if accepted.size else float(auc)
    return lo, hi


def count_floor(score: str, mean: float, n_low: int, n_high: int, level: float = 0.95) -> tuple[float, float]:
    """The narrowest interval ``n_low`` + ``n_high`` labelled accessions allow for ``score`` at ``mean`` (the
    interval of one test set holding all of them; cross-validation cannot know more): AUC by
    :func:`auc_interval`, balanced accuracy and F1 as proportions of the accessions (Wilson), MCC on
    ``(MCC + 1) / 2``, Spearman's rho by :func:`spearman_interval` over all accessions (regression; below
    :data:`SPEARMAN_MIN_PAIRS` its whole range, -1 to 1: no interval the count supports is narrower; RMSE and R2 get
    no floor). An approximate floor, joined with the fold-based interval by :func:`widen`."""
    if score == "auc":
        return auc_interval(mean, n_low, n_high, level)
    if score == "spearman":
        if not np.isfinite(mean):
            return float("nan"), float("nan")
        out = spearman_interval(mean, n_low + n_high, level)
        return (out["ci_low"], out["ci_high"]) if np.isfinite(out["ci_low"]) else BOUNDS["spearman"]
    if score in ("rmse", "r2"):  # no floor from the count alone: the fold-based interval stands
        return float("nan"), float("nan")
    if score == "precision_top10":  # a proportion of the top 10% of the accessions
        return proportion_interval(mean, max(1, math.ceil(TOP_SHARE * (n_low + n_high))), level)
    if score == "mcc":
        lo, hi = proportion_interval((mean + 1) / 2, n_low + n_high, level)
        return 2 * lo - 1, 2 * hi - 1
    return proportion_interval(mean, n_low + n_high, level)


def widen(entry: Mapping[str, float], floor: tuple[float, float]) -> dict[str, float]:
    """``entry`` (mean, sd, ci_low, ci_high) with its interval at least as wide as ``floor``."""
    out = dict(entry)
    lo, hi = floor
    if np.isfinite(lo):
        out["ci_low"] = lo if not np.isfinite(out.get("ci_low", np.nan)) else min(out["ci_low"], lo)
    if np.isfinite(hi):
        out["ci_high"] = hi if not np.isfinite(out.get("ci_high", np.nan)) else max(out["ci_high"], hi)
    return out


def paired_floor(
    score: str, mean_a: float, mean_b: float, n_low: int, n_high: int, level: float = 0.95
) -> tuple[float, float]:
    """A floor for the interval of the difference ``a - b`` of two families from their own floors
    (:func:`count_floor` of each mean), combined by MOVER (Zou & Donner 2008, Stat Med 27:1693) as for
    independent estimates: conservative, as two families scored on the same accessions are positively correlated
    (the paired form needs that correlation, which a handful of accessions cannot estimate):
    ``d - sqrt((a - lo_a)^2 + (hi_b - b)^2)`` to ``d + sqrt((hi_a - a)^2 + (b - lo_b)^2)``, clipped to the
    difference's range. Two families at AUC 1.000 on 3 + 3 accessions: -0.50 to
    +0.50, not 0.000 to 0.000. NaN when either floor is (no floor for the score)."""
    lo_a, hi_a = count_floor(score, mean_a, n_low, n_high, level)
    lo_b, hi_b = count_floor(score, mean_b, n_low, n_high, level)
    if not np.isfinite([lo_a, hi_a, lo_b, hi_b]).all():
        return float("nan"), float("nan")
    d, span = mean_a - mean_b, BOUNDS[score][1] - BOUNDS[score][0]
    lo, hi = d - math.hypot(mean_a - lo_a, hi_b - mean_b), d + math.hypot(hi_a - mean_a, mean_b - lo_b)
    return max(lo, -span), min(hi, span)


def corrected_paired_test(
    a: Sequence[float],
    b: Sequence[float],
    test_train_ratio: float,
    level: float = 0.95,
    *,
    cohort: tuple[int, int] | None = None,
    score: str = "auc",
    counts: tuple[int, int] | None = None,
) -> dict[str, float]:
    """Paired corrected resampled t-test of ``a - b`` on the same folds: mean difference, interval, two-sided p.

    ``cohort`` (``n_low, n_high``, a small cohort): the interval is at least as wide as :func:`paired_floor` of the
    two means of ``score`` (folds that all agree would give a zero-width interval: 0.000 [0.000, 0.000] for two
    families at AUC 1.000 in every fold), and p uses the standard error that interval implies when it is larger
    (its half-width on the side facing 0 over the same t quantile: the floor is asymmetric near AUC 1), so p < 1 -
    ``level`` exactly where the interval excludes 0; no observed difference gives p = 1. ``counts`` (``n_low,
    n_high`` of any cohort): the same floor where every fold gives the same difference (a standard error of 0 would
    claim certainty: 0.000 [0.000, 0.000] for two families at AUC 1.000 on a large cohort too)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    out = corrected_interval(d, test_train_ratio, level)
    j = d.size
    se = corrected_se(d, test_train_ratio)
    if cohort is None and counts is not None and j and np.allclose(d, d.mean(), rtol=0.0, atol=1e-9):  # SE ~ 0
        cohort = counts
    if cohort is not None and j:
        out = widen(out, paired_floor(score, float(a[ok].mean()), float(b[ok].mean()), *cohort, level))
        if j >= 2 and np.isfinite(out["ci_low"]) and np.isfinite(out["ci_high"]):
            t = float(sps.t.ppf(0.5 + level / 2, j - 1))
            toward_zero = out["mean"] - out["ci_low"] if out["mean"] >= 0 else out["ci_high"] - out["mean"]
            se = max(se, toward_zero / t)  # the floor is asymmetric: the side facing 0 decides, as the interval does
    if j < 2 or se == 0 or not np.isfinite(se):
        p = 1.0 if j and np.allclose(d, 0) else float("nan")
    else:
        p = float(2 * sps.t.sf(abs(out["mean"] / se), j - 1))
    return {"diff": out["mean"], "ci_low": out["ci_low"], "ci_high": out["ci_high"], "p_value": p, "n_folds": j}


def spearman(prob: Sequence[float], values: Sequence[float]) -> float:
    """Rank correlation of the finite pairs (NaN with fewer than 3 or a constant side): out-of-fold probability
    against the raw assay value over all accessions is the paper's Fig 3A, made honest."""
    p, v = np.asarray(prob, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(p) & np.isfinite(v)
    if ok.sum() < 3 or np.ptp(p[ok]) == 0 or np.ptp(v[ok]) == 0:
        return float("nan")
    return float(sps.spearmanr(p[ok], v[ok]).statistic)


def spearman_interval(rho: float, n: int, level: float = 0.95) -> dict[str, float]:
    """Rho with its Fisher-z interval over ``n`` pairs, ``tanh(atanh(rho) -+ z * sqrt((1 + rho^2 / 2) / (n - 3)))``
    (Bonett & Wright 2000, Psychometrika 65:23: Spearman's larger variance than Pearson's, growing with rho, where
    Fieller's constant 1.06 is too narrow above |rho| ~ 0.8); NaN bounds below :data:`SPEARMAN_MIN_PAIRS` pairs,
    where they do not recommend the normal approximation and it overclaims: rho 0.878 over 6 accessions with a
    yes/no activity gave 0.20 to 0.99, while an exact permutation test of it gives p = 0.1 (:func:`spearman_p`).
    ``n`` says why when printed."""
    out = {"mean": float(rho), "ci_low": float("nan"), "ci_high": float("nan"), "n": int(n)}
    if not np.isfinite(rho) or n < SPEARMAN_MIN_PAIRS:
        return out
    z = float(sps.norm.ppf(0.5 + level / 2))
    half = z * math.sqrt((1.0 + float(rho) ** 2 / 2.0) / (n - 3))
    centre = math.atanh(float(np.clip(rho, -1 + 1e-12, 1 - 1e-12)))  # |rho| = 1: the interval closes on it
    out["ci_low"], out["ci_high"] = math.tanh(centre - half), math.tanh(centre + half)
    return out


def spearman_p(prob: Sequence[float], values: Sequence[float], seed: int = 0) -> float:
    """Two-sided p of :func:`spearman` over the finite pairs by the rule ``ms2img explain --method correlation``
    uses (:func:`ms2img.permutation.correlation_p`: permutations of the values up to 30 pairs, the t distribution
    above). NaN where rho is."""
    from ms2img.permutation import correlation_p

    p, v = np.asarray(prob, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(p) & np.isfinite(v)
    if not np.isfinite(spearman(p[ok], v[ok])):
        return float("nan")
    return float(correlation_p(p[ok], v[ok], seed=seed, ranks=True)[1][0])


def _spearman_entry(prob: Sequence[float], values: Sequence[float], level: float) -> dict[str, float]:
    """The pooled rho entry: value, interval (NaN bounds on few pairs), ``n`` pairs and the permutation ``p_value``."""
    p, v = np.asarray(prob, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    rho = spearman_interval(spearman(p, v), int((np.isfinite(p) & np.isfinite(v)).sum()), level)
    return {"value": rho["mean"], "ci_low": rho["ci_low"], "ci_high": rho["ci_high"], "n": rho["n"],
            "p_value": spearman_p(p, v)}  # fmt: skip


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN and counts for nothing): the paired tests
    of an assay's families are 15 comparisons for six families, and about one in twenty is below 0.05 by chance."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return [float(v) for v in out]


def bootstrap_interval(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    a: Sequence[float],
    b: Sequence[float],
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(a, b)`` over paired resamples of the units (seeded: same numbers every
    run); resamples where the statistic is undefined (NaN) are dropped."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = a.size
    if n < 2:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, n, (int(n_boot), n))
    boots = np.array([statistic(a[i], b[i]) for i in idx], dtype=float)
    boots = boots[np.isfinite(boots)]
    if boots.size < 2:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    return float(lo), float(hi)


def pooled_regression(
    y_true: Sequence[float], y_pred: Sequence[float], level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Spearman, RMSE and R2 of all out-of-fold predictions pooled (one per accession), each with an interval:
    rho by :func:`spearman_interval` (with ``n`` and its permutation ``p_value``), RMSE and R2 by
    :func:`bootstrap_interval` over the accessions."""
    y, p = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], p[ok]
    point = regression_scores(y, p)
    out = {"spearman": _spearman_entry(p, y, level)}
    for score in ("rmse", "r2"):
        lo, hi = bootstrap_interval(lambda t, q, s=score: regression_scores(t, q)[s], y, p, n_boot, seed, level)
        out[score] = {"value": point[score], "ci_low": lo, "ci_high": hi}
    return out


def pooled_classification(
    labels: Sequence[int], prob: Sequence[float], values: Sequence[float], level: float = 0.95
) -> dict[str, dict[str, float]]:
    """Scores a lab acts on, over every accession's out-of-fold P(high) pooled: Spearman's rho with the raw assay
    value (all accessions, middle band included; :func:`spearman_interval`, ``n`` pairs, permutation ``p_value``)
    and the precision among the top 10% of the labelled accessions (``labels`` 0/1; -1 left out) with its Wilson
    interval over those ``k``: NaN below :data:`TOP_MIN_K` (2 test accessions per fold and 6 in all make "the top
    10%" one accession, whose 1.000 says nothing), ``k`` saying why."""
    y, p, v = (np.asarray(a, dtype=float).ravel() for a in (labels, prob, values))
    scored = (y == 0) | (y == 1)
    precision, k = precision_at_top(y[scored], p[scored])
    precision = precision if k >= TOP_MIN_K else float("nan")
    lo, hi = proportion_interval(precision, k, level)
    return {
        "spearman": _spearman_entry(p, v, level),
        "precision_top10": {"value": precision, "ci_low": lo, "ci_high": hi, "k": k},
    }


def select_winner(
    fold_scores: Mapping[str, Sequence[float]],
    test_train_ratio: float,
    simplicity: Mapping[str, int],
    exclude: Sequence[str] = (),
    metric: str = "auc",
    cohort: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The family to serve: the best mean per-fold ``metric`` (AUC; Spearman's rho in regression), unless a simpler
    family is within one corrected standard error.

    Ties go to the simpler, faster model (``simplicity``: lower is simpler); every paired comparison with the
    best is returned so the choice can be audited. Families in ``exclude`` (degenerate: one class, or constant
    predictions) never win, whatever their score; when every family is excluded there is no winner (``winner``
    None). One rule for every metric: higher is better. ``cohort``: as in :func:`corrected_paired_test` (the
    comparisons' intervals floored on a small cohort; the tie rule keeps the folds' own standard error).
    """
    name = LABELS.get(metric, metric)
    excluded = [f for f in fold_scores if f in set(exclude)]
    fold_scores = {f: v for f, v in fold_scores.items() if f not in set(exclude)}
    if not fold_scores:
        return {
            "winner": None,
            "best": None,
            "metric": metric,
            "reason": f"every family is degenerate (a single class or constant predictions): {', '.join(excluded)}",
            "ranking": [],
            "paired_with_best": {},
            "excluded": excluded,
        }
    means = {f: float(np.nanmean(v)) if np.isfinite(v).any() else -math.inf for f, v in
             ((f, np.asarray(v, float)) for f, v in fold_scores.items())}  # fmt: skip
    best = max(means, key=lambda f: (means[f], -simplicity.get(f, 99)))
    paired = {
        f: corrected_paired_test(fold_scores[best], fold_scores[f], test_train_ratio, cohort=cohort, score=metric)
        for f in fold_scores
        if f != best
    }
    ties = [best]
    for f, t in paired.items():
        d = np.asarray(fold_scores[best], float) - np.asarray(fold_scores[f], float)
        if t["diff"] <= corrected_se(d[np.isfinite(d)], test_train_ratio):
            ties.append(f)
    winner = min(ties, key=lambda f: (simplicity.get(f, 99), -means[f]))
    if winner == best:
        reason = f"{best} has the best mean {name} ({means[best]:.3f})"
        if len(ties) > 1:
            reason += f"; within one standard error: {', '.join(f for f in ties if f != best)} (not simpler)"
    else:
        reason = (
            f"{winner} ({name} {means[winner]:.3f}) is within one corrected standard error of the best, {best} "
            f"({name} {means[best]:.3f}, p = {paired[winner]['p_value']:.2f}), and simpler"
        )
    ranking = sorted(means, key=lambda f: (-means[f], simplicity.get(f, 99)))
    bias = selection_bias(fold_scores, winner)
    if len(fold_scores) > 1 and np.isfinite(bias):
        reason += (
            f"; chosen among {len(fold_scores)} families on these folds, its mean is optimistic by about {bias:.3f}"
            " (Tibshirani & Tibshirani 2009)"
        )
    if excluded:
        reason += f"; degenerate, never chosen: {', '.join(excluded)}"
    return {"winner": winner, "best": best, "metric": metric, "reason": reason, "ranking": ranking,
            "paired_with_best": paired, "excluded": excluded, "selection_bias": bias}  # fmt: skip


def selection_bias(fold_scores: Mapping[str, Sequence[float]], winner: str) -> float:
    """How much the winner's mean per-fold score overstates the score of the select-then-refit procedure: the mean
    over folds of the best family's score in that fold minus the winner's (Tibshirani & Tibshirani 2009, Ann. Appl.
    Stat. 3:822). The winner is the maximum of several noisy means, so its own mean is optimistic (a winner's
    curse); this estimate needs no nested CV, only the per-fold scores every family already has. 0 for one family;
    folds where the winner has no score (one class) are left out."""
    scores = np.vstack([np.asarray(v, float) for v in fold_scores.values()])
    own = np.asarray(fold_scores[winner], float)
    ok = np.isfinite(own)
    if not ok.any():
        return float("nan")
    best = np.where(np.isfinite(scores[:, ok]), scores[:, ok], -np.inf).max(axis=0)
    return float(np.mean(best - own[ok]))
