"""Thresholds, corrected resampled t intervals and paired tests, and the one-SE winner rule (ms2img.training.scores)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import balanced_accuracy_score

from ms2img.training.scores import (
    choose_threshold,
    corrected_interval,
    corrected_paired_test,
    fold_scores,
    select_winner,
    spearman,
    youden_threshold,
)

SIMPLICITY = {"rf-image": 0, "rf-cosine": 1, "rf-entropy": 2, "cnn": 3}


# ------------------------------------------------------------------------------------------- threshold


def _best_balanced_accuracy(y, p):
    """Brute force: the best balanced accuracy over every cut-off between observed probabilities."""
    cuts = np.unique(p)
    cands = np.concatenate([[cuts[0] - 1], (cuts[1:] + cuts[:-1]) / 2, [cuts[-1] + 1]])
    return max(balanced_accuracy_score(y, (p > c).astype(int)) for c in cands)


@pytest.mark.parametrize("seed", range(5))
def test_youden_threshold_maximises_balanced_accuracy(seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(30, int), np.ones(10, int)]  # imbalanced, so 0.5 is rarely the best cut
    p = np.clip(0.2 + 0.25 * y + rng.normal(0, 0.15, y.size), 0, 1)
    thr = youden_threshold(y, p)
    got = balanced_accuracy_score(y, (p > thr).astype(int))
    assert got == pytest.approx(_best_balanced_accuracy(y, p))
    assert got >= balanced_accuracy_score(y, (p > 0.5).astype(int))


def test_choose_threshold_separable_and_degenerate():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.9])
    thr = choose_threshold(y, p)
    assert 0.3 < thr < 0.35  # between the highest low and the lowest high
    assert choose_threshold([1, 1, 1], [0.2, 0.4, 0.6]) == 0.5  # one class: nothing to choose
    falling = choose_threshold([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])  # predictions against the label: Youden's cut
    assert falling == youden_threshold([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])


@pytest.mark.parametrize("p", [[1e-5, 2e-5, 5e-4, 9e-4], [0.9991, 0.9992, 0.9995, 0.9999]])
def test_choose_threshold_falls_back_on_the_predictions_as_given(p):
    """Saturated held-out predictions (a confident network) all clip to 1e-3 (or 0.999): the fallback must still
    see their order, not a tie that puts every row in one class."""
    y = [0, 0, 1, 1]
    thr = choose_threshold(y, p)
    assert thr == youden_threshold(y, p)
    assert balanced_accuracy_score(y, (np.asarray(p) > thr).astype(int)) == 1.0


def _overlapping(rng, n_low=90, n_high=30):
    """Held-out predictions of two overlapping classes: logit ~ N(-1, 1) for low, N(+1, 1) for high."""
    y = np.r_[np.zeros(n_low, int), np.ones(n_high, int)]
    return y, 1 / (1 + np.exp(-(2.0 * y - 1.0 + rng.normal(0, 1, y.size))))


def test_choose_threshold_is_the_balanced_crossing_and_steadier_than_youden():
    """Symmetric classes in logit space, 3:1 imbalanced: the balanced-accuracy optimum is logit 0 (p = 0.5) whatever
    the class sizes. Over resamples the logistic crossing stays near it; Youden's plateau middle wanders further."""
    rng = np.random.default_rng(0)
    logistic, youden = [], []
    for _ in range(40):
        y, p = _overlapping(rng)
        logistic.append(choose_threshold(y, p))
        youden.append(youden_threshold(y, p))
    assert abs(np.mean(logistic) - 0.5) < 0.05
    assert np.std(logistic) < 0.6 * np.std(youden)


def test_fold_scores_use_the_given_threshold():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.4, 0.8])
    at_half = fold_scores(y, p, 0.5)
    at_low = fold_scores(y, p, 0.35)
    assert at_half["auc"] == at_low["auc"] == 1.0
    assert at_half["balanced_accuracy"] == 0.75 and at_low["balanced_accuracy"] == 1.0
    assert at_low["mcc"] == pytest.approx(1.0) and at_low["f1"] == 1.0
    with pytest.warns(UserWarning):  # scikit-learn: a one-class fold
        assert math.isnan(fold_scores([1, 1], [0.2, 0.9], 0.5)["auc"])


# ------------------------------------------------------------------------------------------- intervals


def test_corrected_interval_is_nadeau_bengio():
    v = np.array([0.70, 0.80, 0.75, 0.90, 0.65, 0.85])
    ratio = 0.25  # 5-fold: n_test / n_train = 1/4
    out = corrected_interval(v, ratio)
    j, sd = v.size, v.std(ddof=1)
    se = math.sqrt((1 / j + ratio) * sd**2)
    t = sps.t.ppf(0.975, j - 1)
    assert out["mean"] == pytest.approx(v.mean()) and out["sd"] == pytest.approx(sd)
    assert out["ci_low"] == pytest.approx(v.mean() - t * se)
    assert out["ci_high"] == pytest.approx(v.mean() + t * se)
    naive = corrected_interval(v, 0.0)  # ratio 0 = the plain t interval, which is narrower
    assert naive["ci_high"] - naive["ci_low"] < out["ci_high"] - out["ci_low"]
    assert naive["ci_high"] == pytest.approx(v.mean() + t * sd / math.sqrt(j))


