"""Registry: every family registered from its FamilyModel folder, safe promotion on new data, compare-and-set,
rollback with a smoke test. Family folders and oof.csv are built here directly (tiny RF on real rendered images),
so the tests do not depend on training."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from builders import ASSAY, card, rf_image_model, temporary_store, tiny_cohort

pytestmark = pytest.mark.integration


def rf_feature_model(table, events_dir: Path, labels: np.ndarray, folder: Path, family: str = "rf-cosine"):
    from sklearn.ensemble import RandomForestClassifier

    from ms2img.features.match import matching_rule, training_feature_spectra
    from ms2img.models.family import FamilyModel

    x = np.log1p(table.values.to_numpy())
    est = RandomForestClassifier(n_estimators=15, random_state=0).fit(x, labels)
    feats = training_feature_spectra(table, events_dir)
    fm = FamilyModel(
        family,
        card(family, list(table.values.index), matching=matching_rule(table)),
        est,
        list(table.values.index.astype(str)),
        features=feats,
    )
    return fm.save(folder)


def write_round(root: Path, oof: pd.DataFrame, winner: str = "rf-image") -> None:
    rep = root / "reports" / ASSAY
    rep.mkdir(parents=True, exist_ok=True)
    oof.to_csv(rep / "oof.csv", index=False)
    (rep / "selection.json").write_text(
        json.dumps({"winner": winner, "reason": "test", "ranking": [], "paired": {}}), encoding="utf-8"
    )


def oof_rows(accessions, values, probability, family="rf-image") -> pd.DataFrame:
    values = np.asarray(values, float)
    return pd.DataFrame(
        {
            "accession": list(accessions),
            "repeat": 0,
            "fold": 0,
            "family": family,
            "probability": np.asarray(probability, float),
            "value": values,
            "normalized": values / 100.0,
            "label": np.where(values > 60, 1, np.where(values < 40, 0, -1)),
        }
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A temporary MLflow store (SQLite) and a 36-accession rendered synthetic cohort."""
    from ms2img.render import ImageSet

    root = tmp_path_factory.mktemp("registry_store")
    with temporary_store(root):
        cohort = tiny_cohort(root / "data", accessions=36, seed=11)
        images = ImageSet.load(cohort.images)
        yield SimpleNamespace(root=root, cohort=cohort, images=images, accs=sorted(images.ids.astype(str)))


def _promote(store, **kw):
    from ms2img import registry

    return registry.promote_assay(
        ASSAY,
        models_dir=store.root / "models",
        reports_dir=store.root / "reports",
        events_dir=store.cohort.events,
        data_hash=kw.pop("data_hash", "md5:test"),
        code_version="test",
        **kw,
    )


