"""The one CV loop (training.experiment) on a tiny synthetic assay with a planted signal: labels scaled inside each
fold, every family on the same folds, middle accessions predicted but not scored, and the final FamilyModel."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from ms2img.models.ensemble import quantile
from ms2img.models.family import FamilyModel
from ms2img.render import ImageSet, RenderConfig, image_edges
from ms2img.training.dataset import MIDDLE, AssayData, LabelScaling, repeated_folds
from ms2img.training.experiment import cross_validate, degenerate_warnings, fit_final
from ms2img.training.scores import SCORES, TOP_MIN_K

N = 40  # accessions
REPLICATES = 2  # images per accession (the loop averages their probabilities)
FAMILIES = ["rf-image", "rf-cosine"]
FOLDS, REPEATS = 3, 2
PARAMS = {"baselines": {"rf_trees": [25], "rf_max_features": ["sqrt"]}}


def make_data(seed: int = 0) -> AssayData:
    """Noise images whose patch brightness follows the assay value; a feature table whose first column does too."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 100, N)
    z = (values - values.min()) / np.ptp(values)
    config = RenderConfig().with_size("16x16")
    x_edges, y_edges = image_edges(config)
    images = rng.random((N * REPLICATES, 16, 16), dtype=np.float32) * 0.2
    owner = np.repeat(np.arange(N), REPLICATES)
    images[:, 4:8, 6:10] += (z[owner] + rng.normal(0, 0.3, owner.size))[:, None, None].astype(np.float32)
    accessions = np.array([f"ACC{i:03d}" for i in range(N)])
    imageset = ImageSet(images, accessions[owner], x_edges, y_edges, config.to_dict())
    features = pd.DataFrame(
        {
            "f0": 1000 * z + rng.uniform(0, 500, N),
            "f1": rng.uniform(0, 1000, N),
            "f2": np.where(rng.random(N) < 0.5, 0.0, rng.uniform(0, 500, N)),
        },
        index=accessions,
    ).astype(np.float32)
    data = AssayData(
        assay="DPPH",
        accessions=accessions,
        values=values,
        images=imageset,
        image_rows=[np.flatnonzero(owner == i) for i in range(N)],
        features={"cosine": features},
    )
    data.folds = repeated_folds(values, FOLDS, REPEATS, seed=5)
    return data


@pytest.fixture(scope="module")
def data() -> AssayData:
    return make_data()


@pytest.fixture(scope="module")
def cv(data):
    seen = []
    result = cross_validate(data, FAMILIES, PARAMS, seed=3, on_fold=lambda fam, fold, s: seen.append((fam, fold)))
    result.seen = seen
    return result


def test_every_fit_is_reported_and_the_signal_is_found(cv):
    assert len(cv.seen) == FOLDS * REPEATS * len(FAMILIES)
    assert cv.families == FAMILIES
    assert len(cv.folds) == FOLDS * REPEATS * len(FAMILIES)
    for fam in FAMILIES:
        assert cv.folds.loc[cv.folds["family"] == fam, "auc"].mean() > 0.8, fam
    assert set(cv.seconds) == set(FAMILIES) and all(s > 0 for s in cv.seconds.values())
    assert cv.test_train_ratio == pytest.approx(0.5, abs=0.05)  # 3 folds: a third tested, two thirds trained
    assert degenerate_warnings(cv) == []


def test_oof_has_one_row_per_accession_per_repeat_per_family(cv, data):
    oof = cv.oof
    assert list(oof.columns) == ["accession", "repeat", "fold", "family", "probability", "value", "normalized", "label"]
    assert len(oof) == N * REPEATS * len(FAMILIES)
    counts = oof.groupby(["family", "repeat", "accession"]).size()
    assert (counts == 1).all() and len(counts) == N * REPEATS * len(FAMILIES)
    assert oof["probability"].between(0, 1).all()
    by_acc = dict(zip(data.accessions, data.values, strict=True))
    assert np.allclose(oof["value"], oof["accession"].map(by_acc))