def test_corrected_interval_clips_to_bounds_and_ignores_nan():
    v = [0.99, 1.0, 0.9, 1.0, float("nan")]
    clipped = corrected_interval(v, 0.25, bounds=(0.0, 1.0))
    free = corrected_interval(v, 0.25)
    assert free["ci_high"] > 1.0 and clipped["ci_high"] == 1.0
    assert clipped["ci_low"] == pytest.approx(free["ci_low"])
    assert clipped["mean"] == pytest.approx(np.mean([0.99, 1.0, 0.9, 1.0]))  # NaN fold ignored
    low = corrected_interval([-0.9, -1.0, -0.5], 0.25, bounds=(-1.0, 1.0))
    assert low["ci_low"] == -1.0
    one = corrected_interval([0.7], 0.25)
    assert one["mean"] == 0.7 and math.isnan(one["sd"]) and math.isnan(one["ci_low"])
    assert math.isnan(corrected_interval([], 0.25)["mean"])


def test_paired_test_small_p_for_a_consistent_difference_and_one_for_identical():
    rng = np.random.default_rng(0)
    a = 0.85 + rng.normal(0, 0.02, 15)
    b = a - 0.10 + rng.normal(0, 0.01, 15)  # a beats b by ~0.1 in every fold
    res = corrected_paired_test(a, b, 0.25)
    assert res["diff"] == pytest.approx(np.mean(a - b))
    assert res["p_value"] < 1e-3
    assert res["ci_low"] > 0 and res["n_folds"] == 15
    d = a - b
    t = d.mean() / math.sqrt((1 / d.size + 0.25) * d.var(ddof=1))
    assert res["p_value"] == pytest.approx(2 * sps.t.sf(abs(t), d.size - 1))
    same = corrected_paired_test(a, a, 0.25)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    noisy = corrected_paired_test(a, a + rng.normal(0, 0.05, 15), 0.25)
    assert noisy["p_value"] > 0.05  # no real difference
    assert corrected_paired_test([0.8, np.nan, 0.7], [0.6, 0.5, 0.6], 0.25)["n_folds"] == 2


def test_spearman():
    assert spearman([0.1, 0.2, 0.3, 0.4], [1, 2, 3, 5]) == pytest.approx(1.0)
    assert spearman([0.4, 0.3, 0.2, 0.1], [1, 2, 3, 5]) == pytest.approx(-1.0)
    assert math.isnan(spearman([0.5, 0.5, 0.5], [1, 2, 3]))  # constant predictions


# ------------------------------------------------------------------------------------------- winner


def test_best_mean_wins_when_clearly_better():
    rng = np.random.default_rng(1)
    auc = {
        "rf-image": 0.70 + rng.normal(0, 0.01, 10),
        "cnn": 0.90 + rng.normal(0, 0.01, 10),
        "rf-cosine": 0.75 + rng.normal(0, 0.01, 10),
    }
    sel = select_winner(auc, 0.25, SIMPLICITY)
    assert sel["winner"] == sel["best"] == "cnn"
    assert sel["ranking"] == ["cnn", "rf-cosine", "rf-image"]
    assert set(sel["paired_with_best"]) == {"rf-image", "rf-cosine"}
    assert all(p["p_value"] < 0.01 for p in sel["paired_with_best"].values())
    assert sel["reason"].startswith(f"cnn has the best mean AUC ({np.mean(auc['cnn']):.3f})")
    assert "within one standard error" not in sel["reason"]


def test_simpler_family_within_one_se_wins_the_tie():
    base = 0.8 + np.random.default_rng(2).normal(0, 0.05, 10)
    wobble = np.array([0.02, -0.02] * 5)
    auc = {"cnn": base + 0.01, "rf-image": base + wobble}  # 0.01 behind, SE of the difference ~0.012
    d = auc["cnn"] - auc["rf-image"]
    assert d.mean() < np.sqrt((1 / 10 + 0.25) * d.var(ddof=1))
    sel = select_winner(auc, 0.25, SIMPLICITY)
    assert sel["best"] == "cnn" and sel["winner"] == "rf-image"
    assert sel["paired_with_best"]["rf-image"]["p_value"] > 0.05
    assert "rf-image" in sel["reason"] and "within one corrected standard error" in sel["reason"]
    assert "simpler" in sel["reason"] and "cnn" in sel["reason"]


def test_a_tie_with_a_less_simple_family_keeps_the_best():
    base = 0.8 + np.random.default_rng(3).normal(0, 0.05, 10)
    auc = {"rf-image": base + 0.01, "cnn": base + np.array([0.02, -0.02] * 5)}
    sel = select_winner(auc, 0.25, SIMPLICITY)
    assert sel["winner"] == sel["best"] == "rf-image"
    assert "within one standard error: cnn (not simpler)" in sel["reason"]


