"""benchmarks/graded_targets.py: the graded CNN and forest learn a value, not two classes (issue 20, item 3)."""

from __future__ import annotations

import numpy as np
from builders import load_benchmark
from sklearn.metrics import roc_auc_score


def _graded_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse noisy images whose one telling pixel grows with the value ``z`` (0..1), middle band included."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0, 1, n)
    x = (rng.random((n, 12, 10)) * (rng.random((n, 12, 10)) > 0.95)).astype(np.float32)
    x[:, 6, 3] = z * rng.uniform(0.8, 1.2, n)
    return x, z


def _labelled_auc(z: np.ndarray, score: np.ndarray) -> float:
    labelled = (z < 0.4) | (z > 0.6)
    return float(roc_auc_score(z[labelled] > 0.6, score[labelled]))


def test_the_graded_cnn_trains_on_every_value_and_ranks_new_images() -> None:
    bench = load_benchmark("graded_targets")
    x, z = _graded_images(60, seed=0)
    model = bench.GradedCNN(
        architecture="column", space={"filters": [0], "kernel": [1], "dropout": [0.0], "l2": [1e-4],
        "learning_rate": [3e-2]}, max_epochs=15, min_epochs=5, patience=5, batch_size=16, ensemble=2, seed=0,
    ).fit(x, z)  # fmt: skip
    assert len(model.members_) == 2
    x_new, z_new = _graded_images(60, seed=1)
    assert _labelled_auc(z_new, model.predict_proba(x_new)[:, 1]) > 0.8  # chance is 0.5


def test_the_graded_forest_is_a_regression_forest_on_the_pixels() -> None:
    bench = load_benchmark("graded_targets")
    x, z = _graded_images(80, seed=2)
    x_new, z_new = _graded_images(60, seed=3)
    params = {"baselines": {"rf_trees": [50], "rf_max_features": [0.5]}}
    predicted = bench.graded_forest(x, z, x_new, params, seed=0)
    assert predicted.shape == (60,) and np.all((predicted >= 0) & (predicted <= 1.2))
    assert _labelled_auc(z_new, predicted) > 0.8
