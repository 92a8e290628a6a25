"""Baselines: RF nested CV on shared folds, FlattenImages, PCA, and OPLS-DA checked against ropls."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks

from ms2img.errors import ConfigError
from ms2img.models.baselines import (
    FlattenImages,
    oplsda,
    pca_scores,
    venetian_folds,
)
from ms2img.plots import plot_oplsda, plot_pca, plot_permutation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL_GRID = {"n_estimators": [15, 30], "max_features": ["sqrt"]}


def _folds(y, k=5, seed=0):
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _planted(n=80, p=30, shift=1.5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    rng.shuffle(y)
    X = rng.normal(size=(n, p))
    X[:, :3] += shift * y[:, None]
    return X, y


def _scaled(X):
    X = np.asarray(X, float)
    return (X - X.mean(0)) / X.std(0, ddof=1)


def _assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary file left behind"


# ---------------------------------------------------------------------------------------------- FlattenImages
@parametrize_with_checks([FlattenImages(), FlattenImages(drop_zero_columns=True)])
def test_flatten_images_sklearn_checks(estimator, check):
    check(estimator)


def test_flatten_images_round_trip_and_drop():
    rng = np.random.default_rng(1)
    images = rng.random((6, 5, 4))
    images[:, 0, :] = 0.0  # an always-masked row of pixels
    images[:, 2, 3] = 0.0
    flat = FlattenImages().fit_transform(images)
    assert flat.shape == (6, 20)
    np.testing.assert_array_equal(FlattenImages().fit_transform(images.tolist()), flat)
    np.testing.assert_array_equal(flat, images.reshape(6, -1))

    tr = FlattenImages(drop_zero_columns=True).fit(images)
    out = tr.transform(images)
    assert out.shape == (6, 20 - 5)
    np.testing.assert_array_equal(tr.inverse_transform(out), images)
    names = tr.get_feature_names_out()
    assert len(names) == 15 and "px_0_0" not in names and "px_1_0" in names and "px_2_3" not in names

    # what is dropped is learned in fit: a pixel that is non-zero later is still dropped
    later = images.copy()
    later[:, 0, 0] = 7.0
    assert tr.transform(later).shape == (6, 15)
    with pytest.raises(ValueError, match="fitted on"):
        tr.transform(rng.random((6, 4, 5)))


# ---------------------------------------------------------------------------------------------- RF


# ---------------------------------------------------------------------------------------------- PCA
def test_pca_scores_and_plot(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 12))
    X[:, 3] = 0.0  # constant column is dropped
    y = np.repeat([0, 1], 25)
    res = pca_scores(X, y)
    ref = PCA(n_components=2).fit(_scaled(np.delete(X, 3, axis=1)))
    np.testing.assert_allclose(res.explained_variance_ratio, ref.explained_variance_ratio_, rtol=1e-10)
    assert res.scores.shape == (50, 2)
    np.testing.assert_allclose(np.abs(res.scores), np.abs(ref.transform(_scaled(np.delete(X, 3, axis=1)))))
    out = plot_pca(res, y, tmp_path / "fig" / "pca.png")
    _assert_png(out)


# ---------------------------------------------------------------------------------------------- OPLS-DA
def test_oplsda_reproduces_ropls_sacurine():
    """ropls vignette: opls(sacurine$dataMatrix, gender, predI = 1, orthoI = NA) prints
    R2X(cum) 0.275, R2Y(cum) 0.73, Q2(cum) 0.602, RMSEE 0.262, pre 1, ort 2."""
    piopls = pytest.importorskip("piopls")
    X, gender, _, _ = piopls.load_sacurine()
    y = (gender == "M").astype(int)
    res = oplsda(X, y, permutations=20, seed=0)
    assert res.n_orthogonal == 2 and res.selection == "auto"
    assert round(res.r2x, 3) == 0.275
    assert round(res.r2y, 2) == 0.73
    assert round(res.q2y, 3) == 0.602
    assert round(res.rmsee, 3) == 0.262
    # a strong real effect: no permutation reaches it
    assert res.permutation_p_r2y == res.permutation_p_q2y == pytest.approx(1 / 21)
    assert res.t_orth.shape == (183, 2)
    # Q2Y is 1 - PRESS/SS from the stored cross-validated predictions
    press = np.sum((y - res.y_cv) ** 2)
    assert res.q2y == pytest.approx(1 - press / np.sum((y - y.mean()) ** 2))


def test_oplsda_matches_pi_oplsda_on_permuted_labels():
    """Same numbers as pi-oplsda's ropls mode (itself benchmarked against R ropls), also for a weak model."""
    piopls = pytest.importorskip("piopls")
    X, gender, _, _ = piopls.load_sacurine()
    y = np.random.default_rng(4).permutation((gender == "M").astype(int))
    ours = oplsda(X, y, n_orthogonal=1, permutations=0)
    ref = piopls.OPLSDA(n_ortho=1, cv_folds=7, compatibility="ropls", n_jobs=1).fit(X, y)
    ref.compute_q2(X, y)
    assert ours.r2y == pytest.approx(ref.R2Y_, abs=1e-10)
    assert ours.q2y == pytest.approx(ref.Q2_, abs=1e-10)
    np.testing.assert_allclose(np.abs(ours.t_pred), np.abs(ref.t_pred_), atol=1e-9)
    np.testing.assert_allclose(np.abs(ours.t_orth[:, 0]), np.abs(ref.T_ortho_[:, 0]), atol=1e-9)
    assert np.isnan(ours.permutation_p_q2y) and len(ours.permuted) == 0


