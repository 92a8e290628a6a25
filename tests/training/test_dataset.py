"""One assay's training data: label scaling, repeated stratified folds and the checks of load_assay_data."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from ms2img.errors import ConfigError
from ms2img.render import ImageSet, RenderConfig, image_edges
from ms2img.training.dataset import MIDDLE, LabelScaling, class_summary, load_assay_data, repeated_folds


def write_images(path, ids, size: str = "30x28", seed: int = 0) -> ImageSet:
    config = RenderConfig().with_size(size)
    x_edges, y_edges = image_edges(config)
    h, w = len(y_edges) - 1, len(x_edges) - 1
    images = np.random.default_rng(seed).random((len(ids), h, w), dtype=np.float32)
    imageset = ImageSet(images, np.asarray(ids), x_edges, y_edges, config.to_dict())
    imageset.save(path)
    return imageset


def write_assays(path, table: dict[str, list]) -> None:
    pd.DataFrame(table).to_csv(path, index=False)


# ------------------------------------------------------------------------------------------- scaling


def test_label_scaling_fit_normalize_labels():
    s = LabelScaling.fit([10.0, 20.0, np.nan, 30.0, 110.0])
    assert (s.min, s.max, s.low, s.high) == (10.0, 110.0, 0.4, 0.6)  # NaN ignored
    np.testing.assert_allclose(s.normalize([10, 60, 110]), [0.0, 0.5, 1.0])
    # 0.2 -> low, 0.4 exactly is not below low -> middle, 0.5 middle, 0.6 exactly middle, 0.61 high
    labels = s.labels([30.0, 50.0, 60.0, 70.0, 71.0, 200.0, -50.0])
    assert labels.tolist() == [0, MIDDLE, MIDDLE, MIDDLE, 1, 1, 0]
    assert MIDDLE == -1 and labels.dtype.kind == "i"
    assert s.to_dict() == {"min": 10.0, "max": 110.0, "low": 0.4, "high": 0.6}
    assert LabelScaling.fit([0, 1], low=0.2, high=0.9).labels([0.1, 0.5, 0.95]).tolist() == [0, MIDDLE, 1]


def test_label_scaling_rejects_what_cannot_be_scaled():
    with pytest.raises(ConfigError, match="cannot scale"):
        LabelScaling.fit([5.0, 5.0, 5.0])
    with pytest.raises(ConfigError, match="cannot scale 1"):
        LabelScaling.fit([5.0, np.nan])
    with pytest.raises(ConfigError, match="smaller than"):
        LabelScaling.fit([0.0, 1.0], low=0.7, high=0.3)


def test_class_summary():
    assert class_summary(np.array([0, 1, 1, MIDDLE, 0, 0])) == {"low": 3, "high": 2, "middle": 1}


# ------------------------------------------------------------------------------------------- folds


def _values(n_low=12, n_high=9, n_mid=4, seed=0):
    rng = np.random.default_rng(seed)
    v = np.r_[rng.uniform(0, 30, n_low), rng.uniform(70, 100, n_high), rng.uniform(45, 55, n_mid), 0.0, 100.0]
    return rng.permutation(v)


def test_repeated_folds_test_every_accession_once_per_repeat():
    values = _values()
    folds = repeated_folds(values, n_splits=3, repeats=2, seed=11)
    assert len(folds) == 6
    assert [(f.repeat, f.fold) for f in folds] == [(r, k) for r in range(2) for k in (1, 2, 3)]
    strata = LabelScaling.fit(values).labels(values)
    for r in range(2):
        tests = [f.test for f in folds if f.repeat == r]
        assert sorted(np.concatenate(tests).tolist()) == list(range(values.size))
        for f in folds:
            assert not set(f.train) & set(f.test)
            assert len(f.train) + len(f.test) == values.size
        for t in tests:  # stratified: each test fold holds both classes
            assert {0, 1} <= set(strata[t].tolist())
    first = [tuple(f.test) for f in folds if f.repeat == 0]
    second = [tuple(f.test) for f in folds if f.repeat == 1]
    assert set(first) != set(second), "repeats must shuffle differently"
    again = repeated_folds(values, n_splits=3, repeats=2, seed=11)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(folds, again, strict=True))  # seeded


def test_repeated_folds_name_the_counts_when_a_class_is_too_small():
    values = _values(n_low=10, n_high=1)  # + the 100.0 anchor: 2 high accessions
    with pytest.raises(ConfigError) as info:
        repeated_folds(values, n_splits=5, repeats=1, seed=0)
    message = str(info.value)
    assert "5-fold" in message and "at least 5 accessions per class" in message
    assert "'high': 2" in message and "'low': 11" in message
    assert repeated_folds(values, n_splits=2, repeats=1, seed=0)  # 2 folds fit


# ------------------------------------------------------------------------------------------- loading


@pytest.fixture
def files(tmp_path):
    ids = [f"ACC{i:03d}" for i in range(12)]
    write_images(tmp_path / "images.npz", ids)
    values = [0, 5, 10, 15, 20, 50, 80, 85, 90, 95, 100, 52]
    write_assays(
        tmp_path / "assays.csv",
        {"accession": ids, "DPPH": values, "flat": [3.0] * 12, "TPC": [1.0, None, 2.0, 3.0, None, *range(7)]},
    )
    return tmp_path, ids, np.asarray(values, float)


def test_load_assay_data(files):
    root, ids, values = files
    data = load_assay_data("DPPH", root / "images.npz", root / "assays.csv", n_splits=3, repeats=2, seed=1)
    assert data.accessions.tolist() == ids and np.array_equal(data.values, values)
    assert data.size == "30x28" and len(data.folds) == 6
    x, owner = data.image_input(np.array([3, 1]))
    assert x.shape == (2, 28, 30) and owner.tolist() == [3, 1]
    np.testing.assert_array_equal(x[0], data.images.images[3])
    assert class_summary(data.scaling().labels(data.values)) == {"low": 5, "high": 5, "middle": 2}


def test_unknown_assay_is_a_config_error_listing_the_assays(files):
    root, _, _ = files
    with pytest.raises(ConfigError, match=r"unknown assay 'elastase'.*DPPH, flat, TPC"):
        load_assay_data("elastase", root / "images.npz", root / "assays.csv")


def test_constant_assay_is_a_config_error(files):
    root, _, _ = files
    with pytest.raises(ConfigError, match="assay flat is constant .3 for all 12 accessions"):
        load_assay_data("flat", root / "images.npz", root / "assays.csv", n_splits=2)


def test_accessions_without_an_image_are_named(files):
    root, ids, values = files
    write_assays(root / "more.csv", {"accession": [*ids, "ACC900", "ACC901"], "DPPH": [*values, 1.0, 99.0]})
    with pytest.raises(ConfigError, match=r"2 accession\(s\) with a value have no image.*ACC900.*ACC901"):
        load_assay_data("DPPH", root / "images.npz", root / "more.csv", n_splits=2)


def test_missing_values_are_left_out_with_a_warning(files, caplog):
    root, ids, _ = files
    with caplog.at_level(logging.WARNING, logger="ms2img.training.dataset"):
        data = load_assay_data("TPC", root / "images.npz", root / "assays.csv", n_splits=2)
    assert "TPC: 2 accession(s) without a value are left out" in caplog.text
    assert len(data.accessions) == 10 and "ACC001" not in data.accessions and "ACC004" not in data.accessions
    assert np.isfinite(data.values).all()
    # image rows still point at the right images after the drop
    assert data.image_rows[1].tolist() == [ids.index("ACC002")]


def test_feature_input_follows_the_accession_positions(files):
    root, ids, _ = files
    data = load_assay_data("DPPH", root / "images.npz", root / "assays.csv", n_splits=2)
    table = pd.DataFrame({"f1": [1.0, 2.0], "f2": [3.0, 4.0]}, index=[ids[5], ids[0]])
    data.features["cosine"] = table.reindex(index=data.accessions, fill_value=0.0)
    x = data.feature_input("cosine", np.array([0, 5, 1]))
    assert x.dtype == np.float32 and x.tolist() == [[2.0, 4.0], [1.0, 3.0], [0.0, 0.0]]


def test_companion_labels_are_the_other_assays_scaled_on_the_same_accessions(files):
    root, _, _ = files
    data = load_assay_data("DPPH", root / "images.npz", root / "assays.csv", n_splits=2)
    assert data.companions.columns.tolist() == ["flat", "TPC"]
    every = data.companion_labels(np.arange(12))
    assert np.isnan(every[:, 0]).all()  # flat: one value, no classes
    nan = np.nan  # TPC 1, -, 2, 3, -, 0..6 -> min 0, max 6: low < 2.4, high > 3.6, not measured: NaN
    np.testing.assert_array_equal(every[:, 1], [0, nan, 0, nan, nan, 0, 0, 0, nan, 1, 1, 1])
    some = data.companion_labels(np.array([0, 2, 3]))  # TPC 1, 2, 3: scaled on these three alone
    np.testing.assert_array_equal(some[:, 1], [0, nan, 1])