def test_labels_and_normalisation_use_the_folds_training_part_only(cv, data):
    oof = cv.oof
    position = {a: i for i, a in enumerate(data.accessions)}
    global_z = LabelScaling.fit(data.values).normalize(data.values)
    differs = 0
    for fold in data.folds:
        train = data.values[fold.train]
        lo, hi = train.min(), train.max()
        rows = oof[(oof["repeat"] == fold.repeat) & (oof["fold"] == fold.fold)]
        for fam in FAMILIES:
            part = rows[rows["family"] == fam]
            assert sorted(part["accession"].map(position)) == sorted(fold.test.tolist())
            expected = (part["value"].to_numpy() - lo) / (hi - lo)  # the manual computation
            np.testing.assert_allclose(part["normalized"], expected, rtol=1e-12)
            z = expected
            manual = np.where(z < 0.4, 0, np.where(z > 0.6, 1, MIDDLE))
            assert part["label"].tolist() == manual.tolist()
        pos = rows[rows["family"] == FAMILIES[0]]["accession"].map(position).to_numpy()
        differs += int(not np.allclose(rows[rows["family"] == FAMILIES[0]]["normalized"], global_z[pos]))
    assert differs > 0, "some fold's training range must differ from the all-data range (else this test is vacuous)"


def test_middle_accessions_are_predicted_but_not_scored(cv):
    oof, folds = cv.oof, cv.folds
    middle = oof[oof["label"] == MIDDLE]
    assert len(middle) > 0 and middle["probability"].notna().all()
    for (fam, r, k), part in oof.groupby(["family", "repeat", "fold"]):
        row = folds[(folds["family"] == fam) & (folds["repeat"] == r) & (folds["fold"] == k)].iloc[0]
        scored = part[part["label"] != MIDDLE]
        assert row["n_test"] == len(scored)
        assert row["auc"] == pytest.approx(roc_auc_score(scored["label"], scored["probability"]))
        pred = (scored["probability"] > row["threshold"]).astype(int)
        tpr = (pred[scored["label"] == 1] == 1).mean()
        tnr = (pred[scored["label"] == 0] == 0).mean()
        assert row["balanced_accuracy"] == pytest.approx((tpr + tnr) / 2)


def test_folds_are_identical_across_families(cv):
    oof = cv.oof
    sets = {
        fam: {(r, k): frozenset(g["accession"]) for (r, k), g in oof[oof["family"] == fam].groupby(["repeat", "fold"])}
        for fam in FAMILIES
    }
    assert sets["rf-image"] == sets["rf-cosine"]
    assert len(sets["rf-image"]) == FOLDS * REPEATS
    order = cv.folds.groupby("family")[["repeat", "fold"]].apply(lambda g: [tuple(x) for x in g.to_numpy()])
    assert order["rf-image"] == order["rf-cosine"]


def test_summary_and_selection_shapes(cv):
    summary = cv.summary()
    assert set(summary) == {"families", "paired"}
    assert list(summary["families"]) == FAMILIES
    for fam, entry in summary["families"].items():
        assert set(entry) == {*SCORES, "spearman", "pooled", "seconds"}
        for s in SCORES:
            assert set(entry[s]) == {"mean", "sd", "ci_low", "ci_high"}
            if s == "precision_top10":
                scored = cv.oof[(cv.oof["family"] == fam) & (cv.oof["label"] != MIDDLE)]
                top = np.ceil(0.1 * scored.groupby(["repeat", "fold"]).size())
                if (top < TOP_MIN_K).all():  # every fold's top 10% is too few accessions: per fold, nothing
                    assert all(math.isnan(v) for v in entry[s].values())
                    continue
            assert entry[s]["ci_low"] <= entry[s]["mean"] <= entry[s]["ci_high"]
        assert entry["auc"]["mean"] == pytest.approx(cv.folds.loc[cv.folds["family"] == fam, "auc"].mean())
        assert entry["auc"]["ci_high"] <= 1.0
        assert entry["spearman"] > 0.5  # P(high) rises with the planted value
    assert list(summary["paired"]) == ["rf-image vs rf-cosine"]
    assert set(summary["paired"]["rf-image vs rf-cosine"]) == {"diff", "ci_low", "ci_high", "p_value", "n_folds"}
    assert summary["paired"]["rf-image vs rf-cosine"]["n_folds"] == FOLDS * REPEATS
    sel = cv.selection()
    assert sel["winner"] in FAMILIES and sel["best"] in FAMILIES
    means = {f: summary["families"][f]["auc"]["mean"] for f in FAMILIES}
    assert sorted(sel["ranking"]) == sorted(FAMILIES)
    assert [means[f] for f in sel["ranking"]] == sorted(means.values(), reverse=True)
    assert means[sel["best"]] == max(means.values())
    assert isinstance(sel["reason"], str) and sel["winner"] in sel["reason"]
    assert set(sel["paired_with_best"]) == set(FAMILIES) - {sel["best"]}


