"""Per-assay training orchestration: nested CV, final model, metrics/plots, resolution study (no MLflow here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ms2img.errors import ConfigError
from ms2img.params import load_params
from ms2img.render import RenderConfig, image_edges
from ms2img.train import choose_hyperparameters, prepare_from_params, resolution_study, train_assay

REPO_ROOT = Path(__file__).resolve().parents[1]
N_ACCESSIONS = 24


def _tiny_params() -> dict:
    params = load_params(REPO_ROOT / "params.yaml", profile="quick")
    params["cv"]["folds"] = 3
    params["cnn"]["epochs"] = 2
    params["tune"].update(trials=1, epochs=1)
    return params


def _write_images(path, size: str, rng: np.random.Generator) -> None:
    """Images whose bright patch marks the high class, saved with the real ImageSet writer."""
    from ms2img.render import ImageSet

    config = RenderConfig().with_size(size)
    x_edges, y_edges = image_edges(config)
    h, w = len(y_edges) - 1, len(x_edges) - 1
    images = rng.random((N_ACCESSIONS, h, w), dtype=np.float32) * 0.1
    images[N_ACCESSIONS // 2 :, h // 4 : h // 2, w // 2 : 3 * w // 4] += 0.8
    ids = np.array([f"ACC{i:03d}" for i in range(N_ACCESSIONS)])
    ImageSet(images, ids, x_edges, y_edges, config.to_dict()).save(path)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(0)
    for size in ("30x28", "45x42"):
        _write_images(root / f"{size}.npz", size, rng)
    values = np.r_[rng.uniform(0, 0.3, N_ACCESSIONS // 2), rng.uniform(0.7, 1.0, N_ACCESSIONS // 2)]
    pd.DataFrame({"accession": [f"ACC{i:03d}" for i in range(N_ACCESSIONS)], "DPPH": values}).to_csv(
        root / "assays.csv", index=False
    )
    return root


def test_folds_never_split_an_accession_and_cover_every_image(project):
    data = prepare_from_params(project / "30x28.npz", project / "assays.csv", "DPPH", _tiny_params())
    tested = np.concatenate([test for _, test in data.folds])
    assert sorted(tested) == list(range(len(data.y))), "every labelled image is tested exactly once"
    for train, test in data.folds:
        assert not set(data.groups[train]) & set(data.groups[test]), "an accession is on both sides of a fold"


def test_train_assay_writes_metrics_plots_and_model(project, tmp_path):
    out = train_assay(
        assay="DPPH",
        images_path=project / "30x28.npz",
        assays_csv=project / "assays.csv",
        params=_tiny_params(),
        metrics_dir=tmp_path / "metrics",
        plots_dir=tmp_path / "plots",
        models_dir=tmp_path / "models",
        workdir=tmp_path / "kt",
        track=False,
    )
    metrics = json.loads((tmp_path / "metrics" / "DPPH.json").read_text())
    assert metrics["class_counts"] == {"low": 12, "high": 12}
    assert len(metrics["cnn"]["folds"]) == 3
    assert 0.0 <= metrics["cnn"]["summary"]["roc_auc"]["mean"] <= 1.0
    assert set(metrics["final_hp"]) >= {"conv_layers", "filters", "learning_rate"}
    for name in ("roc", "confusion", "learning_curves", "predictions"):
        assert (tmp_path / "plots" / "DPPH" / f"{name}.png").stat().st_size > 1000, name
    assert len(list((tmp_path / "plots" / "DPPH" / "examples").glob("*.png"))) == 6
    assert (tmp_path / "models" / "DPPH" / "cnn.keras").exists()
    assert out["n_accessions"] == N_ACCESSIONS


def test_unknown_assay_fails_before_training(project, tmp_path):
    with pytest.raises(ConfigError, match="elastase"):
        train_assay(
            assay="elastase",
            images_path=project / "30x28.npz",
            assays_csv=project / "assays.csv",
            params=_tiny_params(),
            metrics_dir=tmp_path / "metrics",
            track=False,
        )
    assert not (tmp_path / "metrics").exists(), "nothing may be written when the input is rejected"


def test_resolution_study_compares_sizes(project, tmp_path):
    params = _tiny_params()
    out = resolution_study(
        assay="DPPH",
        image_paths={"30x28": project / "30x28.npz", "45x42": project / "45x42.npz"},
        assays_csv=project / "assays.csv",
        params=params,
        metrics_dir=tmp_path / "metrics",
        plots_dir=tmp_path / "plots",
        track=False,
    )
    assert {row["size"] for row in out["table"]} == {"30x28", "45x42"}
    assert (tmp_path / "plots" / "DPPH" / "resolution_study.png").stat().st_size > 1000
    assert json.loads((tmp_path / "metrics" / "DPPH_resolution.json").read_text())["assay"] == "DPPH"


def test_final_hyperparameters_come_from_the_best_inner_score():
    best = [{"hp": {"filters": 8}, "inner_score": 0.6}, {"hp": {"filters": 16}, "inner_score": 0.9}]
    assert choose_hyperparameters(best) == {"filters": 16}
    assert choose_hyperparameters([{"hp": {"filters": 8}, "inner_score": None}]) == {"filters": 8}