# ------------------------------------------------------------------------------------------------ the tests
def test_promotion_rounds(store):
    """Round 1: first champion. Round 2: new accessions without signal -> champion kept, challenger tagged.
    Round 3: informative new accessions -> promoted. Then rollback, and a truncated artifact refused."""
    import mlflow
    from mlflow import MlflowClient

    from ms2img import registry
    from ms2img.errors import ConfigError
    from ms2img.io.schema import read_events
    from ms2img.serving.request import events_to_request

    rng = np.random.default_rng(0)
    first = store.accs[:12]
    values1 = np.tile([10.0, 90.0], 6)
    rf_image_model(store.images, first, (values1 > 50).astype(int), store.root / "models" / ASSAY / "rf-image")
    write_round(store.root, oof_rows(first, values1, rng.uniform(size=12)))
    d1 = _promote(store)
    assert d1.promoted and d1.rule == "first" and d1.champion_after == "1", d1
    name = registry.model_name(ASSAY)
    client = MlflowClient()

    # the version is a real model: signature, input example, card, domain, no pickle
    mv = client.get_model_version(name, "1")
    assert mv.tags["family"] == "rf-image" and "AUC (cross-validated)" in mv.description
    assert "Call:" in client.get_registered_model(name).description
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert model.metadata.get_input_schema().input_names() == [
        "accession", "precursor_mz", "precursor_intensity", "rt_min", "msms", "replicate"
    ]  # fmt: skip
    assert model.metadata.get_input_schema().optional_input_names() == ["replicate"]
    out = model.predict(model.input_example)
    assert out["family"].iloc[0] == "rf-image" and out["model_version"].iloc[0] == "1"
    full = events_to_request(read_events(store.cohort.events / f"{first[0]}.parquet"))
    answer = model.predict(full)
    assert bool(answer["in_domain"].iloc[0]), answer["domain_note"].iloc[0]  # a whole training accession
    far = full.assign(precursor_mz=full["precursor_mz"] * 0 + 1499.0)
    assert not model.predict(far)["in_domain"].iloc[0]
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/1"))
    assert not list(local.rglob("*.pkl")), list(local.rglob("*.pkl"))
    assert (local / "code" / "ms2img" / "serving" / "predictor.py").is_file()
    # the same folder again is the same version (dvc repro twice)
    again = _promote(store)
    assert again.registered == {"rf-image": "1"} and again.rule == "already-champion" and not again.rejected

    # round 2: 16 new accessions whose values carry no signal; the refit challenger is no better on them
    second = store.accs[:28]
    values_new = rng.permutation(np.tile([10.0, 90.0], 8))
    values2 = np.r_[values1, values_new]
    rf_image_model(store.images, second, (values2 > 50).astype(int), store.root / "models" / ASSAY / "rf-image", 1)
    write_round(store.root, oof_rows(second, values2, rng.uniform(size=28)))
    d2 = _promote(store)
    assert d2.candidate == "2" and not d2.promoted and d2.rule == "new-accessions", d2
    assert d2.evidence["n_unseen_accessions"] == d2.evidence["n_compared"] == 16 and d2.evidence["margin"] > 0
    tags = client.get_model_version(name, "2").tags
    assert "not better by the margin" in tags["promotion.rejected"]
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "2"
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"

    # round 3: the same new accessions, now the challenger's out-of-fold predictions carry the signal
    rf_image_model(store.images, second, (values2 > 50).astype(int), store.root / "models" / ASSAY / "rf-image", 2)
    prob = np.where(values2 > 50, 0.9, 0.1) + rng.normal(0, 0.02, 28)
    write_round(store.root, oof_rows(second, values2, prob))
    d3 = _promote(store)
    assert d3.candidate == "3" and d3.promoted and d3.rule == "new-accessions", d3
    assert d3.evidence["auc_diff"] > d3.evidence["margin"]
    assert str(client.get_model_version_by_alias(name, "champion").version) == "3"
    metrics = d3.metrics(registry.champion_auc(name))
    assert all(isinstance(v, int | float) for v in metrics.values()) and metrics["promoted"] == 1
    json.dumps(d3.report())

    # rollback smoke-tests its target: version 1 is fine, a truncated artifact is refused with one line
    rb = registry.rollback(name, "1", "test")
    assert rb.champion_after == "1"
    # one version reads "champion": the alias' holder; the ones it moved away from read "retired"
    status = {v: client.get_model_version(name, v).tags.get("promotion.status") for v in ("1", "2", "3")}
    assert status == {"1": "champion", "2": "challenger", "3": "retired"}, status
    # the challenger alias moving on leaves its last holder "superseded" (it read "challenger" for ever)
    from ms2img.registry.store import CHALLENGER, set_alias

    set_alias(name, CHALLENGER, "3", "test: a newer rejected challenger")
    assert client.get_model_version(name, "2").tags["promotion.status"] == "superseded"
    victim = _artifact_file(store, name, "2", "model.skops")
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(ConfigError, match="refusing rollback") as err:
        registry.rollback(name, "2")
    assert "\n" not in str(err.value)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    # a once-rejected version made champion (a rollback by hand) loses its rejection tag with the alias
    from ms2img.registry.store import CHAMPION

    assert "promotion.rejected" in client.get_model_version(name, "2").tags
    set_alias(name, CHAMPION, "2", "test: rollback by hand")
    assert "promotion.rejected" not in client.get_model_version(name, "2").tags


def _artifact_file(store, name: str, version: str, filename: str) -> Path:
    from mlflow import MlflowClient

    uri = MlflowClient().get_model_version_download_uri(name, version)
    base = Path(uri.removeprefix("file://")) if uri.startswith("file://") else None
    if base is None or not base.exists():
        import mlflow

        base = Path(mlflow.artifacts.download_artifacts(uri))
    return next(base.rglob(filename))


def test_compare_and_set_redoes_the_comparison_when_the_champion_moves(store, monkeypatch):
    """A champion changed during a comparison (another promoter) makes the promoter compare again."""
    from ms2img import registry

    name = registry.model_name(ASSAY)
    calls = []
    real = registry.promotion.decide

    def racing(n, candidate, champion, **kw):
        calls.append(champion)
        if len(calls) == 1:  # someone else crowns version 3 while we compare against the current champion
            registry.mlflow_client().set_registered_model_alias(n, registry.CHAMPION, "3")
        return real(n, candidate, champion, **kw)

    monkeypatch.setattr(registry.promotion, "decide", racing)
    registry.mlflow_client().set_registered_model_alias(name, registry.CHAMPION, "1")
    d = registry.promote_version(name, "3", smoke=False)
    assert calls == ["1", "3"], calls
    assert d.champion_before == "3" and d.rule == "already-champion"


