"""Metrics against scikit-learn, mean/SD summaries, metrics files and the evaluation figures."""

from __future__ import annotations

import json
import math
import warnings

import matplotlib.image as mpimg
import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ms2img import evaluate
from ms2img.evaluate import (
    binary_metrics,
    confusion_matrices,
    cv_report,
    final_accuracy_gap,
    history_curve,
    pooled_roc,
    resolution_table,
    summarize,
    write_metrics_json,
)

Y_TRUE = np.array([0, 0, 1, 1, 0, 1, 1, 0, 1, 0])
Y_PROB = np.array([0.1, 0.6, 0.8, 0.4, 0.2, 0.9, 0.5, 0.3, 0.7, 0.55])


def _folds(seed=0, n_folds=5, n=20):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_folds):
        y = np.array([0, 1] * (n // 2))
        p = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, n), 0, 1)
        out.append((y, p))
    return out


def _history(rng, epochs):
    t = np.arange(epochs)
    return {
        "loss": list(0.7 * np.exp(-t / 10) + rng.normal(0, 0.01, epochs)),
        "val_loss": list(0.7 * np.exp(-t / 20) + 0.1 + rng.normal(0, 0.02, epochs)),
        "accuracy": list(np.minimum(1, 0.5 + t / (2 * epochs)) + rng.normal(0, 0.01, epochs)),
        "val_accuracy": list(0.5 + t / (3 * epochs) + rng.normal(0, 0.02, epochs)),
    }


# ---------------------------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------------------------


def test_binary_metrics_match_sklearn():
    m = binary_metrics(Y_TRUE, Y_PROB)
    y_pred = (Y_PROB > 0.5).astype(int)  # 0.5 itself is class 0 (strictly greater, like Keras)
    assert y_pred[6] == 0
    assert m["accuracy"] == pytest.approx(accuracy_score(Y_TRUE, y_pred))
    assert m["precision"] == pytest.approx(precision_score(Y_TRUE, y_pred))
    assert m["recall"] == pytest.approx(recall_score(Y_TRUE, y_pred))
    assert m["f1"] == pytest.approx(f1_score(Y_TRUE, y_pred))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y_TRUE, Y_PROB))
    assert set(m) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert all(type(v) is float for v in m.values())
    # hand-computed: predictions 0,1,1,0,0,1,0,0,1,1 -> TP 3, FP 2, FN 2, TN 3
    assert (m["accuracy"], m["precision"], m["recall"]) == pytest.approx((0.6, 0.6, 0.6))
    m2 = binary_metrics(Y_TRUE, Y_PROB, threshold=0.45)
    assert m2["recall"] == pytest.approx(recall_score(Y_TRUE, (Y_PROB > 0.45).astype(int)))


def test_binary_metrics_one_class_and_zero_division():
    with pytest.warns(UserWarning, match="ROC AUC is undefined"):
        m = binary_metrics([1, 1, 1], [0.2, 0.3, 0.4])
    assert math.isnan(m["roc_auc"])
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0 and m["accuracy"] == 0.0


