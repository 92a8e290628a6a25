"""``labels.mode: regression``: the value's scores with intervals (hand-computed cases), the fold builder on values,
the regressors, and a tiny regression run end to end (train -> register -> promote -> served pyfunc answering a
value in the assay's units); classification answers stay as they were."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from builders import tiny_cohort, tiny_params, train_tiny

from ms2img.errors import ConfigError
from ms2img.training.scores import (
    REGRESSION_SCORES,
    corrected_interval,
    pooled_regression,
    regression_scores,
    select_winner,
    spearman_interval,
)

ASSAY = "DPPH"


# ------------------------------------------------------------------------------------------ scores, by hand
def test_regression_scores_hand_computed():
    # ranks of p are (2, 1, 3, 5, 4): sum d^2 = 4, rho = 1 - 6 * 4 / (5 * 24) = 0.8; errors (1, -1, 0, 1, -1):
    # RMSE = sqrt(4 / 5); SS_tot about the mean 3 is 10, so R2 = 1 - 4 / 10 = 0.6
    s = regression_scores([1, 2, 3, 4, 5], [2, 1, 3, 5, 4])
    assert s["spearman"] == pytest.approx(0.8)
    assert s["rmse"] == pytest.approx(math.sqrt(0.8))
    assert s["r2"] == pytest.approx(0.6)
    assert math.isnan(regression_scores([2, 2, 2], [1, 2, 3])["r2"])  # constant measured values: no R2


def test_spearman_interval_is_fisher_z_with_bonett_wrights_variance():
    # n = 28: half width 1.959964 * sqrt((1 + 0.8^2 / 2) / 25) = 0.450365 on atanh(0.8) = 1.098612 (Fieller's
    # constant 1.06 gave 0.403581: 0.601-0.906, too narrow at rho 0.8)
    out = spearman_interval(0.8, 28)
    assert out["mean"] == 0.8 and out["n"] == 28
    assert out["ci_low"] == pytest.approx(0.570489, abs=1e-6)
    assert out["ci_high"] == pytest.approx(0.913617, abs=1e-6)
    assert math.isnan(spearman_interval(0.5, 3)["ci_low"])  # too few pairs: no interval
    perfect = spearman_interval(1.0, 10)
    assert perfect["ci_low"] <= perfect["ci_high"] <= 1.0


def test_per_fold_spearman_interval_is_the_corrected_t_of_the_auc():
    # folds 0.5, 0.7, 0.6 with n_test/n_train 0.25: mean 0.6, SD 0.1, SE sqrt((1/3 + 0.25) * 0.01) = 0.076376,
    # t(0.975, 2) = 4.302653: 0.271379 .. 0.928621
    from ms2img.training.experiment import CVResult

    folds = pd.DataFrame(
        {
            "family": ["rf-image"] * 3,
            "repeat": 0,
            "fold": [1, 2, 3],
            "spearman": [0.5, 0.7, 0.6],
            "rmse": [1.0, 2.0, 3.0],
            "r2": [0.1, 0.2, 0.3],
            "n_test": 10,
        }
    )
    rng = np.random.default_rng(0)
    values = rng.normal(50, 10, 30)
    oof = pd.DataFrame(
        {"accession": [f"A{i}" for i in range(30)], "repeat": 0, "fold": 1, "family": "rf-image",
         "prediction": values + rng.normal(0, 5, 30), "value": values}
    )  # fmt: skip
    summary = CVResult(ASSAY, oof, folds, 0.25, mode="regression").summary()
    entry = summary["families"]["rf-image"]
    assert entry["spearman"]["mean"] == pytest.approx(0.6)
    assert entry["spearman"]["sd"] == pytest.approx(0.1)
    assert entry["spearman"]["ci_low"] == pytest.approx(0.271379, abs=1e-6)
    assert entry["spearman"]["ci_high"] == pytest.approx(0.928621, abs=1e-6)
    assert entry["rmse"] == corrected_interval([1.0, 2.0, 3.0], 0.25, bounds=(0.0, math.inf))
    pooled = entry["pooled"]
    assert set(pooled) == set(REGRESSION_SCORES)
    for score, e in pooled.items():
        assert e["ci_low"] <= e["value"] <= e["ci_high"], score
    assert pooled["spearman"]["ci_low"] == pytest.approx(spearman_interval(pooled["spearman"]["value"], 30)["ci_low"])


def test_pooled_intervals_are_seeded_and_narrow_with_more_accessions():
    rng = np.random.default_rng(1)
    widths = []
    for n in (20, 200):
        y = rng.normal(0, 1, n)
        p = y + rng.normal(0, 0.5, n)
        a, b = pooled_regression(y, p), pooled_regression(y, p)
        assert a == b  # same numbers every run
        widths.append(a["rmse"]["ci_high"] - a["rmse"]["ci_low"])
    assert widths[1] < widths[0]


def test_one_selection_rule_with_the_metric_as_a_parameter():
    from ms2img.models.family import SIMPLICITY

    rho = {"cnn": [0.8, 0.82, 0.79, 0.81], "rf-image": [0.4, 0.45, 0.42, 0.38]}
    sel = select_winner(rho, 0.25, SIMPLICITY, metric="spearman")
    assert sel["winner"] == "cnn" and sel["metric"] == "spearman" and "Spearman rho" in sel["reason"]
    assert select_winner(rho, 0.25, SIMPLICITY)["winner"] == "cnn"  # the same rule: AUC by default
    assert "AUC" in select_winner(rho, 0.25, SIMPLICITY)["reason"]


# --------------------------------------------------------------------------------------------- folds on values
def test_regression_folds_span_the_values_and_need_three_per_test_fold():
    from ms2img.training.dataset import regression_protocol, repeated_folds, value_strata

    values = np.linspace(0, 100, 40)
    strata = value_strata(values, 5)
    assert np.bincount(strata).min() >= 5
    folds = repeated_folds(values, 5, 2, seed=3, mode="regression")
    assert len(folds) == 10
    for f in folds:
        assert set(strata[f.test]) == set(strata)  # every test fold spans the range
        assert not set(f.train) & set(f.test)
    p = regression_protocol(ASSAY, 40, "auto", "auto")
    assert (p.folds, p.repeats, p.small_cohort, p.regression) == (5, 1, False, True)
    small = regression_protocol(ASSAY, 12, "auto", "auto")
    assert small.folds == 4 and small.small_cohort and "12 accessions with a value" in small.describe()
    with pytest.raises(ConfigError, match="cv.folds 5"):
        regression_protocol(ASSAY, 12, 5, 1)


def test_unknown_label_mode_is_a_config_error():
    from ms2img.training.labels import label_mode

    assert label_mode({}) == "classification"
    assert label_mode({"mode": "Regression"}) == "regression"
    with pytest.raises(ConfigError, match="labels.mode"):
        label_mode({"mode": "ranking"})


def test_paired_spearman_difference_se_shrinks_with_more_accessions():
    from ms2img.registry.decision import paired_spearman_difference

    rng = np.random.default_rng(2)
    ses = []
    for n in (15, 150):
        v = rng.normal(0, 1, n)
        champion, challenger = v + rng.normal(0, 2, n), v + rng.normal(0, 0.5, n)
        st = paired_spearman_difference(v, champion, challenger, n_boot=400)
        assert st["challenger_spearman_new"] > st["champion_spearman_new"]
        ses.append(st["spearman_diff_se"])
    assert ses[1] < ses[0]


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """A tiny regression run (30 accessions, 2 folds, CNN 2 epochs, 20-tree forests) tracked, registered and
    promoted in a temporary SQLite MLflow store."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from ms2img import registry, tracking

    root = tmp_path_factory.mktemp("regression")
    cohort = tiny_cohort(root / "cohort", accessions=30, seed=7)
    params = tiny_params(labels__mode="regression", train__families=["cnn", "rf-image", "rf-cosine"])
    previous = tracking_utils._tracking_uri
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(root)
        mlflow.set_tracking_uri(uri)
        try:
            tracking.setup_tracking()
            out = train_tiny(cohort, ASSAY, params, root / "out", track=True)
            decision = registry.promote_assay(
                ASSAY,
                models_dir=root / "out" / "models",
                reports_dir=root / "out" / "reports",
                events_dir=cohort.events,
                data_hash="md5:test",
                code_version="test",
                beyond_chance=False,  # 30 accessions, 2 folds: rho's interval reaches 0; this tests serving
            )
            yield {"root": root / "out", "cohort": cohort, "result": out, "decision": decision, "uri": uri}
        finally:
            mlflow.set_tracking_uri(previous)