@pytest.mark.parametrize("family", FAMILIES)
def test_fit_final_round_trips_through_family_model(cv, data, family, tmp_path):
    summary = cv.summary()
    definitions = pd.DataFrame({"feature": ["f0", "f1", "f2"], "mz": [100.0, 200.0, 300.0]})
    features = definitions if family == "rf-cosine" else None
    model = fit_final(data, family, PARAMS, seed=1, summary=summary, features=features, extra={"note": "x"})
    labelled = data.scaling().labels(data.values) != MIDDLE
    card = model.card
    assert card["assay"] == "DPPH" and card["size"] == "16x16" and card["note"] == "x"
    assert card["label_scaling"] == data.scaling().to_dict()
    assert card["n_accessions"] == int(labelled.sum()) and 0 < card["threshold"] < 1
    assert card["metrics"]["auc"] == summary["families"][family]["auc"]
    assert model.accessions == data.accessions[labelled].tolist()

    loaded = FamilyModel.load(model.save(tmp_path / family))
    assert loaded.family == family and loaded.threshold == pytest.approx(model.threshold)
    assert loaded.card["input"] == ("image" if family == "rf-image" else "features")
    assert loaded.accessions == model.accessions
    if family == "rf-image":
        x = data.images.images
    else:
        x = data.features["cosine"].to_numpy()
        pd.testing.assert_frame_equal(loaded.features, definitions)
    p = model.predict_proba(x)
    assert p.shape == (len(x),)
    np.testing.assert_array_equal(loaded.predict_proba(x), p)
    if family == "rf-cosine":  # raw heights in, log1p inside: the same as the CV loop's input
        np.testing.assert_allclose(p, model.estimator.predict_proba(np.log1p(x))[:, 1], rtol=1e-6)


def tiny_network_params() -> dict:
    """params.yaml's cnn/tune sections shrunk to seconds (2 cross-fitted members, 3 epochs)."""
    import yaml
    from builders import REPO_ROOT

    full = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    cnn = {**full["cnn"], "epochs": 3, "min_epochs": 1, "patience": 1, "passes_per_epoch": 1, "ensemble": 2}
    return {**PARAMS, "cnn": cnn, "tune": {**full["tune"], "trials": 1}}


def test_a_member_listed_after_the_ensemble_is_charged_its_own_fit():
    """The ensemble fits its members; a member family listed after it reuses that fit and still reports its cost
    (not just its scoring time), and the ensemble reports the sum of its members."""
    one = make_data(1)
    one.folds = repeated_folds(one.values, FOLDS, 1, seed=5)[:1]  # one fold shows it
    cv = cross_validate(one, ["image-ensemble", "cnn", "rf-image"], tiny_network_params(), seed=3)
    assert cv.seconds["cnn"] > 4 * cv.seconds["rf-image"]  # 2 networks x 3 epochs against 25 trees
    assert cv.seconds["image-ensemble"] >= cv.seconds["cnn"]


def test_image_ensemble_averages_the_folds_own_cnn_and_forest(data, tmp_path):
    """The ensemble is built from the cnn and rf-image fits of the same fold (no second fit): its out-of-fold
    probability is their mean, its cost their sum; the final model is saved and served as the same mean."""
    params = tiny_network_params()
    families = ["cnn", "rf-image", "image-ensemble"]
    one = make_data(1)
    one.folds = repeated_folds(one.values, FOLDS, 1, seed=5)
    cv = cross_validate(one, families, params, seed=3)
    oof = cv.oof.pivot_table(index="accession", columns="family", values="probability")
    for fold in one.folds:  # within a fold the ensemble orders accessions by the mean of the members' ranks
        test = one.accessions[fold.test]
        members = oof.loc[test, ["cnn", "rf-image"]].rank().mean(axis=1)
        assert spearmanr(members, oof.loc[test, "image-ensemble"])[0] > 0.9
    assert cv.seconds["image-ensemble"] >= max(cv.seconds["cnn"], cv.seconds["rf-image"])
    assert cv.folds.loc[cv.folds["family"] == "image-ensemble", "threshold"].between(0, 1).all()

    summary, fitted = cv.summary(), {}
    models = {f: fit_final(one, f, params, seed=1, summary=summary, fitted=fitted) for f in families}
    x = one.images.images[:6]
    refs = models["image-ensemble"].estimator["references"]
    members = {m: models[m].predict_proba(x) for m in ("cnn", "rf-image")}
    expected = np.mean([quantile(refs[m], members[m]) for m in members], axis=0)
    np.testing.assert_allclose(models["image-ensemble"].predict_proba(x), expected, atol=1e-6)
    saved = FamilyModel.load(models["image-ensemble"].save(tmp_path / "image-ensemble"))
    assert sorted(saved.card["files"]) == ["member_0.keras", "member_1.keras", "model.skops", "references.json"]
    assert set(saved.card["hyperparameters"]) == {"cnn", "rf-image"} and saved.card["input"] == "image"
    np.testing.assert_allclose(saved.predict_proba(x), expected, atol=1e-5)
    from ms2img.serving.predictor import FamilyPredictor  # the served path applies the same rule

    np.testing.assert_allclose(FamilyPredictor(saved)._infer(x), expected, atol=1e-5)


