"""The column network (ms2img.models.column_cnn): pixel channels fitted on training images, saved inside the model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ms2img.errors import ConfigError
from ms2img.models.column_cnn import (
    PixelECDF,
    build_column_cnn,
    ecdf_knots,
    pixel_channels,
    pixel_relevance,
    pixel_scale,
    with_pixel_ecdf,
)
from ms2img.models.estimators import CNNClassifier
from ms2img.models.family import FamilyModel
from ms2img.models.regressors import CNNRegressor
from ms2img.models.tuning import ColumnHyperModel

SPACE = {"filters": [2], "kernel": [3], "dropout": [0.0], "l2": [1e-3], "learning_rate": [3e-2]}


def column(estimator: type = CNNClassifier, **settings):
    """A small column network estimator (``SPACE``, seed 0) with ``settings``."""
    return estimator(architecture="column", space=SPACE, seed=0, **settings)


def planted(n: int, seed: int, h: int = 12, w: int = 10):
    """Sparse images; class 1 lights one (precursor, fragment) pixel that class 0 leaves dark."""
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    x = (rng.random((n, h, w)) * (rng.random((n, h, w)) > 0.95)).astype(np.float32)
    x[:, 6, 3] = 0.0
    x[y == 1, 6, 3] = rng.uniform(0.05, 1.0, int((y == 1).sum()))
    return x, y


def test_ecdf_is_the_mid_rank_among_training_values_centred():
    train = np.zeros((4, 2, 2), np.float32)
    train[3, 0, 0] = 1.0  # pixel (0, 0): values 0, 0, 0, 1
    knots = ecdf_knots(train)
    assert knots.shape == (4, 2, 2, 1)
    out = pixel_channels(np.array([[[0.0, 5.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]], np.float32), knots, 2.0)
    assert out.shape == (2, 2, 2, 2)
    assert out[0, 0, 0, 0] == pytest.approx((0.0 + 0.75) / 2 - 0.5)  # dark, as 3 of 4 training images
    assert out[1, 0, 0, 0] == pytest.approx((0.75 + 1.0) / 2 - 0.5)  # lit, as the brightest
    assert out[0, 1, 1, 0] == pytest.approx(0.0)  # never lit in training: "nothing known"
    assert out[0, 0, 1, 0] == pytest.approx(0.5)  # brighter than every training value
    assert out[0, 0, 1, 1] == pytest.approx(2.5)  # the intensity channel: value / training pixel SD


def test_the_intensity_weight_divides_the_unit_and_the_served_scale_keeps_it():
    x, y = planted(30, seed=5)
    assert pixel_scale(x, 0.1) == pytest.approx(10 * pixel_scale(x))
    with pytest.raises(ConfigError, match="cnn.intensity_weight must be > 0"):
        pixel_scale(x, 0.0)
    model = CNNClassifier(
        architecture="column", space={"filters": [0], "kernel": [1], "dropout": [0.0], "l2": [1e-3],
        "learning_rate": [1e-2]}, max_epochs=2, min_epochs=1, patience=1, ensemble=2, intensity_weight=0.25, seed=0,
    ).fit(x, y)  # fmt: skip
    served_scale = [float(keras.ops.convert_to_numpy(m.get_layer("pixel_ecdf").scale)) for m in model.members_]
    assert served_scale[0] == pytest.approx(4 * pixel_scale(x), rel=1e-5)  # fitted on the training images, x4


def test_the_layer_computes_what_training_saw():
    x, _ = planted(20, seed=1)
    knots, scale = ecdf_knots(x[:14]), pixel_scale(x[:14])
    layer = PixelECDF(knots.shape[0], knots=knots, scale=scale)
    got = keras.ops.convert_to_numpy(layer(x[14:, :, :, None]))
    np.testing.assert_allclose(got, pixel_channels(x[14:], knots, scale), atol=1e-6)


def test_few_weights_and_clear_shape_errors():
    net = build_column_cnn((70, 75, 2), filters=4, kernel=3)
    trainable = sum(int(np.prod(v.shape)) for v in net.trainable_weights)
    assert trainable == 4 * (3 * 2 + 1) + 70 * 75 * 4 + 1  # shared column encoder + one weight per encoded pixel
    linear = build_column_cnn((70, 75, 2), filters=0)
    assert sum(int(np.prod(v.shape)) for v in linear.trainable_weights) == 70 * 75 * 2 + 1
    with pytest.raises(ConfigError, match="pixel channels"):
        build_column_cnn((70, 75, 1))
    with pytest.raises(ConfigError, match="unknown tune.space keys"):
        ColumnHyperModel((70, 75, 1), {"units": [8]}, 8, knots=None, scale=1.0)


def test_cross_fitted_members_learn_and_survive_a_save(tmp_path):
    x, y = planted(60, seed=2)
    model = column(
        max_epochs=15, min_epochs=5, patience=5, batch_size=16, ensemble=3, cross_fit=True, passes_per_epoch=4
    ).fit(x, y)
    assert len(model.members_) == 3 and 0.0 < model.threshold_ < 1.0
    assert all(m.get_layer("pixel_ecdf") is not None and m.input_shape == (None, 12, 10, 1) for m in model.members_)
    x_new, y_new = planted(40, seed=3)
    p = model.predict_proba(x_new)[:, 1]
    assert roc_auc_score(y_new, p) > 0.75  # chance is 0.5; the one telling pixel among 240 noisy ones
    FamilyModel("cnn", {"assay": "A"}, model.members_).save(tmp_path / "cnn")
    again = FamilyModel.load(tmp_path / "cnn")  # the knots and scale come back from the weights file
    np.testing.assert_allclose(again.predict_proba(x_new), p, atol=1e-6)


def test_served_model_answers_images_with_the_training_transform():
    x, _ = planted(16, seed=4)
    knots, scale = ecdf_knots(x), pixel_scale(x)
    net = build_column_cnn((12, 10, 2), filters=2)
    served = with_pixel_ecdf(net, knots, scale)
    direct = keras.ops.convert_to_numpy(net(pixel_channels(x, knots, scale)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(served(x[:, :, :, None])), direct, atol=1e-6)


def test_pixel_relevance_is_the_class_separation_of_each_pixel_at_unit_rms():
    x, y = planted(40, seed=6)
    channels = pixel_channels(x, ecdf_knots(x), pixel_scale(x))
    w = pixel_relevance(channels, y, power=1.0)
    assert w.shape == (12, 10, 1)
    flat = w[..., 0]
    assert np.unravel_index(np.argmax(flat), flat.shape) == (6, 3)  # the planted pixel separates the classes best
    live = x.reshape(40, -1).std(axis=0) > 0
    assert np.sqrt(np.mean(flat.reshape(-1)[live] ** 2)) == pytest.approx(1.0, rel=1e-5)
    assert np.all(flat.reshape(-1)[~live] == 0.0)  # dark in every training image: weight 0
    sharper = pixel_relevance(channels, y, power=2.0)[..., 0]
    assert sharper[6, 3] > flat[6, 3]  # a higher power concentrates the weight on the best pixels
    with pytest.raises(ConfigError, match="both classes"):
        pixel_relevance(channels, np.zeros(40), power=1.0)
    graded = y * 0.5 + np.linspace(0.0, 0.4, 40)  # continuous targets: |Spearman rho| instead of the AUC
    rho = pixel_relevance(channels, graded, power=1.0)[..., 0]
    assert np.unravel_index(np.argmax(rho), rho.shape) == (6, 3)


def test_relevance_weights_are_fitted_per_member_and_saved_with_it(tmp_path):
    x, y = planted(60, seed=7)
    model = column(
        max_epochs=6, min_epochs=2, patience=2, batch_size=16, ensemble=3, cross_fit=True, relevance_power=1.0
    ).fit(x, y)
    weights = [m.get_layer("column_network").get_layer("relevance").get_weights()[0] for m in model.members_]
    assert all(np.unravel_index(np.argmax(w[..., 0]), (12, 10)) == (6, 3) for w in weights)
    assert not np.allclose(weights[0], weights[1])  # each member's own training rows
    x_new, y_new = planted(40, seed=8)
    p = model.predict_proba(x_new)[:, 1]
    assert roc_auc_score(y_new, p) > 0.75
    FamilyModel("cnn", {"assay": "A"}, model.members_).save(tmp_path / "cnn")
    np.testing.assert_allclose(FamilyModel.load(tmp_path / "cnn").predict_proba(x_new), p, atol=1e-6)
    # cross_fit false: members refitted on all the rows get weights from all the rows
    refit = column(max_epochs=3, min_epochs=1, patience=1, ensemble=1, cross_fit=False, relevance_power=1.0).fit(x, y)
    got = refit.members_[0].get_layer("column_network").get_layer("relevance").get_weights()[0]
    np.testing.assert_allclose(got, pixel_relevance(pixel_channels(x, ecdf_knots(x), pixel_scale(x, 0.1)), y, 1.0))


def test_the_regressor_trains_without_pixel_weights():
    x, y = planted(60, seed=9)
    values = 10.0 * y + np.random.default_rng(9).normal(0, 1, 60)
    model = column(CNNRegressor, max_epochs=3, min_epochs=1, patience=1, ensemble=1, relevance_power=1.0)
    model = model.fit(x, values)
    layers = [layer.name for layer in model.members_[0].get_layer("column_network_regression").layers]
    assert "relevance" not in layers  # chosen on classes; measured worse on values (CNNRegressor's docstring)
