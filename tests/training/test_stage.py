"""The train@<assay> stage end to end (ms2img.training.stage.train_assay) on the tiny synthetic cohort, tracked into a
temporary SQLite MLflow store: the files of docs/contracts.md and the parent/child MLflow runs.

Trained once per module (about 30 s on 2 cores): 30 accessions (seed 7; DPPH 10 low / 12 high / 8 middle),
2 folds x 1 repeat, every family (CNN 2 epochs, 1 trial; 20-tree forests; 3 OPLS-DA permutations).
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from builders import tiny_cohort, tiny_params, train_tiny

from ms2img.errors import ConfigError
from ms2img.models.family import FAMILIES, FamilyModel
from ms2img.render import ImageSet
from ms2img.training.scores import SCORES
from ms2img.training.stage import score_metrics

ASSAY = "DPPH"
INTERVAL = {"mean", "sd", "ci_low", "ci_high"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    root = tmp_path_factory.mktemp("train")
    cohort = tiny_cohort(root / "cohort", accessions=30, seed=7)
    params = tiny_params(train__families=list(FAMILIES))  # every family, cnn-mt too
    previous = tracking_utils._tracking_uri
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            out = train_tiny(cohort, ASSAY, params, root / "out", track=True)
        finally:
            mlflow.set_tracking_uri(previous)
    return {"root": root / "out", "cohort": cohort, "params": params, "result": out, "uri": uri}


def _leaves(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, node


def test_metrics_file_holds_numbers_only(trained):
    metrics = json.loads((trained["root"] / "metrics" / f"{ASSAY}.json").read_text())
    for path, leaf in _leaves(metrics):
        assert leaf is None or (isinstance(leaf, int | float) and not isinstance(leaf, bool)), (path, leaf)
    assert (metrics["n_accessions"], metrics["n_low"], metrics["n_high"], metrics["n_middle"]) == (30, 10, 12, 8)
    assert (metrics["folds"], metrics["repeats"]) == (2, 1)
    assert set(metrics["families"]) == set(FAMILIES)
    for fam, entry in metrics["families"].items():
        assert set(entry) == {*SCORES, "spearman", "pooled", "seconds"}, fam
        for s in SCORES:
            assert set(entry[s]) == INTERVAL, (fam, s)
        auc = entry["auc"]["mean"]
        assert auc is None or 0.0 <= auc <= 1.0
        assert entry["seconds"] > 0
    pairs = {f"{a} vs {b}" for i, a in enumerate(FAMILIES) for b in FAMILIES[i + 1 :]}
    assert set(metrics["paired"]) == pairs
    for test in metrics["paired"].values():
        assert {"diff", "ci_low", "ci_high", "p_value", "n_folds"} <= set(test) and test["n_folds"] <= 2
    assert {"r2y", "q2y"} <= set(metrics["oplsda"])
    assert set(metrics["pca"]) == {"pc1", "pc2"} and 0 < metrics["pca"]["pc2"] <= metrics["pca"]["pc1"] <= 1
    assert trained["result"]["metrics"]["n_accessions"] == 30


def test_oplsda_metrics_follow_the_contract(trained):
    metrics = json.loads((trained["root"] / "metrics" / f"{ASSAY}.json").read_text())
    assert {"r2y", "q2y", "p_r2y", "p_q2y"} <= set(metrics["oplsda"])


def test_reports(trained):
    reports = trained["root"] / "reports" / ASSAY
    oof = pd.read_csv(reports / "oof.csv")
    assert list(oof.columns) == ["accession", "repeat", "fold", "family", "probability", "value", "normalized", "label"]
    assert len(oof) == 30 * 1 * len(FAMILIES)
    assert (oof.groupby(["family", "accession"]).size() == 1).all()
    assert set(oof["label"]) <= {-1, 0, 1} and oof["probability"].between(0, 1).all()
    folds = pd.read_csv(reports / "folds.csv")
    expected = {"family", "repeat", "fold", *SCORES, "threshold", "n_test"}
    assert expected <= set(folds.columns) and len(folds) == 2 * len(FAMILIES)
    scored = oof[oof["label"] != -1].groupby(["family", "fold"]).size()
    assert folds.set_index(["family", "fold"])["n_test"].sort_index().tolist() == scored.sort_index().tolist()
    selection = json.loads((reports / "selection.json").read_text())
    assert selection["winner"] in FAMILIES and isinstance(selection["reason"], str) and selection["reason"]
    assert sorted(selection["ranking"] + selection["excluded"]) == sorted(FAMILIES)  # excluded: degenerate
    assert selection["families"] == list(FAMILIES)
    assert selection["winner"] == trained["result"]["selection"]["winner"]
    # the registry's "selection" rule reads the paired difference of the winner and the champion's family here
    pairs = {f"{a} vs {b}" for i, a in enumerate(FAMILIES) for b in FAMILIES[i + 1 :]}
    assert set(selection["paired"]) == pairs
    assert all({"diff", "ci_low", "ci_high", "p_value"} <= set(e) for e in selection["paired"].values())
    run = json.loads((reports / "run.json").read_text())
    assert run["seconds"] > 0 and run["data_version"] and run["code_version"]
    assert run["mlflow_run_id"] == trained["result"]["run"]["mlflow_run_id"]


def test_every_family_has_a_loadable_final_model(trained):
    images = ImageSet.load(trained["cohort"].images)
    for fam in FAMILIES:
        folder = trained["root"] / "models" / ASSAY / fam
        # strict JSON: a NaN score is null (bare NaN, which json.dumps writes by default, other tools refuse)
        card = json.loads((folder / "model.json").read_text(), parse_constant=lambda c: pytest.fail(c))
        assert card["family"] == fam and card["assay"] == ASSAY and 0 <= card["threshold"] <= 1
        assert card["label_scaling"]["low"] == 0.4 and card["n_accessions"] == 22  # 10 low + 12 high
        assert card["class_counts"] == {"low": 10, "high": 12, "middle": 8}
        model = FamilyModel.load(folder)
        assert len(model.accessions) == 22
        if card["input"] == "image":
            p = model.predict_proba(images.images[:3])
        else:
            assert model.features is not None and len(model.features) > 0
            assert "matching" in card
            p = model.predict_proba(np.zeros((3, len(model.features)), np.float32))
        assert p.shape == (3,) and np.isfinite(p).all()


def test_plots(trained):
    plots = trained["root"] / "plots" / ASSAY
    names = {"model_comparison", "pca_scores", "oplsda_scores", "oplsda_permutation"}
    for fam in FAMILIES:
        names |= {f"{kind}_{fam.replace('-', '_')}" for kind in ("roc", "confusion", "predictions")}
    for name in names:
        assert (plots / f"{name}.png").stat().st_size > 1000, name


def test_mlflow_parent_and_one_child_per_family(trained):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=trained["uri"])
    metrics = json.loads((trained["root"] / "metrics" / f"{ASSAY}.json").read_text())
    parent = client.get_run(trained["result"]["run"]["mlflow_run_id"])
    winner = trained["result"]["selection"]["winner"]
    assert parent.data.tags["winner"] == winner and parent.data.tags["run.kind"] == "training"
    # the run spans the training (the UI's Duration), not only its logging; the user and source tags stay
    seconds = trained["result"]["run"]["seconds"]
    assert (parent.info.end_time - parent.info.start_time) / 1000 >= 0.9 * seconds > 1, (parent.info, seconds)
    assert {"mlflow.user", "mlflow.source.name", "mlflow.runName"} <= set(parent.data.tags)
    # 22 labelled accessions: the top 10% is 3, below TOP_MIN_K, so precision_top10 is null and not logged
    assert metrics["families"][winner]["precision_top10"]["mean"] is None
    keys = {f"{s}_{k}" for s in SCORES if s != "precision_top10" for k in ("mean", "sd")}
    assert keys <= set(parent.data.metrics) and parent.data.metrics["n_labelled"] == 22
    assert parent.data.metrics["auc_mean"] == pytest.approx(metrics["families"][winner]["auc"]["mean"])
    # the protocol in effect, as metrics says, not "auto" (a lab comparing runs in the UI saw auto in every run)
    assert (parent.data.params["cv.folds"], parent.data.params["cv.repeats"]) == (
        str(metrics["folds"]),
        str(metrics["repeats"]),
    )
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(c.data.tags["family"] for c in children) == sorted(FAMILIES)
    for child in children:
        fam = child.data.tags["family"]
        expected = {k: v for k, v in score_metrics(metrics["families"][fam]).items() if v is not None}
        assert keys <= set(child.data.metrics), fam
        assert set(expected) <= set(child.data.metrics), fam
        for k, v in expected.items():
            assert child.data.metrics[k] == pytest.approx(v, abs=1e-6), (fam, k)
        assert not math.isnan(child.data.metrics["auc_mean"])
        assert "fold_auc" in child.data.metrics and "fold_precision_top10" not in child.data.metrics, fam  # withheld
        rho_p = metrics["families"][fam]["pooled"]["spearman"]["p_value"]
        assert rho_p is None or child.data.metrics["pooled_spearman_p"] == pytest.approx(rho_p), fam
        parent_keys = {k for k in parent.data.metrics if k != "n_labelled" and not k.startswith("p_")}
        assert parent_keys <= set(child.data.metrics) | {"spearman"}, fam  # the same keys on every level
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"plots", "model_card"} <= artifacts
        assert trained["result"]["run"]["mlflow_family_runs"][fam] == child.info.run_id  # promote logs models here
        assert child.inputs.dataset_inputs, fam  # the UI's "Datasets" column of a family run


def test_unknown_assay_fails_before_anything_is_written(trained, tmp_path):
    with pytest.raises(ConfigError, match="unknown assay 'nope'"):
        train_tiny(trained["cohort"], "nope", trained["params"], tmp_path, track=False)
    assert not any(tmp_path.iterdir()), "nothing may be written when the input is rejected"


def test_resolution_study_runs_its_own_protocol_and_leaves_training_params_alone():
    from ms2img.training.stage import study_params

    params = {"tune": {"trials": 2, "objective": "val_loss"}, "cnn": {"epochs": 40, "ensemble": 1, "patience": 8},
              "resolution": {"assays": ["DPPH"], "trials": 1, "epochs": 20, "ensemble": 0}}  # fmt: skip
    study = study_params(params)
    assert study["tune"] == {"trials": 1, "objective": "val_loss"}
    assert study["cnn"] == {"epochs": 20, "ensemble": 0, "patience": 8}
    assert params["tune"]["trials"] == 2 and params["cnn"]["epochs"] == 40  # the caller's params are untouched
    plain = {"tune": {"trials": 2}, "cnn": {"epochs": 40}}
    assert study_params(plain) == plain


def test_per_replicate_images_train_held_out_together_and_warn_about_serving(trained, tmp_path, caplog):
    """render.per_replicate: one image per injection trains (the forest's out-of-bag rows held out with their
    accession's other images), and the stage says that served requests (replicates averaged) differ."""
    import dataclasses

    from ms2img.render import RenderConfig, render_files

    cohort = trained["cohort"]
    [images] = render_files(cohort.events, [RenderConfig(width=75, height=70, per_replicate=True)], progress=False)
    images.save(tmp_path / "replicates.npz")
    params = tiny_params(train__families=["rf-image"])
    stale = tmp_path / "models" / ASSAY / "cnn"  # a family an earlier run trained and this one does not
    stale.mkdir(parents=True)
    (stale / "model.json").write_text("{}")
    with caplog.at_level("WARNING", logger="ms2img.training.stage"):
        out = train_tiny(dataclasses.replace(cohort, images=tmp_path / "replicates.npz"), ASSAY, params, tmp_path,
                         track=False)  # fmt: skip
    assert "render.per_replicate is true" in caplog.text and "replicates averaged" in caplog.text
    assert out["selection"]["winner"] in (None, "rf-image")
    # models/<assay> is swapped in whole: exactly this run's families, nothing of a staging folder left beside it
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [ASSAY]
    assert sorted(p.name for p in (tmp_path / "models" / ASSAY).iterdir()) == ["rf-image"]


@pytest.mark.parametrize(
    ("families", "said"),
    [
        (["rf-image", "rf-image"], "train.families lists rf-image more than once"),
        ([], "train.families must be a non-empty list"),
        (None, "train.families must be a non-empty list"),
        ("rf-image", "train.families must be a non-empty list of family names, e.g. [cnn, rf-image]; got 'rf-image'"),
    ],
)
def test_a_family_list_that_cannot_be_right_is_refused_before_any_fit(families, said):
    """A duplicated family failed after the whole cross-validation (a pandas traceback), an empty list with "No
    objects to concatenate", a bare name was read letter by letter."""
    from ms2img.errors import ConfigError
    from ms2img.training.stage import families_from_params

    with pytest.raises(ConfigError, match=re.escape(said)):
        families_from_params({"train": {"families": families}, "features": {"similarity": ["cosine"]}})


@pytest.mark.parametrize("seed", ["abc", -1, 2**32, True, 1.5])
def test_a_cv_seed_numpy_cannot_take_is_one_line(seed):
    from ms2img.errors import ConfigError
    from ms2img.training.dataset import cv_seed

    with pytest.raises(ConfigError, match=r"cv.seed must be a whole number from 0 to 4294967295, got"):
        cv_seed({"cv": {"seed": seed}})
    assert cv_seed({"cv": {"seed": "7"}}) == 7
