"""The multi-task column network (family cnn-mt): masked per-assay heads over one encoder, one assay served."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ms2img.errors import ConfigError
from ms2img.models.column_cnn import build_column_cnn, masked_binary_crossentropy, packed_targets, task_network
from ms2img.models.estimators import CNNClassifier
from ms2img.models.family import FamilyModel

SPACE = {"filters": [2], "kernel": [3], "dropout": [0.0], "l2": [1e-3], "learning_rate": [3e-2]}


def planted(n: int, seed: int, h: int = 12, w: int = 10):
    """Sparse images; this assay's class lights pixel (6, 3), a companion assay's class pixel (2, 7)."""
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    companion = rng.integers(0, 2, n).astype(float)
    x = (rng.random((n, h, w)) * (rng.random((n, h, w)) > 0.95)).astype(np.float32)
    x[:, 6, 3] = np.where(y == 1, rng.uniform(0.05, 1.0, n), 0.0)
    x[:, 2, 7] = np.where(companion == 1, rng.uniform(0.05, 1.0, n), 0.0)
    companion[rng.random(n) < 0.3] = np.nan  # not measured, or in its middle band
    return x, np.column_stack([y, companion])


def test_packed_targets_weigh_unknown_labels_zero_and_balance_each_assay():
    y = np.array([[1, 0], [0, np.nan], [0, 1], [0, 1]], dtype=float)
    packed = packed_targets(y, balanced=True)
    np.testing.assert_array_equal(packed[:, :2], [[1, 0], [0, 0], [0, 1], [0, 1]])
    np.testing.assert_allclose(packed[:, 2], [2.0, 4 / 6, 4 / 6, 4 / 6])  # 4 known: 1 high, 3 low
    np.testing.assert_allclose(packed[:, 3], [1.5, 0.0, 0.75, 0.75])  # 3 known: 1 low, 2 high; NaN weighs 0
    np.testing.assert_array_equal(packed_targets(y, balanced=False)[:, 3], [1, 0, 1, 1])


def test_the_masked_loss_is_the_weighted_cross_entropy_of_known_labels_only():
    packed = packed_targets(np.array([[1, np.nan], [0, 1]], dtype=float), balanced=False)
    p = np.array([[0.8, 0.01], [0.3, 0.6]], dtype=np.float32)
    expected = -(np.log(0.8) + np.log(0.7) + np.log(0.6)) / 3
    assert float(masked_binary_crossentropy(packed, p)) == pytest.approx(expected, rel=1e-5)
    p[0, 1] = 0.99  # the unknown label's prediction changes nothing
    assert float(masked_binary_crossentropy(packed, p)) == pytest.approx(expected, rel=1e-5)


def test_one_assays_network_answers_as_its_column_of_the_multi_task_one():
    net = build_column_cnn((12, 10, 2), filters=2, tasks=3)
    for w in net.trainable_weights:  # random, not the zero bias: a wrong column would show
        w.assign(np.random.default_rng(0).normal(0, 0.3, w.shape).astype("float32"))
    x = np.random.default_rng(1).normal(0, 1, (5, 12, 10, 2)).astype(np.float32)
    both = keras.ops.convert_to_numpy(net(x))
    one = task_network(net, 1)
    assert one.output_shape == (None, 1) and [layer.name for layer in one.layers][1:] == [
        "column", "pixel_features", "activity"
    ]  # fmt: skip
    np.testing.assert_allclose(keras.ops.convert_to_numpy(one(x))[:, 0], both[:, 1], atol=1e-5)


def test_multi_task_members_serve_this_assay_alone_and_survive_a_save(tmp_path):
    x, y = planted(80, seed=2)
    model = CNNClassifier(
        architecture="column", space=SPACE, max_epochs=15, min_epochs=5, patience=5, batch_size=16, ensemble=3,
        passes_per_epoch=4, relevance_power=1.0, seed=0,
    ).fit(x, y)  # fmt: skip
    assert len(model.members_) == 3 and all(m.output_shape == (None, 1) for m in model.members_)
    relevance = model.members_[0].get_layer("column_network").get_layer("relevance").get_weights()[0][..., 0]
    assert relevance.max() > 1.0  # fitted on this assay's labels (column 0), carried into the served network
    assert 0.0 < model.threshold_ < 1.0
    x_new, y_new = planted(60, seed=3)
    p = model.predict_proba(x_new)[:, 1]
    assert roc_auc_score(y_new[:, 0], p) > 0.75  # this assay's pixel, not the companion's
    assert roc_auc_score(y_new[:, 0], p) > roc_auc_score(np.nan_to_num(y_new[:, 1]), p)
    FamilyModel("cnn-mt", {"assay": "A"}, model.members_).save(tmp_path / "cnn-mt")
    again = FamilyModel.load(tmp_path / "cnn-mt")
    assert again.family == "cnn-mt"
    np.testing.assert_allclose(again.predict_proba(x_new), p, atol=1e-6)


def test_multi_task_training_says_what_it_needs():
    x, y = planted(20, seed=4)
    with pytest.raises(ConfigError, match="needs cnn.architecture: column, cnn.cross_fit: true"):
        CNNClassifier(architecture="compact", space={}, max_epochs=1).fit(x, y)
    with pytest.raises(ConfigError, match="needs cnn.architecture: column, cnn.cross_fit: true"):
        CNNClassifier(architecture="column", space=SPACE, cross_fit=False, max_epochs=1).fit(x, y)
    y[3, 0] = np.nan
    with pytest.raises(ConfigError, match="column 0 .* must be 0 or 1 on every row"):
        CNNClassifier(architecture="column", space=SPACE, max_epochs=1).fit(x, y)