def test_feature_family_registered_and_served(store):
    """rf-cosine: features.parquet with representative spectra; a served training accession matches its features."""
    import mlflow

    from ms2img import registry
    from ms2img.features.table import merge_features
    from ms2img.io.schema import read_events

    accs = store.accs[:10]
    events = pd.concat([read_events(store.cohort.events / f"{a}.parquet") for a in accs])
    table = merge_features(events, "cosine", progress=False)
    folder = rf_feature_model(table, store.cohort.events, np.tile([0, 1], 5), store.root / "feat" / "rf-cosine")
    version = registry.register_family(folder, data_hash="md5:x", code_version="t", events_dir=store.cohort.events)
    model = mlflow.pyfunc.load_model(f"models:/{registry.model_name(ASSAY)}/{version}")
    out = model.predict(model.input_example)
    assert out["family"].iloc[0] == "rf-cosine" and 0 <= out["probability"].iloc[0] <= 1
    assert bool(out["in_domain"].iloc[0]), out["domain_note"].iloc[0]
    predictor = model.unwrap_python_model().predictor
    # the registered domain keeps the training ion mode and a precursor floor counted per injection
    from mlflow.exceptions import MlflowException

    from ms2img.registry.registration import training_events

    known = training_events(list(predictor.model.accessions), store.cohort.events)
    assert predictor.domain.polarity == known.polarity == "negative"
    assert predictor.domain.min_precursors == float(np.percentile(known.injections, 1, method="lower"))
    with pytest.raises(MlflowException, match="the request holds positive ions; this model was trained on negative"):
        model.predict(model.input_example, params={"polarity": "positive"})
    from ms2img.serving.request import events_to_request

    inp = predictor.inputs(events_to_request(read_events(store.cohort.events / f"{accs[0]}.parquet")))
    served, trained = inp["x"][0], table.values.loc[accs[0]].to_numpy()
    assert ((served > 0) == (trained > 0)).mean() > 0.95


def test_decision_is_serialisable():
    from ms2img.registry import PromotionDecision

    d = PromotionDecision("ms2img-X", "2", "1", False, "kept", "new-accessions", "cnn", "rf-image", {"auc_diff": 0.1})
    assert d.metrics(0.8) == {
        "promoted": 0, "rejected": 1, "candidate_version": 2, "champion_version": 1, "champion_auc": 0.8,
        "auc_diff": 0.1,
    }  # fmt: skip
    assert asdict(d)["reason"] == "kept"


def test_paired_auc_difference_se_shrinks_with_more_accessions():
    from ms2img.registry import paired_auc_difference

    rng = np.random.default_rng(1)
    ses = []
    for n in (20, 200):
        y = np.tile([0, 1], n // 2)
        a, b = rng.uniform(size=n), y * 0.3 + rng.uniform(size=n)
        st = paired_auc_difference(y, a, b, n_boot=500)
        ses.append(st["auc_diff_se"])
        assert st["challenger_auc_new"] > st["champion_auc_new"] - 0.2
    assert ses[1] < ses[0]


# ------------------------------------------------------------------------------ one version per training (issue 21)
def _run_models(store, assay: str, key: str, seeds=(0,), data: str = "md5:trained-on") -> Path:
    """models/<assay>/rf-image trained "by a run" with training key ``key`` (the card says so), plus the
    reports/<assay>/ files that run wrote (selection naming its families, run.json naming its key, oof)."""
    accs = store.accs[:16]
    labels = np.tile([0, 1], 8)
    root = store.root / f"run-{assay}-{key}"
    folder = root / "models" / assay / "rf-image"
    rf_image_model(store.images, accs, labels, folder, seed=seeds[0])
    path = folder / "model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "assay": assay, "training_key": key,
                                "data_version": data, "code_version": "abc123"}))  # fmt: skip
    rep = root / "reports" / assay
    rep.mkdir(parents=True, exist_ok=True)
    oof_rows(accs, np.where(labels == 1, 90.0, 10.0), labels * 0.8 + 0.1).to_csv(rep / "oof.csv", index=False)
    selection = {"winner": "rf-image", "reason": "test", "ranking": [], "paired": {}, "families": ["rf-image"]}
    (rep / "selection.json").write_text(json.dumps(selection))
    (rep / "run.json").write_text(json.dumps({"training_key": key}))
    return root


def _promote_run(store, root: Path, assay: str):
    from ms2img import registry

    return registry.promote_assay(
        assay,
        models_dir=root / "models",
        reports_dir=root / "reports",
        events_dir=store.cohort.events,
        data_hash="md5:current-data",
        code_version="now",
    )