def test_regression_run_reports_spearman_with_an_interval(regression_run):
    metrics = json.loads((regression_run["root"] / "metrics" / f"{ASSAY}.json").read_text())
    assert "n_low" not in metrics and metrics["n_accessions"] == 30  # every accession with a value trains
    for fam, entry in metrics["families"].items():
        for score in REGRESSION_SCORES:
            assert set(entry[score]) == {"mean", "sd", "ci_low", "ci_high"}, (fam, score)
        rho = entry["spearman"]
        assert -1 <= rho["ci_low"] <= rho["mean"] <= rho["ci_high"] <= 1
        assert set(entry["pooled"]["spearman"]) == {"value", "ci_low", "ci_high", "n", "p_value"}  # n: why no interval
    assert set(metrics["paired"]) == {"cnn vs rf-image", "cnn vs rf-cosine", "rf-image vs rf-cosine"}
    selection = json.loads((regression_run["root"] / "reports" / ASSAY / "selection.json").read_text())
    assert selection["mode"] == "regression" and selection["metric"] == "spearman"
    assert "Spearman rho" in selection["reason"]
    folds = pd.read_csv(regression_run["root"] / "reports" / ASSAY / "folds.csv")
    assert {"spearman", "rmse", "r2"} <= set(folds.columns) and "auc" not in folds.columns
    oof = pd.read_csv(regression_run["root"] / "reports" / ASSAY / "oof.csv")
    assert {"prediction", "value"} <= set(oof.columns) and "probability" not in oof.columns
    plots = {p.name for p in (regression_run["root"] / "plots" / ASSAY).iterdir()}
    assert {"regression_cnn.png", "regression_rf_image.png", "model_comparison.png"} <= plots


