"""Figures: each writes a readable PNG, carries the labels the paper's figures need, and old call forms work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ms2img import plots
from ms2img.models.baselines import pca_scores
from ms2img.models.oplsda import oplsda

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path, min_w=200, min_h=200):
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as im:
        assert im.width >= min_w and im.height >= min_h
    return path


def _texts(fig_path_fn, monkeypatch):
    """Run a plot function and return every text string drawn (titles, labels, legends, annotations)."""
    captured = []
    from matplotlib.figure import Figure

    original = Figure.savefig

    def spy(self, *a, **k):
        for t in self.findobj(lambda o: hasattr(o, "get_text")):
            captured.append(t.get_text())
        return original(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", spy)
    fig_path_fn()
    return "\n".join(captured)


def test_fingerprint_has_mz_axes_colorbar_and_title(tmp_path, monkeypatch):
    h, w = 14, 15
    img = np.zeros((h, w), np.float32)
    img[2, 10] = 1.0
    img[0, 3] = 0.2
    xe, ye = np.linspace(100, 1500, w + 1), np.linspace(0, 1500, h + 1)
    title = plots.fingerprint_title("ACC0003", "DPPH", 71.2, 1, "%")
    assert title == "ACC0003 - DPPH 71.2 % (high)"
    out = tmp_path / "fp.png"
    text = _texts(lambda: plots.plot_fingerprint(img, xe, ye, out, title), monkeypatch)
    _png(out)
    assert "Precursor m/z" in text and "Fragment m/z" in text and "ACC0003 - DPPH 71.2 % (high)" in text
    assert "pixel intensity" in text  # the colour bar
    with pytest.raises(ValueError, match="edges"):
        plots.plot_fingerprint(img, xe[:-1], ye, tmp_path / "bad.png")


def test_resolution_study_keeps_its_call(tmp_path):
    hist = [{"loss": [0.7, 0.5], "accuracy": [0.5, 0.7], "val_loss": [0.7, 0.6], "val_accuracy": [0.5, 0.6]}]
    folds = [{"auc": 0.8, "balanced_accuracy": 0.7}]  # stats.SCORES names
    res = {"150x140": {"histories": hist}, "75x70": {"histories": hist, "fold_metrics": folds}}
    _png(plots.plot_resolution_study(res, tmp_path / "res.png", title="DPPH"), min_h=500)


def test_oof_predictions_units_cutoffs_spearman_and_middle_note(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    vals = rng.uniform(10, 90, 40)
    lab = np.where(vals < 40, 0, np.where(vals > 60, 1, -1))
    prob = np.clip((vals - 10) / 80 + rng.normal(0, 0.1, 40), 0, 1)
    out = tmp_path / "oof.png"
    text = _texts(
        lambda: plots.plot_oof_predictions(
            vals, prob, lab, out, value_label="DPPH", units="% scavenging", low_cutoff=42.0, high_cutoff=58.0
        ),
        monkeypatch,
    )
    _png(out)
    assert "DPPH (% scavenging)" in text and "low cut-off" in text and "high cut-off" in text
    assert "Spearman ρ = " in text and "left out of training" in text
    assert plots.spearman(vals, vals * 2) == pytest.approx(1.0)
    assert np.isnan(plots.spearman([1, 2], [1, 2]))


def test_predictions_old_call_and_new_keywords(tmp_path, monkeypatch):
    acc = [f"A{i}" for i in range(12)]
    values = np.linspace(0, 100, 12)
    y_true = np.array([0] * 4 + [-1] * 4 + [1] * 4)
    y_pred = (values > 50).astype(int)
    _png(plots.plot_predictions(acc, values, y_pred, tmp_path / "old.png", value_label="DPPH", y_true=y_true.clip(0)))
    text = _texts(
        lambda: plots.plot_predictions(
            acc,
            values,
            y_pred,
            tmp_path / "new.png",
            value_label="DPPH",
            y_true=y_true,
            units="%",
            low_cutoff=40,
            high_cutoff=60,
        ),
        monkeypatch,
    )
    assert "DPPH (%)" in text and "mid-range" in text and "left out of training" in text
    with pytest.raises(ValueError):
        plots.plot_predictions(["a"], [1.0, 2.0], [1], tmp_path / "bad.png")


def test_roc_has_mean_curve_and_band(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    folds = [(np.r_[np.zeros(5), np.ones(5)], rng.random(10)) for _ in range(10)]
    text = _texts(lambda: plots.plot_roc(folds, tmp_path / "roc.png", title="DPPH"), monkeypatch)
    assert "Mean (AUC = " in text and "±1 SD" in text and "Pooled" in text
    curve = plots.mean_roc([{"fpr": np.array([0, 1.0]), "tpr": np.array([0, 1.0])}] * 2)
    np.testing.assert_allclose(curve["tpr"], curve["fpr"])
    _png(plots.plot_roc(folds[:3], tmp_path / "roc3.png"))


def test_confusion_mean_sd(tmp_path, monkeypatch):
    text = _texts(
        lambda: plots.plot_confusion([[5.2, 1.0], [0.8, 6.0]], [[1, 0.5], [0.4, 1.1]], tmp_path / "cm.png"),
        monkeypatch,
    )
    assert "5.2 ± 1.0" in text


def test_metric_boxplots_from_folds_csv(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    rows = [
        {
            "family": fam,
            "repeat": r,
            "fold": f,
            "auc": rng.random(),
            "balanced_accuracy": rng.random(),
            "mcc": rng.uniform(-1, 1),
            "f1": rng.random(),
            "precision_top10": np.nan,  # a fold of 8 has a top 10% of one accession: withheld, no empty panel
            "threshold": 0.5,
            "n_test": 8,
        }
        for fam in ("cnn", "rf-image", "rf-cosine")
        for r in range(2)
        for f in range(3)
    ]
    csv = tmp_path / "folds.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    metrics = (*plots.FOLD_METRICS, "precision_top10")
    text = _texts(
        lambda: plots.plot_metric_boxplots(csv, tmp_path / "box.png", title="DPPH", metrics=metrics), monkeypatch
    )
    for fam in ("cnn", "rf-image", "rf-cosine"):
        assert fam in text
    assert "MCC" in text and "ROC AUC" in text and "Precision, top 10%" not in text
    with pytest.raises(ValueError):
        plots.plot_metric_boxplots(pd.DataFrame({"x": [1]}), tmp_path / "bad.png")


def test_pca_oplsda_permutation_labels(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 30))
    y = np.repeat([0, 1], 20)
    X[:, :3] += y[:, None]
    pca = pca_scores(X, y)
    text = _texts(lambda: plots.plot_pca(pca, y, tmp_path / "pca.png", assay="DPPH"), monkeypatch)
    assert "DPPH" in text and "variance explained" in text
    assert f"{100 * pca.explained_variance_ratio[0]:.1f}%" in text
    res = oplsda(X, y, permutations=20, seed=1)
    text = _texts(lambda: plots.plot_oplsda(res, y, tmp_path / "o.png", assay="DPPH"), monkeypatch)
    assert "R²Y" in text and "Q²Y" in text and "DPPH" in text
    text = _texts(lambda: plots.plot_permutation(res, tmp_path / "perm.png", assay="DPPH"), monkeypatch)
    assert "intercept" in text and "observed R²Y" in text and "permuted (n=20)" in text
    icpt = plots.permutation_intercepts(res)
    assert np.isfinite(icpt["r2y"]) and np.isfinite(icpt["q2y"])
    _png(tmp_path / "perm.png", min_w=1000)