def test_oplsda_without_orthogonal_is_one_component_pls():
    X, y = _planted(n=60, p=20, shift=0.8, seed=1)
    res = oplsda(X, y, n_orthogonal=0, permutations=0)
    Xs = _scaled(X)
    pls = PLSRegression(n_components=1, scale=False).fit(Xs, y)
    t_ref = pls.x_scores_[:, 0]
    sign = np.sign(t_ref @ res.t_pred)
    np.testing.assert_allclose(res.t_pred, sign * t_ref, rtol=1e-8, atol=1e-10)
    assert res.r2y == pytest.approx(pls.score(Xs, y), abs=1e-10)
    np.testing.assert_allclose(res.y_fitted, pls.predict(Xs).ravel(), atol=1e-10)
    assert res.t_orth.shape == (60, 0)


def test_oplsda_puts_large_y_unrelated_variation_in_the_orthogonal_component(tmp_path):
    rng = np.random.default_rng(0)
    n, p = 90, 40
    y = np.repeat([0, 1], n // 2)
    rng.shuffle(y)
    s = (2 * y - 1) + 0.4 * rng.normal(size=n)  # class-related latent variable
    z = 5.0 * rng.normal(size=n)  # large, y-unrelated variation
    u = np.zeros(p)
    u[:10] = 1.0
    v = np.zeros(p)
    v[5:25] = 1.0  # overlaps u: PLS would mix the two, OPLS separates them
    X = np.outer(s, u) + np.outer(z, v) + 0.5 * rng.normal(size=(n, p))
    res = oplsda(X, y, permutations=20, seed=1)
    assert res.n_orthogonal >= 1
    assert abs(np.corrcoef(res.t_orth[:, 0], z)[0, 1]) > 0.95
    assert abs(np.corrcoef(res.t_pred, s)[0, 1]) > 0.9
    assert res.r2x_components[1] > res.r2x_components[0]  # the orthogonal part is the larger X variation
    assert res.q2y > 0.7 and res.r2y >= res.q2y
    assert res.permutation_p_q2y == pytest.approx(1 / 21)
    assert np.all(res.permuted.q2y < res.q2y)
    _assert_png(plot_oplsda(res, y, tmp_path / "oplsda.png"))
    _assert_png(plot_permutation(res, tmp_path / "perm.png"))


def test_oplsda_on_noise_is_not_predictive():
    rng = np.random.default_rng(101)
    X = rng.normal(size=(60, 100))
    y = rng.permutation(np.repeat([0, 1], 30))
    res = oplsda(X, y, permutations=20, seed=1)
    assert res.q2y < 0.05
    assert res.r2y > 0.5  # p > n: the fit alone looks good, which is the overfitting the paper describes
    assert res.permutation_p_q2y > 0.05
    assert res.permutation_p_r2y > 0.05
    assert res.selection.startswith("fallback") and res.n_orthogonal == 1


def test_oplsda_batched_permutations_equal_single_refits():
    X, y = _planted(n=42, p=15, shift=0.6, seed=2)
    res = oplsda(X, y, n_orthogonal=2, permutations=5, seed=9)
    orders = res.permuted.orders
    assert orders.shape == (5, 42)
    for i in (0, 4):
        single = oplsda(X, y[orders[i]], n_orthogonal=2, permutations=0)
        assert res.permuted.r2y[i] == pytest.approx(single.r2y, abs=1e-10)
        assert res.permuted.q2y[i] == pytest.approx(single.q2y, abs=1e-10)
        assert res.permuted.similarity[i] == pytest.approx(np.mean(y[orders[i]] == y))
    again = oplsda(X, y, n_orthogonal=2, permutations=5, seed=9)
    np.testing.assert_array_equal(again.permuted.q2y, res.permuted.q2y)


def test_venetian_folds_follow_ropls_segments():
    folds = venetian_folds(10, 7)
    # R: split(1:10, rep(1:7, length = 10)) -> segment 1 = rows 1 and 8 (1-based)
    np.testing.assert_array_equal(folds[0][1], [0, 7])
    np.testing.assert_array_equal(folds[6][1], [6])
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(10))


def test_oplsda_rejects_bad_input():
    X, y = _planted(n=30, p=10)
    with pytest.raises(ConfigError, match="0/1"):
        oplsda(X, y + 1, permutations=0)
    with pytest.raises(ConfigError, match="single class"):
        oplsda(X, np.zeros(30, int), permutations=0)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        oplsda(bad, y, permutations=0)
    with pytest.raises(ConfigError, match="scale"):
        oplsda(X, y, scale="log", permutations=0)
    with pytest.raises(ConfigError, match="cv_folds"):
        oplsda(X, y, cv_folds=40, permutations=0)