def test_regression_metrics_go_to_mlflow_under_the_existing_names(regression_run):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=regression_run["uri"])
    family_run = client.get_run(regression_run["result"]["run"]["mlflow_family_runs"]["rf-image"])
    keys = set(family_run.data.metrics)
    assert {"spearman_mean", "spearman_ci_low", "spearman_ci_high", "rmse_mean", "r2_mean", "pooled_spearman"} <= keys
    assert "Spearman rho" in family_run.data.tags["mlflow.note.content"]


def test_served_regression_model_answers_a_value_in_the_assays_range(regression_run):
    import mlflow

    from ms2img.io.schema import read_events
    from ms2img.registry import mlflow_client
    from ms2img.serving.predictor import REGRESSION_RESPONSE_COLUMNS
    from ms2img.serving.request import events_to_request
    from ms2img.training.labels import read_assays

    decision = regression_run["decision"]
    assert decision.promoted and decision.rule == "first"
    values = read_assays(regression_run["cohort"].assays)[ASSAY]
    lo, hi = float(values.min()), float(values.max())
    events = sorted(regression_run["cohort"].events.glob("*.parquet"))[:2]
    request = pd.concat([events_to_request(read_events(p)) for p in events], ignore_index=True)
    for family, version in decision.registered.items():
        tags = mlflow_client().get_model_version(f"ms2img-{ASSAY}", version).tags
        assert tags["mode"] == "regression" and "spearman_mean" in tags and "threshold" not in tags
        out = mlflow.pyfunc.load_model(f"models:/ms2img-{ASSAY}/{version}").predict(request, params={
            "class_out_of_domain": True})  # fmt: skip
        assert list(out.columns) == REGRESSION_RESPONSE_COLUMNS
        assert (out["mode"] == "regression").all() and (out["units"] == "% scavenging").all()
        assert list(out["accession"]) == [p.stem for p in events]
        pred = out["prediction"].astype(float).to_numpy()
        assert np.isfinite(pred).all(), family
        slack = 0.0 if family.startswith("rf-") else (hi - lo)  # a forest averages training values; a network may not
        assert ((pred >= lo - slack) & (pred <= hi + slack)).all(), (family, pred, lo, hi)
    champion = mlflow.pyfunc.load_model(f"models:/ms2img-{ASSAY}@champion")
    assert "Spearman rho" in mlflow_client().get_model_version(f"ms2img-{ASSAY}", decision.candidate).description
    assert champion.metadata.signature.outputs.input_names()[1] == "prediction"


def test_classification_answers_are_unchanged(tmp_path):
    """A classification model answers the same columns as before (no mode, no prediction), its signature too."""
    from builders import random_request
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from ms2img.models.baselines import FlattenImages
    from ms2img.models.family import FamilyModel
    from ms2img.render import RenderConfig
    from ms2img.serving.predictor import FAMILY_RESPONSE_COLUMNS, FamilyPredictor, request_signature

    config = RenderConfig(width=75, height=70)
    rng = np.random.default_rng(0)
    x = rng.random((12, 70, 75)).astype(np.float32)
    est = Pipeline([("flatten", FlattenImages()), ("rf", RandomForestClassifier(n_estimators=5, random_state=0))])
    est.fit(x, np.arange(12) % 2)
    card = {"assay": ASSAY, "render": config.to_dict(), "threshold": 0.5}
    folder = FamilyModel("rf-image", card, est, [str(i) for i in range(12)]).save(tmp_path / "rf-image")
    out = FamilyPredictor.from_folder(folder).predict(random_request(n_precursors=20, n_fragments=5, seed=1))
    before = ["accession", "probability", "class", "assay", "family", "model_version", "in_domain", "domain_note"]
    assert FAMILY_RESPONSE_COLUMNS == before and list(out.columns) == before
    assert out["class"].iloc[0] in ("high", "low") and 0 <= out["probability"].iloc[0] <= 1
    assert request_signature().outputs.input_names() == before


def test_report_shows_the_regression_scores(regression_run, tmp_path):
    from ms2img.report import build_report

    out = build_report(regression_run["root"], tmp_path / "index.html", assays=[ASSAY], params_path=None)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Regression assays (labels.mode: regression)" in html and "pooled Spearman ρ" in html
    assert "could not be drawn" not in html and out.n_figures >= 2  # predicted-vs-measured and the box plots


def test_the_classifier_only_families_are_left_out_of_regression():
    from ms2img.training.stage import families_from_params

    families = ["cnn", "cnn-mt", "rf-image", "image-ensemble"]
    params = {"train": {"families": families}, "features": {"similarity": ["cosine"]}}
    assert families_from_params(params) == families
    assert families_from_params({**params, "labels": {"mode": "regression"}}) == ["cnn", "rf-image"]