def test_a_simpler_family_outside_one_se_loses():
    base = 0.8 + np.random.default_rng(4).normal(0, 0.05, 10)
    auc = {"cnn": base + 0.05, "rf-image": base + np.array([0.005, -0.005] * 5)}
    sel = select_winner(auc, 0.25, SIMPLICITY)
    assert sel["winner"] == "cnn"


def test_equal_means_go_to_the_simpler_family():
    auc = {"cnn": [0.8, 0.9, 0.7], "rf-entropy": [0.8, 0.9, 0.7]}
    sel = select_winner(auc, 0.5, SIMPLICITY)
    assert sel["winner"] == "rf-entropy"


def test_ranking_breaks_ties_like_best():
    auc = {"cnn": [0.8, 0.9, 0.7], "rf-image": [0.8, 0.9, 0.7]}
    sel = select_winner(auc, 0.5, SIMPLICITY)
    assert sel["ranking"][0] == sel["best"] == "rf-image"


def test_precision_among_the_top_tenth_hand_computed():
    from ms2img.training.scores import pooled_classification, precision_at_top

    # 20 accessions: k = ceil(0.1 x 20) = 2; the two highest P(high) are a high (0.95) and a low (0.9): 0.5
    prob = np.linspace(0.0, 0.8, 20)
    prob[[3, 7]] = [0.95, 0.9]
    y = np.zeros(20, int)
    y[[3, 10, 19]] = 1
    assert precision_at_top(y, prob) == (0.5, 2)
    assert precision_at_top(np.r_[y, 0, 0, 0, 0, 0], np.r_[prob, np.zeros(5)])[1] == 3  # ceil(2.5)
    # a tie at the cut counts by its expected share, whatever the rows' order: top 2 of 20 = 0.95 (high) and one
    # of three tied at 0.9 (one high): (1 + 1/3) / 2
    tied = prob.copy()
    tied[[7, 10, 12]] = 0.9
    for order in (np.arange(20), np.arange(20)[::-1]):
        assert precision_at_top(y[order], tied[order]) == (pytest.approx(2 / 3), 2)
    # pooled: rho over every accession (middle -1 included), precision over the labelled ones only
    labels = np.array([1, 1, 0, 0, -1, 0, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.99, 0.3, 0.4, 0.35, 0.05, 0.15])
    values = np.array([90, 80, 10, 20, 50, 30, 40, 70, 5, 15])
    pooled = pooled_classification(labels, p, values)
    assert pooled["precision_top10"]["k"] == 1  # 0.99 is middle
    assert math.isnan(pooled["precision_top10"]["value"])  # 1 of 1 says nothing: below TOP_MIN_K, not 1.000
    assert math.isnan(pooled["precision_top10"]["ci_low"])
    assert pooled["spearman"]["value"] == pytest.approx(spearman(p, values))
    assert pooled["spearman"]["ci_low"] < pooled["spearman"]["value"] < pooled["spearman"]["ci_high"]


def test_holm_adjustment_steps_down_and_keeps_order():
    from ms2img.training.scores import holm_adjusted

    out = holm_adjusted([0.01, 0.04, 0.03, float("nan")])
    assert out[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(out[3])
    assert holm_adjusted([0.5, 0.6]) == [1.0, 1.0] and holm_adjusted([]) == []


def test_the_winners_optimism_is_the_mean_gap_to_each_folds_best():
    """Tibshirani & Tibshirani (2009): the winner's mean overstates select-then-refit by the mean, over folds, of the
    fold's best score minus the winner's; hand-computed on three families x four folds."""
    from ms2img.training.scores import select_winner, selection_bias

    folds = {"a": [0.9, 0.8, 0.9, 0.8], "b": [0.8, 0.9, 0.8, 0.7], "c": [0.7, 0.7, 0.95, np.nan]}
    assert selection_bias(folds, "a") == pytest.approx((0 + 0.1 + 0.05 + 0) / 4)
    assert selection_bias({"a": folds["a"]}, "a") == 0.0
    chosen = select_winner(folds, 0.25, {"a": 1, "b": 1, "c": 1})
    assert chosen["winner"] == "a" and chosen["selection_bias"] == pytest.approx(0.0375)
    assert "optimistic by about 0.037" in chosen["reason"] or "optimistic by about 0.038" in chosen["reason"]


def test_review_edges_of_the_new_scores():
    """A NaN probability is ranked last (it counted as a top hit); differences equal up to rounding (SE ~1e-17, not
    0) still get the floor on a large cohort (they read [0.040, 0.040], p 4e-31)."""
    from ms2img.training.scores import corrected_paired_test, precision_at_top

    assert precision_at_top([1, 0] + [0] * 18, [0.9, np.nan] + [0.1] * 18) == (0.5, 2)
    t = corrected_paired_test([0.8, 0.5, 0.3], [0.76, 0.46, 0.26], 0.25, counts=(40, 40))
    assert t["ci_high"] - t["ci_low"] > 0.05 and t["p_value"] > 1e-6
