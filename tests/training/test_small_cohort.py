"""Honest small cohorts (issue 25, point 6): settings checked before training, naming them; "small cohort" said;
intervals a few accessions allow; a degenerate family never wins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ms2img.errors import ConfigError
from ms2img.models.family import SIMPLICITY
from ms2img.training.dataset import MIDDLE, AssayData, Protocol, cohort_protocol, repeated_folds
from ms2img.training.experiment import CVResult, degenerate_families, resolve_cohort_settings
from ms2img.training.scores import (
    SPEARMAN_MIN_PAIRS,
    TOP_MIN_K,
    auc_interval,
    corrected_paired_test,
    count_floor,
    fold_scores,
    paired_floor,
    pooled_classification,
    pooled_regression,
    proportion_interval,
    select_winner,
    spearman_interval,
    spearman_p,
    widen,
)

VALUES = np.array([12.5, 18.0, 15.2, 88.4, 81.9, 93.1])  # 3 low, 3 high after min-max scaling


def test_protocol_auto_fits_the_smallest_class_and_repeats_small_cohorts():
    p = cohort_protocol("heat", {"low": 3, "high": 3}, "auto", "auto")
    assert (p.folds, p.repeats, p.small_cohort) == (3, 4, True)
    assert "small cohort: 3 low / 3 high" in p.describe() and "3-fold CV x 4 repeats" in p.describe()
    big = cohort_protocol("heat", {"low": 25, "high": 30}, "auto", "auto")
    assert (big.folds, big.repeats, big.small_cohort) == (5, 1, False) and "small" not in big.describe()
    assert cohort_protocol("heat", {"low": 10, "high": 12}, 2, 1) == Protocol(2, 1, 10, 12, True)


@pytest.mark.parametrize(
    ("folds", "repeats", "said"),
    [
        (5, 1, r"cv.folds 5: assay heat has 3 low and 3 high .* set cv.folds: 3 \(or auto\)"),
        ("five", 1, "cv.folds must be a whole number or auto, got 'five'"),
        (1, 1, "cv.folds must be >= 2"),
        (3, 0, "cv.repeats must be >= 1"),
        (2.5, 1, "cv.folds must be a whole number"),
    ],
)
def test_protocol_settings_fail_naming_the_setting(folds, repeats, said):
    with pytest.raises(ConfigError, match=said):
        cohort_protocol("heat", {"low": 3, "high": 3}, folds, repeats)


def test_one_accession_in_a_class_cannot_be_cross_validated():
    with pytest.raises(ConfigError, match="1 low and 5 high labelled accessions; cross-validation needs at least 2"):
        cohort_protocol("heat", {"low": 1, "high": 5}, "auto", "auto")


def test_auc_interval_is_never_a_point_on_a_few_accessions():
    lo, hi = auc_interval(1.0, 3, 3)
    assert 0.45 < lo < 0.55 and hi == 1.0  # Newcombe method 5: 0.50-1.00 from 3 + 3
    assert auc_interval(1.0, 50, 50)[0] > 0.9  # shrinks with the cohort
    lo, hi = auc_interval(0.5, 3, 3)
    assert lo < 0.2 and hi > 0.8
    assert proportion_interval(1.0, 6)[0] == pytest.approx(6 / (6 + 1.959964**2), rel=1e-4)  # Wilson at p = 1
    mcc = count_floor("mcc", 1.0, 3, 3)
    assert -1 <= mcc[0] < 0.5 and mcc[1] == 1.0
    entry = widen({"mean": 1.0, "sd": 0.0, "ci_low": 1.0, "ci_high": 1.0}, (0.5, 1.0))
    assert entry == {"mean": 1.0, "sd": 0.0, "ci_low": 0.5, "ci_high": 1.0}
    assert (
        widen({"mean": 1.0, "sd": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}, (0.5, 1.0))["ci_low"]
        == 0.5
    )


def test_a_degenerate_family_never_wins():
    auc = {"rf-image": [1.0, 1.0, 1.0], "cnn": [0.9, 1.0, 0.8]}
    sel = select_winner(auc, 0.5, SIMPLICITY, exclude=["rf-image"])
    assert sel["winner"] == "cnn" and "degenerate, never chosen: rf-image" in sel["reason"]
    assert select_winner(auc, 0.5, SIMPLICITY)["winner"] == "rf-image"  # what happened before
    none = select_winner(auc, 0.5, SIMPLICITY, exclude=["rf-image", "cnn"])
    assert none["winner"] is None and "every family is degenerate" in none["reason"]


def assay_data(images_per_accession: int = 1, features: bool = True) -> AssayData:
    n = len(VALUES)
    rows, k = [], 0
    for _ in range(n):
        rows.append(np.arange(k, k + images_per_accession))
        k += images_per_accession
    data = AssayData(
        assay="heat",
        accessions=np.array([f"Hi{i:02d}" for i in range(n)]),
        values=VALUES,
        images=None,  # not needed to check settings
        image_rows=rows,
        features={"cosine": pd.DataFrame(np.ones((n, 4)))} if features else {},
    )
    data.protocol = cohort_protocol("heat", {"low": 3, "high": 3}, "auto", "auto")
    data.folds = repeated_folds(VALUES, data.protocol.folds, data.protocol.repeats, seed=1)
    return data


def params(split, oplsda, cross_fit: bool = False) -> dict:
    return {
        "cnn": {"cross_fit": cross_fit},
        "tune": {"validation_split": split},
        "baselines": {"oplsda_cv_folds": oplsda, "rf_trees": [10]},
    }


def test_auto_settings_are_decided_from_the_cohort_before_training():
    out = resolve_cohort_settings(assay_data(), params("auto", "auto"), ["cnn", "rf-image"])
    assert out["tune"]["validation_split"] == 0.5  # 2 + 2 training images: one per class on each side
    assert out["baselines"]["oplsda_cv_folds"] == 6 and out["baselines"]["rf_trees"] == [10]
    out = resolve_cohort_settings(assay_data(images_per_accession=4), params("auto", 3), ["cnn"])
    assert out["tune"]["validation_split"] == 0.5  # replicate images stay together: accessions count, not images
    assert out["baselines"]["oplsda_cv_folds"] == 3
    untouched = params(0.25, 7)
    resolve_cohort_settings(assay_data(features=False), untouched, ["rf-image"])  # no CNN, no OPLS-DA: unused
    assert untouched == params(0.25, 7)


@pytest.mark.parametrize(
    ("split", "oplsda", "said"),
    [
        (0.25, "auto", (r"tune.validation_split 0.25: the smallest training part of assay heat has 4 accessions .* "
                        r"set tune.validation_split: 0.5 \(or auto\)")),
        ("half", "auto", "tune.validation_split must be a fraction in \\(0, 1\\) or auto, got 'half'"),
        ("auto", 7, (r"baselines.oplsda_cv_folds 7: OPLS-DA of assay heat runs on 6 labelled accessions; set "
                     r"it between 2 and 6 \(or auto\)")),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_fail_naming_the_setting(split, oplsda, said):
    with pytest.raises(ConfigError, match=said):
        resolve_cohort_settings(assay_data(), params(split, oplsda), ["cnn"])


def test_cross_fitted_cnn_is_not_refused_for_a_split_it_does_not_use():
    """cnn.cross_fit: true trains its members on inner folds; 2 + 2 training accessions are enough for them, so a
    tune.validation_split that a single inner split could not use is no reason to refuse the cohort."""
    out = resolve_cohort_settings(assay_data(), params(0.25, "auto", cross_fit=True), ["cnn"])
    assert out["tune"]["validation_split"] == 0.25


def cv_result(probabilities: dict[str, list[float]], repeats: int = 2) -> CVResult:
    """A small-cohort CV result: 6 accessions (3 low, 3 high), 3 folds of 2 per repeat, threshold 0.5."""
    labels = [0, 0, 0, 1, 1, 1]
    oof, folds = [], []
    for fam, prob in probabilities.items():
        for r in range(repeats):
            for k in range(3):
                test = [k, k + 3]
                oof.append(pd.DataFrame({"accession": [f"A{i}" for i in test], "repeat": r, "fold": k + 1,
                                         "family": fam, "probability": [prob[i] for i in test],
                                         "value": VALUES[test], "normalized": 0.0,
                                         "label": [labels[i] for i in test]}))  # fmt: skip
                pred = [prob[i] > 0.5 for i in test]
                ba = 1.0 if pred == [False, True] else (0.0 if pred == [True, False] else 0.5)
                auc = 1.0 if prob[k + 3] > prob[k] else 0.0
                folds.append({"family": fam, "repeat": r, "fold": k + 1, "auc": auc, "balanced_accuracy": ba,
                              "mcc": 0.0, "f1": 0.5, "threshold": 0.5, "n_test": 2})  # fmt: skip
    return CVResult("heat", pd.concat(oof, ignore_index=True), pd.DataFrame(folds), 0.5,
                    protocol=Protocol(3, repeats, 3, 3, True))  # fmt: skip


def test_small_cohort_degeneracy_is_judged_on_pooled_predictions_and_excluded():
    cv = cv_result({"rf-image": [0.6, 0.7, 0.8, 0.9, 0.95, 0.99], "cnn": [0.1, 0.2, 0.6, 0.7, 0.8, 0.9]})
    notes = degenerate_families(cv)
    assert list(notes) == ["rf-image"] and "single class in 100% of repeats" in notes["rf-image"]
    sel = cv.selection(degenerate=list(notes))
    assert sel["winner"] == "cnn"  # rf-image's AUC is 1.000 in every fold, but it calls everything high
    summary = cv.summary()["families"]["rf-image"]["auc"]
    assert summary["mean"] == 1.0 and summary["ci_low"] < 0.55  # not 1.000-1.000


def test_pooled_precision_counts_an_accession_only_with_the_label_every_repeat_gave_it(monkeypatch):
    """Per-fold scaling can call an accession near a cut-off high in one repeat and middle in the other; the pooled
    top-10% precision then leaves it out instead of taking whichever repeat came first."""
    from ms2img.training import scores

    monkeypatch.setattr(scores, "TOP_MIN_K", 1)  # six accessions: the top 10% is one, reported here to follow it
    cv = cv_result({"cnn": [0.1, 0.2, 0.3, 0.7, 0.8, 0.99]})
    top = cv.oof["accession"] == "A5"  # the highest P(high): the one accession in the top 10% of six
    assert cv.summary()["families"]["cnn"]["pooled"]["precision_top10"]["value"] == 1.0
    cv.oof.loc[top & (cv.oof["repeat"] == 1), "label"] = MIDDLE
    pooled = cv.summary()["families"]["cnn"]["pooled"]["precision_top10"]
    assert pooled["value"] == 1.0 and pooled["k"] == 1  # A4 (high in both repeats) is now the top one
    cv.oof.loc[cv.oof["accession"] == "A4", "label"] = 0  # ... and low in both: a miss
    assert cv.summary()["families"]["cnn"]["pooled"]["precision_top10"]["value"] == 0.0


def test_spearman_of_six_accessions_has_no_fisher_interval_but_the_exact_p_explain_gives():
    """Rho 0.878 of P(high) with a 3-vs-3 yes/no activity: Fisher z gave 0.20 to 0.99 (excluding 0), while every
    ordering of the activity gives p = 0.1, as ``ms2img explain --method correlation`` says."""
    prob, activity = [0.1, 0.3, 0.2, 0.7, 0.9, 0.8], [0, 0, 0, 1, 1, 1]
    rho = pooled_classification(activity, prob, activity)["spearman"]
    assert rho["value"] == pytest.approx(0.87831, abs=1e-5)
    assert np.isnan(rho["ci_low"]) and np.isnan(rho["ci_high"]) and rho["n"] == 6  # n says why when printed
    assert rho["p_value"] == pytest.approx(0.1)  # 2 of the 20 distinct orderings reach |rho| 0.878
    assert spearman_p(sorted(prob), [1, 2, 3, 4, 5, 6]) == pytest.approx(2 / 720)  # distinct values: 720 orderings
    assert np.isnan(spearman_interval(0.878, SPEARMAN_MIN_PAIRS - 1)["ci_low"])
    assert spearman_interval(0.878, SPEARMAN_MIN_PAIRS)["ci_low"] > 0  # the Fisher-z interval from 10 pairs
    assert count_floor("spearman", 0.9, 3, 3) == (-1.0, 1.0)  # regression floor: nothing narrower
    assert 0 < pooled_regression(np.arange(12.0), np.arange(12.0) ** 2)["spearman"]["p_value"] < 0.001


def test_paired_difference_of_two_families_at_auc_one_is_not_a_point():
    """Two families at AUC 1.000 in every fold of 3 + 3 accessions: the difference is 0.000, but the AUC floors
    allow -0.50 to +0.50 (MOVER on Newcombe's intervals), not 0.000 [0.000, 0.000]."""
    perfect = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    cv = cv_result({"rf-image": perfect, "cnn": perfect})
    lo, hi = auc_interval(1.0, 3, 3)
    for t in (cv.summary()["paired"]["rf-image vs cnn"], cv.selection()["paired_with_best"]["cnn"]):
        assert t["diff"] == 0.0 and t["p_value"] == 1.0
        assert t["ci_low"] == pytest.approx(lo - hi) and t["ci_high"] == pytest.approx(hi - lo) and hi - lo > 0.45
    assert paired_floor("auc", 1.0, 1.0, 3, 3) == pytest.approx((lo - hi, hi - lo))
    # one family misses a fold: the floored interval still spans 0, and p agrees with it
    t = corrected_paired_test([1.0] * 5 + [0.0], [1.0] * 6, 0.5, cohort=(3, 3))
    assert t["ci_low"] < 0 < t["ci_high"] and t["p_value"] > 0.05
    assert corrected_paired_test([1.0] * 6, [1.0] * 6, 0.5)["ci_low"] == 0.0  # no counts: the folds decide
    # a large cohort whose folds all agree (SE 0) gets the floor too, not 0.000 [0.000, 0.000]; and constant
    # differences a p, not NaN
    t = corrected_paired_test([1.0] * 6, [1.0] * 6, 0.5, counts=(40, 40))
    assert t["ci_low"] < 0 < t["ci_high"] and t["p_value"] == 1.0
    t = corrected_paired_test([0.9] * 6, [0.8] * 6, 0.5, counts=(40, 40))
    assert t["ci_low"] < t["diff"] < t["ci_high"] and np.isfinite(t["p_value"])
    assert corrected_paired_test([0.9, 0.8], [0.8, 0.6], 0.5, counts=(40, 40)) == corrected_paired_test(
        [0.9, 0.8], [0.8, 0.6], 0.5
    )  # folds that vary: the large cohort's interval is the folds' own


@pytest.mark.parametrize("seed", range(20))
def test_paired_p_agrees_with_its_asymmetric_floored_interval(seed):
    """Near AUC 1 the floor is lopsided; p from its mean half-width said 0.038 beside [-0.104, 0.85]: p < 0.05
    must mean the interval excludes 0, and the reverse."""
    rng = np.random.default_rng(seed)
    a = np.clip(1.0 - rng.exponential(0.02, 6), 0, 1)
    b = np.clip(rng.uniform(0.35, 0.75) + rng.normal(0, 0.15, 6), 0, 1)
    for cohort in ((3, 3), (6, 6), (12, 12)):
        t = corrected_paired_test(a, b, 0.5, cohort=cohort)
        assert (t["p_value"] < 0.05) == (t["ci_low"] > 0 or t["ci_high"] < 0)


def test_precision_in_the_top_tenth_is_not_reported_on_one_accession():
    """Six accessions make "the top 10%" one accession: no 1.000 ± 0.000, NaN with k = 1 (per fold and pooled);
    from TOP_MIN_K accessions in the top 10% it is reported with its Wilson interval over them. A test fold of
    30 accessions (the demo's) has a top of 3: NaN per fold, however right those 3 are."""
    perfect = [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]
    cv = cv_result({"cnn": perfect})
    cv.folds["precision_top10"] = [fold_scores([0, 1], [perfect[k], perfect[k + 3]], 0.5)["precision_top10"]
                                   for k in range(3)] * 2  # fmt: skip
    entry = cv.summary()["families"]["cnn"]
    assert entry["pooled"]["precision_top10"]["k"] == 1 and np.isnan(entry["pooled"]["precision_top10"]["value"])
    assert all(np.isnan(v) for v in entry["precision_top10"].values())
    y30, y41 = np.r_[np.ones(10, int), np.zeros(20, int)], np.r_[np.ones(10, int), np.zeros(31, int)]
    assert np.isnan(fold_scores(y30, np.linspace(1, 0, 30), 0.5)["precision_top10"])  # top 3, all high: withheld
    assert fold_scores(y41, np.linspace(1, 0, 41), 0.5)["precision_top10"] == 1.0  # top 5: reported
    y = np.r_[np.ones(5, int), np.zeros(45, int)]
    pooled = pooled_classification(y, np.linspace(1, 0, 50), y)["precision_top10"]
    assert pooled["k"] == TOP_MIN_K == 5 and pooled["value"] == 1.0
    assert (pooled["ci_low"], pooled["ci_high"]) == pytest.approx(proportion_interval(1.0, 5))


def figure_texts(monkeypatch) -> list[str]:
    """Every text of every figure saved from now on (titles, legends, labels), collected as they are saved."""
    from matplotlib.figure import Figure

    texts, original = [], Figure.savefig

    def spy(self, *a, **k):
        texts.extend(t.get_text() for t in self.findobj(lambda o: hasattr(o, "get_text")))
        return original(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", spy)
    return texts


def test_training_predictions_plot_counts_accessions_and_draws_the_saved_threshold(tmp_path, monkeypatch):
    """plots/<assay>/predictions_<family>.png: 3 low and 3 high accessions over 4 repeats are n=3 each, not n=12,
    and the threshold line is the saved model's (0.531), not one fold's."""
    from ms2img.training.stage import _family_plots

    texts = figure_texts(monkeypatch)
    cv = cv_result({"cnn": [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]}, repeats=4)
    cv.folds["threshold"] = np.linspace(0.45, 0.6, len(cv.folds))  # each fold picked its own
    paths = _family_plots(assay_data(), cv, "cnn", tmp_path, None, 0.531)
    assert tmp_path / "predictions_cnn.png" in paths
    text = "\n".join(texts)
    assert "low (trained), n=3" in text and "high (trained), n=3" in text and "n=12" not in text
    assert "saved model's threshold 0.531" in text and "mean of 4 repeats" in text


def test_regression_predictions_plot_has_one_dot_per_accession(tmp_path, monkeypatch):
    """plots/<assay>/regression_<family>.png: six accessions over four repeats are n=6, not 24 (as the pooled rho)."""
    from ms2img.training.stage import _family_plots

    texts = figure_texts(monkeypatch)
    cv = cv_result({"cnn": [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]}, repeats=4)
    cv.oof["prediction"] = cv.oof["probability"] * 10 + cv.oof["repeat"]  # repeats disagree: the mean is plotted
    cv.mode = "regression"
    [path] = _family_plots(assay_data(), cv, "cnn", tmp_path, None)
    text = "\n".join(texts)
    assert path.name == "regression_cnn.png" and "accessions, n=6" in text and "mean of 4 repeats" in text


def test_agreeing_folds_on_a_large_cohort_are_floored_by_the_accessions():
    """Five folds at 0.90 +- 0.006 (the demo's DPPH rf-cosine) gave [0.891, 0.912] from 158 labelled accessions;
    one test set of all of them allows no narrower than Newcombe's interval."""
    folds = pd.DataFrame({"family": "rf-cosine", "repeat": 0, "fold": range(1, 6),
                          "auc": [0.895, 0.898, 0.901, 0.905, 0.907], "balanced_accuracy": 0.8, "mcc": 0.6,
                          "f1": 0.8, "precision_top10": np.nan, "threshold": 0.5, "n_test": 32})  # fmt: skip
    oof = pd.DataFrame({"accession": ["A", "B"], "repeat": 0, "fold": 1, "family": "rf-cosine",
                        "probability": [0.2, 0.8], "value": [0.1, 0.9], "normalized": 0.0,
                        "label": [0, 1]})  # fmt: skip
    cv = CVResult("DPPH", oof, folds, 0.25, protocol=Protocol(5, 1, 80, 78, False))
    auc = cv.summary()["families"]["rf-cosine"]["auc"]
    lo, hi = auc_interval(0.9012, 80, 78)
    assert auc["ci_low"] <= lo + 1e-3 and auc["ci_high"] >= hi - 1e-3 and hi - lo > 0.08
    assert auc["sd"] < 0.01  # the folds' own spread is kept as measured


def test_per_fold_precision_is_withheld_when_some_folds_withhold_it():
    """203 labelled accessions in 5 folds: tops of 5, 5, 5, 4, 4. A mean over 3 of 5 folds, shown as a per-fold
    figure, would claim 15 folds' worth of evidence: the pooled figure stands in."""
    cv = cv_result({"cnn": [0.1, 0.2, 0.3, 0.7, 0.8, 0.9]})
    cv.folds["precision_top10"] = [1.0, 0.8, np.nan] * 2
    assert all(np.isnan(v) for v in cv.summary()["families"]["cnn"]["precision_top10"].values())