def test_quantile_is_the_mid_rank_cdf():
    reference = np.array([0.1, 0.2, 0.2, 0.9])
    np.testing.assert_allclose(quantile(reference, [0.0, 0.1, 0.2, 0.5, 1.0]), [0.0, 0.125, 0.5, 0.75, 1.0])


def test_the_multi_task_family_learns_the_companion_assays_and_serves_this_one(tmp_path):
    """cnn-mt trains on the companion assays' labels of the fold's training accessions beside this assay's (a
    companion measured on half the accessions), is scored on this assay, and saves networks with one output."""
    params = tiny_network_params()
    one = make_data(2)
    one.folds = repeated_folds(one.values, FOLDS, 1, seed=5)
    rng = np.random.default_rng(0)
    related = np.where(rng.random(N) < 0.5, one.values + rng.normal(0, 10, N), np.nan)
    one.companions = pd.DataFrame({"TPC": related, "unmeasured": np.nan}, index=one.accessions)
    seen = []
    original = one.companion_labels
    one.companion_labels = lambda positions: seen.append(np.asarray(positions)) or original(positions)
    cv = cross_validate(one, ["cnn-mt"], params, seed=3)
    assert len(seen) == FOLDS and all(np.isin(p, f.train).all() for p, f in zip(seen, one.folds, strict=True))
    assert cv.summary()["families"]["cnn-mt"]["auc"]["mean"] > 0.7
    model = fit_final(one, "cnn-mt", params, seed=1, summary=cv.summary())
    saved = FamilyModel.load(model.save(tmp_path / "cnn-mt"))
    assert saved.family == "cnn-mt" and saved.card["input"] == "image"
    assert sorted(saved.card["files"]) == ["member_0.keras", "member_1.keras"]
    assert all(m.output_shape == (None, 1) for m in saved.estimator)
    x = one.images.images[:4]
    np.testing.assert_allclose(saved.predict_proba(x), model.predict_proba(x))
    from ms2img.serving.predictor import FamilyPredictor  # served like the cnn: the networks' mean

    np.testing.assert_allclose(FamilyPredictor(saved)._infer(x), model.predict_proba(x), atol=1e-5)


def test_without_a_companion_assay_the_multi_task_family_is_the_single_assay_network():
    one = make_data(3)  # no other assay in the cohort
    one.folds = repeated_folds(one.values, 2, 1, seed=5)
    oof = cross_validate(one, ["cnn", "cnn-mt"], tiny_network_params(), seed=3).oof
    wide = oof.pivot_table(index="accession", columns="family", values="probability")
    np.testing.assert_allclose(wide["cnn-mt"], wide["cnn"], atol=1e-6)


def test_an_accessions_replicate_images_are_held_out_together(data):
    """fit_family gives an image family each row's accession: the forest's held-out predictions (threshold,
    ensemble references) come from trees that drew none of that accession's images."""
    from ms2img.models.estimators import group_out_of_bag
    from ms2img.training.experiment import fit_family

    positions = np.arange(N)
    y = (data.values > np.median(data.values)).astype(int)
    forest = fit_family(data, "rf-image", PARAMS, positions, y, seed=3)
    x, owner = data.image_input(positions)
    expected = np.nan_to_num(group_out_of_bag(forest.model_, x, owner), nan=0.5)
    np.testing.assert_allclose(forest.inner_proba_, expected)
    assert not np.allclose(forest.inner_proba_, np.nan_to_num(forest.model_[-1].oob_decision_function_[:, 1], nan=0.5))
