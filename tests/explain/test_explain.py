"""ms2img.explain: occlusion / permutation attribution, drivers from boxes, evaluation, the explain command."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import load_benchmark
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from ms2img.explain.attribution import (
    explain_images,
    explain_one,
    make_windows,
    occlusion,
    permutation_importance,
    relevant_pixels,
    window_boxes,
)
from ms2img.explain.drivers import collect_precursors, consensus_spectrum, find_drivers, group_by_precursor
from ms2img.io.schema import write_events
from ms2img.models.baselines import FlattenImages
from ms2img.models.family import FamilyModel
from ms2img.render import RenderConfig, render_events

# two planted actives (main ion, RT, fragments) and background; the actives are abundant in high accessions
ACTIVES = [(289.0712, 2.42, [109.0295, 123.0451, 245.0819]), (577.1352, 2.17, [289.0718, 407.0772, 425.0877])]
BACKGROUND = [(150 + 37.3 * k, 1.0 + 0.37 * k, [60 + 11.0 * k, 90 + 13.0 * k]) for k in range(20)]


class Linear:
    """P(high) = sigmoid of the sum of pixel block (rows 2-3, cols 4-5) minus 0.5: an exactly known attribution."""

    def predict_proba(self, x):
        s = np.asarray(x)[:, 2:4, 4:6].sum(axis=(1, 2))
        p = 1 / (1 + np.exp(-(s - 0.5)))
        return np.column_stack([1 - p, p])


def test_occlusion_finds_the_block_the_model_reads():
    rng = np.random.default_rng(0)
    x = rng.random((12, 8, 10)).astype(np.float32)
    y = (x[:, 2:4, 4:6].sum(axis=(1, 2)) > 2).astype(int)
    res = occlusion(lambda a: Linear().predict_proba(a)[:, 1], x, y, block=2)
    boxes = window_boxes(res, np.linspace(100, 200, 11), np.linspace(0, 80, 9))
    top = boxes.iloc[0]
    assert (top.row0, top.row1, top.col0, top.col1) == (2, 4, 4, 6)
    assert top.contribution > 0 and top.precursor_mz_lo == pytest.approx(140) and top.fragment_mz_hi == 40
    assert np.allclose(boxes["importance"].iloc[1:], 0)  # nothing else is read
    assert res.pixel_map().shape == (8, 10) and res.pixel_map()[2, 4] == pytest.approx(top.importance)


def test_windows_cover_the_image_and_skip_empty_ones():
    w = make_windows((7, 5), block=3)
    cover = np.zeros((7, 5), int)
    for r0, r1, c0, c1 in w:
        cover[r0:r1, c0:c1] += 1
    assert (cover == 1).all()
    x = np.zeros((3, 7, 5), np.float32)
    x[:, 0, 0] = 1
    res = occlusion(lambda a: a[:, 0, 0].astype(float), x, block=3)
    assert len(res.windows) == 1 and res.contribution[:, 0] == pytest.approx(1.0)


def _rf_images(n=30, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 14, 15)).astype(np.float32) * 0.1
    y = np.arange(n) % 2
    x[y == 1, 5:7, 8:10] += 1.0
    est = Pipeline([("flatten", FlattenImages()), ("rf", RandomForestClassifier(40, random_state=0))]).fit(x, y)
    return x, y, est


def test_forest_relevance_mask_is_exact_and_explain_one_is_fast():
    x, y, est = _rf_images()
    mask = relevant_pixels(est, x.shape[1:])
    assert mask is not None and mask[5:7, 8:10].any() and mask.sum() < mask.size
    assert relevant_pixels(Pipeline([("m", LogisticRegression())]), (2, 2)) is None
    card = {"assay": "A", "render": {}, "threshold": 0.5}
    model = FamilyModel("rf-image", card, est, [])
    full = occlusion(lambda a: est.predict_proba(a)[:, 1], x, y, block=2)
    fast = explain_images(model, x, y, block=2)
    got = dict(zip(map(tuple, fast.windows.tolist()), fast.importance, strict=True))
    for w, v in zip(map(tuple, full.windows.tolist()), full.importance, strict=True):
        assert got.get(w, 0.0) == pytest.approx(v, abs=1e-6)  # skipped windows change nothing (float32)
    x_edges, y_edges = np.linspace(100, 1500, 16), np.linspace(0, 1500, 15)
    model.predict_proba(x[:1])
    t = time.perf_counter()
    for _ in range(5):
        model.predict_proba(x[1:2])
    plain = (time.perf_counter() - t) / 5
    t = time.perf_counter()
    for _ in range(5):
        out = explain_one(model, x[1], x_edges, y_edges, top=3)
    explained = (time.perf_counter() - t) / 5
    assert out and out[0]["supports"] == "high" and out[0]["contribution"] > 0
    assert {"precursor_mz_lo", "precursor_mz_hi", "fragment_mz_lo", "fragment_mz_hi", "probability"} <= set(out[0])
    assert x_edges[8] - 1e-6 <= out[0]["precursor_mz_lo"] < x_edges[10]
    assert explained < 3 * plain + 0.05  # ~1.3x measured; the slack absorbs a busy test machine


def test_permutation_importance_ranks_the_informative_feature():
    rng = np.random.default_rng(3)
    x = rng.random((40, 6)).astype(np.float32) * 1000
    y = np.arange(40) % 2
    x[y == 1, 2] += 3000
    est = RandomForestClassifier(50, random_state=0).fit(np.log1p(x), y)
    model = FamilyModel("rf-cosine", {"assay": "A"}, est, [])
    imp = permutation_importance(model, x, y, n_repeats=3)
    assert imp["column"].iloc[0] == 2 and imp["importance"].iloc[0] > 0.05
    assert set(imp["column"]) <= set(range(6))


def test_clusters_and_consensus():
    mz = np.array([500.0, 500.002, 500.0, 600.0, 500.001])
    rt = np.array([2.0, 2.03, 5.0, 2.0, 2.05])
    lab = group_by_precursor(mz, rt, mz_ppm=10, rt_tol_min=0.1)
    assert lab[0] == lab[1] == lab[4] and len(set(lab)) == 3
    cmz, cint = consensus_spectrum(
        [np.array([100.0, 200.0]), np.array([100.004, 300.0]), np.array([100.002])],
        [np.array([1.0, 0.5]), np.array([0.8, 0.1]), np.array([1.0])],
        min_share=0.5,
    )
    assert len(cmz) == 1 and cmz[0] == pytest.approx(100.002, abs=0.003) and cint[0] == 100


# ------------------------------------------------------------------------------------------- a tiny cohort
def _events(n: int = 24, seed: int = 0) -> tuple[pd.DataFrame, dict[str, int]]:
    rng = np.random.default_rng(seed)
    frames, labels = [], {}
    for i in range(n):
        acc = f"ACC{i + 1:04d}"
        label = i % 2
        labels[acc] = label
        for r in range(2):
            rows = []
            comps = [(c, 4e5 * (3.0 if label else 0.3) * rng.lognormal(0, 0.2)) for c in ACTIVES]
            comps += [(c, 5e5 * rng.lognormal(0, 0.3)) for c in BACKGROUND]
            comps += [((1201.5, 6.5, [301.0, 603.1]), 5e6)]  # a steady major constituent keeps the scale
            comps += [((ACTIVES[0][0] + 46.005479, ACTIVES[0][1], [ACTIVES[0][0]]), comps[0][1] * 0.1)]  # formate
            comps += [((ACTIVES[0][0] + 1.003355, ACTIVES[0][1], [ACTIVES[0][2][0]]), comps[0][1] * 0.15)]  # M+1
            for k, ((mz, rt, frags), height) in enumerate(comps):
                for j, f in enumerate(frags):
                    rows.append((f"F{k}", mz * (1 + rng.normal(0, 2e-6)), rt + rng.normal(0, 0.01), height, f,
                                 1000.0 * (j + 1)))  # fmt: skip
            a = np.array(rows, dtype=object)
            frames.append(
                pd.DataFrame(
                    {
                        "accession": acc,
                        "replicate": f"{acc}_r{r + 1}",
                        "feature_id": a[:, 0].astype(str),
                        "precursor_mz": a[:, 1].astype(float),
                        "rt_min": a[:, 2].astype(float),
                        "precursor_intensity": a[:, 3].astype(float),
                        "fragment_mz": a[:, 4].astype(float),
                        "fragment_intensity": a[:, 5].astype(float),
                        "polarity": "negative",
                    }
                )
            )
    return pd.concat(frames, ignore_index=True), labels


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """events/, images/, models/A/rf-image/, reports/A/{selection.json,oof.csv}, truth.csv of a tiny cohort."""
    root = tmp_path_factory.mktemp("explain")
    events, labels = _events()
    (root / "events").mkdir()
    for acc, g in events.groupby("accession"):
        write_events(g, root / "events" / f"{acc}.parquet")
    cfg = RenderConfig(width=30, height=28)
    ims = render_events(events, cfg, progress=False)
    ims.save(root / "images" / "30x28.npz")
    y = np.array([labels[a] for a in ims.ids])
    est = Pipeline([("flatten", FlattenImages()), ("rf", RandomForestClassifier(60, random_state=0))]).fit(
        ims.images, y
    )
    FamilyModel("rf-image", {"assay": "A", "render": ims.config}, est, list(ims.ids)).save(root / "models/A/rf-image")
    (root / "reports/A").mkdir(parents=True)
    (root / "reports/A/selection.json").write_text(json.dumps({"winner": "rf-image"}))
    oof = pd.DataFrame({"accession": ims.ids, "repeat": 0, "fold": np.arange(len(y)) % 3, "family": "rf-image",
                        "probability": 0.5, "value": y, "normalized": y, "label": y})  # fmt: skip
    oof.to_csv(root / "reports/A/oof.csv", index=False)
    truth = pd.DataFrame({"assay": "A", "compound": ["c1", "c2"], "precursor_mz": [a[0] for a in ACTIVES],
                          "rt_min": [a[1] for a in ACTIVES], "weight": [0.6, 0.4],
                          "library_name": ["Catechin", "Procyanidin B2"]})  # fmt: skip
    truth.to_csv(root / "truth.csv", index=False)
    return root


def test_drivers_recover_the_planted_actives_and_fold_their_ions(project):
    events = pd.concat([pd.read_parquet(p) for p in sorted((project / "events").glob("*.parquet"))])
    labels = dict(pd.read_csv(project / "reports/A/oof.csv")[["accession", "label"]].values)
    model = FamilyModel.load(project / "models/A/rf-image")
    from ms2img.render import ImageSet

    ims = ImageSet.load(project / "images/30x28.npz")
    y = np.array([labels[a] for a in ims.ids])
    boxes = window_boxes(explain_images(model, ims.images, y, block=2), ims.x_edges, ims.y_edges)
    drivers = find_drivers(boxes, collect_precursors(events), labels)
    top2 = drivers.head(2)
    assert sorted(np.round(top2["precursor_mz"], 2)) == [289.07, 577.14]
    assert (top2["direction"] == "up").all() and (top2["fold_change"] > 3).all()
    cat = drivers[np.isclose(drivers["precursor_mz"], 289.0712, atol=0.01)].iloc[0]
    assert "[M+FA-H]-" in cat["adducts"] and "M+1" in cat["adducts"]  # one compound, one driver
    assert not np.isclose(drivers["precursor_mz"], 335.0767, atol=0.01).any()
    assert cat["n_accessions"] == 24 and "109.0295" in cat["consensus_spectrum"]
    # a cut keeps the strongest whatever their direction, then ranks up first: a cut after the up-first order hid
    # every down driver of a real cohort behind 50 weak up ones
    k = 4
    strongest = drivers.sort_values(["conditional_importance", "importance"], ascending=False).head(k)
    cut = find_drivers(boxes, collect_precursors(events), labels, top=k)
    assert sorted(cut["cluster"]) == sorted(strongest["cluster"]) and cut["rank"].tolist() == list(range(1, k + 1))
    assert (drivers.head(k)["direction"] == "up").all() and (cut["direction"] == "down").any()  # here: one of 4
    assert list(cut["direction"]) == sorted(cut["direction"], key=lambda d: d != "up")


def test_explain_assay_writes_the_report(project):
    from ms2img.explain.pipeline import DRIVER_COLUMNS, ExplainConfig, explain_assay

    res = explain_assay("A", project / "models", project / "reports", project / "images", project / "events",
                        assays_csv=None, config=ExplainConfig(block=2, top=10))  # fmt: skip
    df = pd.read_csv(res.paths["csv"], keep_default_na=False)
    assert list(df.columns) == DRIVER_COLUMNS and len(df) <= 10
    assert res.paths["png"].stat().st_size > 10_000
    meta = json.loads(res.paths["json"].read_text())
    assert meta["attribution"] == "held-out refits" and meta["family"] == "rf-image" and meta["boxes"]
    truth = pd.read_csv(project / "truth.csv", keep_default_na=False)
    score = load_benchmark("explain_truth").precision_at_k(df, truth, "A", k=2)
    assert score["precision"] == 1.0 and score["distinct_actives"] == 2 and score["recall_weight"] == 1.0
    res2 = explain_assay("A", project / "models", project / "reports", project / "images", project / "events",
                         assays_csv=None, config=ExplainConfig(block=2, top=10, refit=False))  # fmt: skip
    assert res2.meta["attribution"] == "in-sample final model"


def test_cli_explain(project, monkeypatch, capsys):
    from ms2img.cli import main

    monkeypatch.chdir(project)
    dirs = ["--images-dir", "images", "--events-dir", "events", "--params", "none.yaml", "--no-track"]
    rc = main(["explain", "--assay", "A", "--block", "2", "--top", "5", *dirs])
    assert rc == 0
    out = capsys.readouterr().out
    assert "A: 5 drivers of the rf-image champion" in out and "#1 m/z" in out
    rc = main(["explain", "--assay", "B", *dirs])
    err = capsys.readouterr().err
    assert rc == 2 and "selection.json" in err and "\n" == err[-1] and err.count("\n") == 1
    stage_csv = project / "reports" / "A" / "drivers.csv"
    before = stage_csv.read_bytes()
    assert main(["explain", "--assay", "A", "--block", "2", "--top", "3", "--out-dir", "side", *dirs]) == 0
    assert len(pd.read_csv(project / "side" / "drivers.csv")) == 3  # --out-dir was ignored: the stage's file changed
    assert stage_csv.read_bytes() == before


def test_a_missing_model_card_says_to_train_first(tmp_path):
    """Not a FileNotFoundError dressed as an 'unreadable model card': nothing was trained there yet."""
    from ms2img.errors import InputFileError

    with pytest.raises(InputFileError, match="no trained model here: run `ms2img train` for this assay"):
        FamilyModel.read_card(tmp_path / "models" / "A" / "rf-image")