def test_a_retrain_of_the_same_thing_is_registered_once_with_the_models_own_data(store):
    from ms2img import registry

    name = registry.model_name("ONCE")
    first = _promote_run(store, _run_models(store, "ONCE", "k1"), "ONCE")
    # the same training key again, but other bytes (a retrain is not bit-identical): no new version
    again = _promote_run(store, _run_models(store, "ONCE", "k1", seeds=(7,)), "ONCE")
    versions = registry.mlflow_client().search_model_versions(f"name='{name}'")
    assert [str(v.version) for v in versions] == ["1"] and first.candidate == again.candidate == "1"
    tags = versions[0].tags
    assert tags[registry.DATA_TAG] == "md5:trained-on"  # the model's own data, not the data present at promotion
    assert tags[registry.CODE_TAG] == "abc123" and tags["promotion.status"] == "champion"
    logged = registry.mlflow_client().get_logged_model(versions[0].source.removeprefix("models:/"))
    assert [m.value for m in logged.metrics if m.key == "auc_mean"] == [0.8]  # the family's own AUC, once


def test_only_the_models_of_the_run_that_wrote_the_reports_are_registered(store):
    from ms2img import registry

    root = _run_models(store, "STALE", "new-key")
    shutil.copytree(root / "models" / "STALE" / "rf-image", root / "models" / "STALE" / "rf-cosine")
    stale = root / "models" / "STALE" / "rf-cosine" / "model.json"
    stale.write_text(json.dumps({**json.loads(stale.read_text()), "family": "rf-cosine", "training_key": "old-key"}))
    selection = root / "reports" / "STALE" / "selection.json"
    selection.write_text(json.dumps({**json.loads(selection.read_text()), "families": ["rf-image", "rf-cosine"]}))
    decision = _promote_run(store, root, "STALE")
    assert decision.registered == {"rf-image": "1"}  # the folder an earlier run left is not this run's model
    families = {v.tags["family"] for v in registry.mlflow_client().search_model_versions("name='ms2img-STALE'")}
    assert families == {"rf-image"}


def test_a_version_left_by_a_killed_promote_is_adopted_or_abandoned_with_a_reason(store):
    from ms2img import registry

    name = registry.model_name("KILLED")
    # a promote killed right after registering: two versions pending, one of an earlier training
    old = _run_models(store, "KILLED", "earlier")
    registry.register_family(old / "models" / "KILLED" / "rf-image", events_dir=store.cohort.events)
    root = _run_models(store, "KILLED", "this-run", seeds=(3,))
    registry.register_family(root / "models" / "KILLED" / "rf-image", events_dir=store.cohort.events)
    client = registry.mlflow_client()
    assert {client.get_model_version(name, v).tags["promotion.status"] for v in ("1", "2")} == {"pending"}
    decision = _promote_run(store, root, "KILLED")
    assert decision.candidate == "2" and decision.promoted
    adopted, abandoned = client.get_model_version(name, "2").tags, client.get_model_version(name, "1").tags
    assert adopted["promotion.status"] == "champion" and "adopted" in adopted["promotion.adopted"]
    assert abandoned["promotion.status"] == "abandoned" and "did not finish" in abandoned["promotion.abandoned"]
    assert len(client.search_model_versions(f"name='{name}'")) == 2


def test_a_model_whose_interval_reaches_chance_is_registered_not_served(store):
    """The lab user's 10 FERMO extracts: "first champion: rf-image (cv AUC 1.000)" with the interval reaching chance.
    registry.beyond_chance (default true) keeps such a version out of the champion alias, and says why."""
    from ms2img import registry
    from ms2img.errors import ConfigError

    root = store.root / "small-cohort"
    accs = store.accs[:12]
    values = np.tile([10.0, 90.0], 6)
    rf_image_model(store.images, accs, (values > 50).astype(int), root / "models" / ASSAY / "rf-image", auc=0.55)
    write_round(root, oof_rows(accs, values, np.linspace(0, 1, 12)))
    where = {"models_dir": root / "models", "reports_dir": root / "reports", "events_dir": store.cohort.events,
             "data_hash": "md5:small", "code_version": "test", "prefix": "small"}  # fmt: skip
    name = registry.model_name(ASSAY, prefix="small")
    decision = registry.promote_assay(ASSAY, **where)
    assert not decision.promoted and decision.rule == "chance" and decision.champion_after is None, decision
    assert decision.rejected and decision.reason.startswith("no champion: rf-image's cv AUC 0.550 [0.450, 0.650]")
    with pytest.raises(ConfigError, match="has no champion: promotion of version 1 said: no champion: rf-image"):
        registry.require_alias(name, "champion")
    forced = registry.promote_version(name, "1", events_dir=store.cohort.events, beyond_chance=False)
    assert forced.promoted and forced.rule == "first" and forced.champion_after == "1"
