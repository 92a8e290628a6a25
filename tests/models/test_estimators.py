"""Every family as a scikit-learn classifier with its own threshold (ms2img.models.estimators)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from ms2img.errors import ConfigError
from ms2img.models.estimators import CNNClassifier, ForestClassifier, cross_fit_folds, make_estimator
from ms2img.models.tuning import stratified_split
from ms2img.training.scores import choose_threshold


def planted(n: int = 40, size: int = 16, seed: int = 0, strength: float = 1.0):
    """Noise images; class 1 carries a bright patch (``strength`` of the noise range)."""
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    x = (rng.random((n, size, size)) * 0.5).astype(np.float32)
    x[y == 1, 4:9, 5:10] += strength
    return x, y


def test_forest_threshold_comes_from_its_out_of_bag_predictions():
    x, y = planted(strength=0.3)
    rf = ForestClassifier(n_estimators=(30,), flatten=True, seed=2).fit(x, y)
    inner = rf.model_[-1]
    oob = np.nan_to_num(inner.oob_decision_function_[:, 1], nan=0.5)
    assert rf.threshold_ == pytest.approx(choose_threshold(y, oob))
    assert 0 < rf.threshold_ < 1 and 0.5 < rf.oob_auc_ <= 1.0
    assert rf.best_params_ == {"n_estimators": 30, "max_features": "sqrt"}
    p = rf.predict_proba(x)
    assert p.shape == (len(x), 2) and np.allclose(p.sum(axis=1), 1)
    np.testing.assert_array_equal(rf.predict(x), (p[:, 1] > rf.threshold_).astype(int))
    assert rf.classes_.tolist() == [0, 1]


def test_forest_grid_point_is_the_best_oob_auc_and_reproducible():
    x, y = planted(strength=0.3, seed=1)
    flat = x.reshape(len(x), -1)
    rf = ForestClassifier(n_estimators=(15, 40), max_features=("sqrt", 0.5), seed=0).fit(flat, y)
    aucs = {}
    for n in (15, 40):
        for mf in ("sqrt", 0.5):
            one = ForestClassifier(n_estimators=(n,), max_features=(mf,), seed=0).fit(flat, y)
            aucs[(n, mf)] = one.oob_auc_
    assert rf.oob_auc_ == pytest.approx(max(aucs.values()))
    chosen = (rf.best_params_["n_estimators"], rf.best_params_["max_features"])
    assert aucs[chosen] == pytest.approx(rf.oob_auc_)
    again = clone(rf).fit(flat, y)
    np.testing.assert_array_equal(again.predict_proba(flat), rf.predict_proba(flat))


def test_make_estimator_reads_params():
    params = {
        "baselines": {"rf_trees": [11, 22], "rf_max_features": ["sqrt"]},
        "cnn": {
            "epochs": 3,
            "batch_size": 8,
            "patience": 2,
            "ensemble": 2,
            "architecture": "compact",
            "min_epochs": 1,
            "cross_fit": False,
            "passes_per_epoch": 1,
        },
        "tune": {"trials": 2, "validation_split": 0.3, "space": {"filters": [8]}, "objective": "val_loss"},
    }
    rf = make_estimator("rf-image", params, seed=4)
    assert isinstance(rf, ForestClassifier) and rf.flatten and rf.n_estimators == (11, 22) and rf.seed == 4
    assert make_estimator("rf-cosine", params, seed=4).flatten is False
    cnn = make_estimator("cnn", params, seed=5)
    assert isinstance(cnn, CNNClassifier)
    assert (cnn.trials, cnn.max_epochs, cnn.patience, cnn.batch_size, cnn.ensemble) == (2, 3, 2, 8, 2)
    assert cnn.validation_split == 0.3 and cnn.space == {"filters": [8]} and cnn.seed == 5
    assert cnn.intensity_weight == 1.0  # a params.yaml from before cnn.intensity_weight trains as it did
    params["cnn"]["intensity_weight"] = 0.25
    assert make_estimator("cnn", params, seed=5).intensity_weight == 0.25


SMALL_SPACE = {"conv_layers": [1], "filters": [4], "units": [8], "learning_rate": [3e-3, 1e-2]}


def test_cnn_classifier_fits_tiny_data():
    x, y = planted(n=24, size=16, seed=3)
    seen = []
    model = CNNClassifier(
        architecture="compact",
        cross_fit=False,
        passes_per_epoch=1,
        space=SMALL_SPACE,
        trials=2,
        max_epochs=3,
        patience=3,
        batch_size=8,
        ensemble=2,
        min_epochs=1,
        seed=1,
        on_trial_end=seen.append,
    ).fit(x, y)
    assert [t["status"] for t in seen] == ["COMPLETED", "COMPLETED"]
    assert 1 <= model.best_epoch_ <= 3
    assert 0.0 <= model.threshold_ <= 1.0 and np.isfinite(model.threshold_)
    assert model.inner_score_ is None or np.isfinite(model.inner_score_)
    assert len(model.members_) == 2  # two refits on all the images; the inner split's network is not a member
    assert all(m.get_layer("pixel_standardize") is not None for m in model.members_)
    assert {"loss", "val_auc"} <= set(model.history_) and len(model.history_["loss"]) <= 3
    assert set(model.best_hp_) >= {"conv_layers", "filters", "units", "learning_rate"}
    p = model.predict_proba(x)
    assert p.shape == (len(x), 2) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(x), (p[:, 1] > model.threshold_).astype(int))


def test_cross_fit_on_a_small_cohort_uses_the_folds_its_rarer_class_allows():
    """6 images, 2 per class in the rarer one: 3 members asked, a 2-fold inner split and 2 members (no sklearn
    error); one image of a class cannot be cross-fitted and says so in one line."""
    x, y = planted(n=6, size=16, seed=3)
    y = np.array([0, 0, 1, 1, 1, 1])
    space = {"filters": [2], "kernel": [3], "dropout": [0.0], "l2": [1e-3], "learning_rate": [1e-2]}
    kw = {"architecture": "column", "passes_per_epoch": 1, "max_epochs": 2, "patience": 1, "batch_size": 4,
          "ensemble": 3, "min_epochs": 1, "space": space}  # fmt: skip
    model = CNNClassifier(**kw).fit(x, y)
    assert len(model.members_) == 2 and np.isfinite(model.inner_proba_).all()
    with pytest.raises(ConfigError, match="holds 1 image"):
        CNNClassifier(**kw).fit(x[1:], y[1:])


def replicated(accessions: int = 60, replicates: int = 3, seed: int = 0):
    """Noise images with random labels, each accession ``replicates`` near-copies: nothing to learn, so an honest
    held-out AUC is near 0.5 and a leaky one (siblings on both sides) is near 1."""
    rng = np.random.default_rng(seed)
    base = rng.random((accessions, 8, 8)).astype(np.float32)
    x = np.repeat(base, replicates, axis=0) + rng.normal(0, 0.01, (accessions * replicates, 8, 8)).astype(np.float32)
    y = np.repeat(rng.permutation(np.arange(accessions) % 2), replicates)
    return x, y, np.repeat(np.arange(accessions), replicates)


def test_forest_out_of_bag_keeps_an_accessions_replicates_together():
    x, y, groups = replicated()
    leaky = ForestClassifier(n_estimators=(200,), flatten=True, seed=0).fit(x, y)
    honest = ForestClassifier(n_estimators=(200,), flatten=True, seed=0).fit(x, y, groups=groups)
    assert leaky.oob_auc_ > 0.9  # trees that trained on a sibling replicate "predict" it
    assert 0.3 < honest.oob_auc_ < 0.7
    assert np.isfinite(honest.inner_proba_).all() and 0 < honest.threshold_ < 1


def test_cross_fit_folds_never_split_an_accession_and_count_accessions():
    _, y, groups = replicated(accessions=12)
    folds = cross_fit_folds(y, groups, members=3, seed=0)
    assert len(folds) == 3
    for train, held in folds:
        assert not set(groups[train]) & set(groups[held]) and set(y[held]) == {0, 1}
    assert np.array_equal(np.sort(np.concatenate([h for _, h in folds])), np.arange(len(y)))
    one_high = np.where(groups < 11, 0, 1)  # 3 images but one accession of class 1
    with pytest.raises(ConfigError, match="holds 1 accession"):
        cross_fit_folds(one_high, groups, members=3, seed=0)
    assert len(cross_fit_folds(one_high, None, members=3, seed=0)) == 3  # ungrouped: 3 images suffice


def test_grouped_validation_split_keeps_accessions_on_one_side():
    _, y, groups = replicated(accessions=40)
    train, val = stratified_split(y, 0.25, seed=1, groups=groups)
    assert not set(groups[train]) & set(groups[val]) and set(y[val]) == {0, 1}
    assert len(np.unique(groups[val])) == 10


def test_forest_regressor_out_of_bag_keeps_an_accessions_replicates_together():
    from ms2img.models.regressors import ForestRegressor

    x, _, groups = replicated(seed=1)
    values = np.repeat(np.random.default_rng(2).random(60), 3)  # unrelated to the images
    leaky = ForestRegressor(n_estimators=(200,), flatten=True, seed=0).fit(x, values)
    honest = ForestRegressor(n_estimators=(200,), flatten=True, seed=0).fit(x, values, groups=groups)
    assert leaky.oob_spearman_ > 0.8 and abs(honest.oob_spearman_) < 0.35
