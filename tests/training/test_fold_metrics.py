"""Fold summaries, confusion matrices, ROC curves and metrics files (the figures are tested in test_plots.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from ms2img.training.fold_metrics import (
    confusion_matrices,
    fold_rocs,
    pooled_roc,
    predict_labels,
    size_sort_key,
    summarize,
    write_metrics_json,
)


def _folds(seed=0, n_folds=5, n=20):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_folds):
        y = np.array([0, 1] * (n // 2))
        p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
        out.append((y, p))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------


def test_summarize_mean_sd():
    folds = [
        {"accuracy": 0.8, "roc_auc": 0.9, "note": "x"},
        {"accuracy": 0.6, "roc_auc": float("nan")},
        {"accuracy": np.float32(0.7), "roc_auc": 0.7},
    ]
    s = summarize(folds)
    assert set(s) == {"accuracy", "roc_auc"}  # non-numeric skipped
    assert s["accuracy"]["mean"] == pytest.approx(0.7)
    assert s["accuracy"]["sd"] == pytest.approx(np.std([0.8, 0.6, 0.7], ddof=1))
    assert s["roc_auc"]["mean"] == pytest.approx(0.8)  # NaN fold ignored
    assert s["roc_auc"]["sd"] == pytest.approx(np.std([0.9, 0.7], ddof=1))
    one = summarize([{"a": 0.5}, {"a": None}])
    assert one["a"]["mean"] == 0.5 and math.isnan(one["a"]["sd"])
    with pytest.raises(ValueError):
        summarize([])


def test_confusion_matrices_mean_sd():
    yt = [np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), np.array([0, 0, 0, 1])]
    yp = [np.array([0, 1, 1, 1]), np.array([0, 1, 0, 1]), np.array([0, 0, 0, 1])]
    mean, sd = confusion_matrices(yt, yp)
    mats = np.stack([confusion_matrix(a, b, labels=[0, 1]) for a, b in zip(yt, yp, strict=True)])
    np.testing.assert_allclose(mean, mats.mean(0))
    np.testing.assert_allclose(sd, mats.std(0, ddof=1))
    probs = [np.where(p == 1, 0.9, 0.1) for p in yp]
    mean2, sd2 = confusion_matrices(yt, probs, threshold=0.5)
    np.testing.assert_allclose(mean2, mean)
    np.testing.assert_allclose(sd2, sd)
    # a fold with one class still gives a 2x2 matrix
    m1, _ = confusion_matrices([np.array([1, 1])], [np.array([1, 0])])
    assert m1.shape == (2, 2) and m1[1].tolist() == [1, 1]


def test_pooled_roc_and_fold_rocs():
    folds = _folds()
    yt = [f[0] for f in folds]
    yp = [f[1] for f in folds]
    pooled = pooled_roc(yt, yp)
    assert pooled["auc"] == pytest.approx(roc_auc_score(np.concatenate(yt), np.concatenate(yp)))
    assert pooled["fpr"][0] == 0 and pooled["tpr"][-1] == 1 and pooled["fpr"][-1] == 1
    assert len(pooled["thresholds"]) == len(pooled["fpr"])
    with pytest.warns(UserWarning, match="all samples are one class"):
        assert math.isnan(pooled_roc([[1, 1]], [[0.2, 0.3]])["auc"])
    with pytest.raises(ValueError, match="5 folds of labels but 4"):
        pooled_roc(yt, yp[:4])
    rocs = fold_rocs([*yt, np.array([1, 1, 1])], [*yp, np.array([0.6, 0.7, 0.2])])
    assert len(rocs) == 6
    for roc, (y, p) in zip(rocs, folds, strict=False):
        assert roc["auc"] == pytest.approx(roc_auc_score(y, p))
        assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1
    assert math.isnan(rocs[-1]["auc"]) and rocs[-1]["fpr"].size == 0  # a one-class fold: no curve, no crash
    with pytest.raises(ValueError, match="NaN"):
        fold_rocs([[0, 1]], [[0.1, np.nan]])
    with pytest.raises(ValueError, match="0/1"):
        fold_rocs([[0, 2]], [[0.1, 0.2]])


def test_predict_labels_is_strictly_greater():
    assert predict_labels([0.2, 0.5, 0.51], 0.5).tolist() == [0, 0, 1]
    assert predict_labels([0.2, 0.5, 0.51], 0.3).tolist() == [0, 1, 1]


def test_size_sort_key_orders_by_pixels():
    sizes = ["300x280", "odd", "75x70", "150x140"]
    assert sorted(sizes, key=size_sort_key) == ["75x70", "150x140", "300x280", "odd"]


# ---------------------------------------------------------------------------------------------------------------
# Metrics file
# ---------------------------------------------------------------------------------------------------------------


def test_write_metrics_json(tmp_path):
    payload = {
        "b": np.float32(0.5),
        "a": {"auc": float("nan"), "n": np.int64(3), "inf": np.inf, 2: np.bool_(True)},
        "arr": np.array([[1.0, np.nan], [2.0, 3.0]]),
        "t": (np.float64(1.25), None),
    }
    path = write_metrics_json(tmp_path / "sub" / "metrics.json", payload)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data == {
        "a": {"2": True, "auc": None, "inf": None, "n": 3},
        "arr": [[1.0, None], [2.0, 3.0]],
        "b": 0.5,
        "t": [1.25, None],
    }
    assert list(data) == sorted(data) and text.endswith("\n")
    assert not [p for p in path.parent.iterdir() if p.name != "metrics.json"]  # no temp files left
    mean, sd = confusion_matrices([np.array([0, 1])], [np.array([0, 1])])  # one fold: SD undefined -> null
    write_metrics_json(tmp_path / "cm.json", {"mean": mean, "sd": sd})
    assert json.loads((tmp_path / "cm.json").read_text()) == {"mean": [[1.0, 0.0], [0.0, 1.0]], "sd": [[None] * 2] * 2}