def test_binary_metrics_bad_input():
    with pytest.raises(ValueError, match="y_true has 2 values but y_prob has 3"):
        binary_metrics([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0/1"):
        binary_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics([0, 1], [0.1, np.nan])


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


def test_pooled_roc_and_cv_report():
    folds = _folds()
    yt = [f[0] for f in folds]
    yp = [f[1] for f in folds]
    pooled = pooled_roc(yt, yp)
    assert pooled["auc"] == pytest.approx(roc_auc_score(np.concatenate(yt), np.concatenate(yp)))
    assert pooled["fpr"][0] == 0 and pooled["tpr"][-1] == 1
    rep = cv_report(yt, yp)
    assert len(rep["folds"]) == 5 and rep["folds"][0]["n_test"] == 20
    assert rep["summary"]["roc_auc"]["mean"] == pytest.approx(np.mean([roc_auc_score(a, b) for a, b in folds]))
    assert rep["pooled_auc"] == pytest.approx(pooled["auc"])
    assert rep["confusion"]["mean"].sum() == pytest.approx(20)
    with pytest.warns(UserWarning, match="all samples are one class"):
        assert math.isnan(pooled_roc([[1, 1]], [[0.2, 0.3]])["auc"])


def test_history_curves_different_lengths():
    h = [{"loss": [1.0, 0.5, 0.2], "val_loss": [1.0, 0.8]}, {"loss": [0.8, 0.3], "binary_accuracy": [0.5, 0.7]}]
    mean, sd, n = history_curve(h, "loss")
    np.testing.assert_allclose(mean, [0.9, 0.4, 0.2])
    np.testing.assert_allclose(n, [2, 2, 1])
    assert sd[0] == pytest.approx(np.std([1.0, 0.8], ddof=1)) and math.isnan(sd[2])
    acc, _, _ = history_curve(h, "accuracy")  # "binary_accuracy" is found
    np.testing.assert_allclose(acc, [0.5, 0.7])
    empty, _, _ = history_curve(h, "accuracy", validation=True)
    assert empty.size == 0


def test_gap_and_resolution_table():
    rng = np.random.default_rng(0)
    hist = [_history(rng, 30) for _ in range(3)]
    gap = final_accuracy_gap(hist, window=5)
    assert gap["gap"] == pytest.approx(gap["train_accuracy"] - gap["val_accuracy"])
    assert gap["train_accuracy"] == pytest.approx(np.mean([np.mean(h["accuracy"][-5:]) for h in hist]))
    results = {
        "300x280": {"fold_metrics": [{"accuracy": 0.8, "f1": 0.7, "roc_auc": 0.85}] * 2, "histories": hist},
        "75x70": {"summary": {"accuracy": {"mean": 0.6, "sd": 0.1}, "roc_auc": {"mean": 0.7, "sd": 0.05}}},
        "150x140": {"fold_metrics": [{"accuracy": 0.9, "f1": 0.88, "roc_auc": 0.95}, {"accuracy": 0.8}]},
    }
    table = resolution_table(results)
    assert table["size"].tolist() == ["75x70", "150x140", "300x280"]
    assert {"auc_mean", "auc_sd", "accuracy_mean", "accuracy_sd", "f1_mean", "train_val_gap"} <= set(table.columns)
    assert table.loc[1, "accuracy_mean"] == pytest.approx(0.85)
    assert table.loc[0, "auc_sd"] == 0.05 and math.isnan(table.loc[0, "f1_mean"])
    assert table.loc[2, "train_val_gap"] == pytest.approx(gap["gap"])


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
    rep = cv_report([f[0] for f in _folds()], [f[1] for f in _folds()])
    write_metrics_json(tmp_path / "cv.json", rep)
    assert json.loads((tmp_path / "cv.json").read_text())["confusion"]["mean"][0][0] >= 0
    with pytest.raises(TypeError, match="cannot write object"):
        write_metrics_json(tmp_path / "x.json", {"x": object()})


# ---------------------------------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------------------------------


def _assert_png(path, min_w=200, min_h=150):
    assert path.is_file() and path.stat().st_size > 1000
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= min_h and img.shape[1] >= min_w
    assert float(img[..., :3].std()) > 0  # not a blank canvas
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # atomic: no temp leftovers


def test_plot_roc(tmp_path):
    folds = _folds()
    folds.append((np.array([1, 1, 1]), np.array([0.6, 0.7, 0.2])))  # a one-class fold is skipped, not fatal
    out = evaluate.plot_roc(folds, tmp_path / "roc.png", title="DPPH")
    assert out == tmp_path / "roc.png"
    _assert_png(out)


def test_plot_confusion(tmp_path):
    out = evaluate.plot_confusion(
        np.array([[10.2, 1.4], [2.0, 9.8]]), np.array([[1.1, 0.5], [0.7, 1.3]]), tmp_path / "cm.png"
    )
    _assert_png(out)
    _assert_png(evaluate.plot_confusion(np.zeros((2, 2)), None, tmp_path / "cm0.png"))
    with pytest.raises(ValueError):
        evaluate.plot_confusion(np.zeros((2, 2)), np.zeros((3, 3)), tmp_path / "bad.png")


def test_plot_learning_curves(tmp_path):
    rng = np.random.default_rng(1)
    hist = [_history(rng, e) for e in (30, 24, 30, 18, 27)]  # early stopping: different lengths

    class History:  # keras.callbacks.History-like
        def __init__(self, h):
            self.history = h

    _assert_png(evaluate.plot_learning_curves(hist, tmp_path / "lc.png", title="DPPH 150x140"))
    _assert_png(evaluate.plot_learning_curves([History(h) for h in hist], tmp_path / "lc2.png"))
    _assert_png(evaluate.plot_learning_curves({"loss": [0.7, 0.5, 0.4]}, tmp_path / "lc3.png"))


def test_plot_resolution_study(tmp_path):
    rng = np.random.default_rng(2)
    results = {
        size: {"histories": [_history(rng, 20) for _ in range(3)], "fold_metrics": _fold_metrics(rng)}
        for size in ("300x280", "75x70", "150x140")
    }
    _assert_png(evaluate.plot_resolution_study(results, tmp_path / "res.png"), min_h=600)


def _fold_metrics(rng, n=5, level=0.8):
    return [{k: float(np.clip(level + rng.normal(0, 0.05), 0, 1)) for k in evaluate.METRICS} for _ in range(n)]


def test_plot_metric_comparison(tmp_path):
    rng = np.random.default_rng(3)
    results = {"CNN": _fold_metrics(rng, level=0.85), "RF (cosine)": summarize(_fold_metrics(rng, level=0.75))}
    _assert_png(evaluate.plot_metric_comparison(results, tmp_path / "cmp.png"))


def test_plot_predictions(tmp_path):
    rng = np.random.default_rng(4)
    for n in (12, 150):
        values = rng.uniform(0, 100, n)
        y_true = (values > 50).astype(int)
        y_pred = y_true.copy()
        y_pred[:2] = 1 - y_pred[:2]
        acc = [f"GS{i:04d}" for i in range(n)]
        _assert_png(evaluate.plot_predictions(acc, values, y_pred, tmp_path / f"pred{n}.png", y_true=y_true))
    with pytest.raises(ValueError, match="equal, non-zero"):
        evaluate.plot_predictions(["a"], [1.0, 2.0], [1], tmp_path / "bad.png")


def test_metrics_import_does_not_need_matplotlib_plots():
    # plot names resolve lazily; unknown names still raise AttributeError
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert callable(evaluate.plot_roc)
    with pytest.raises(AttributeError):
        evaluate.plot_nothing  # noqa: B018
