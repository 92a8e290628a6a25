"""dvc.yaml on a tiny project in a temp git repository: a full `dvc repro`, a no-op second one, and a parameter
change that reruns exactly the stages that read it (issue 5: the pipeline is the one definition of the job).

The session's tiny project (conftest ``reproduced``) is reproduced once from scratch (about 2 minutes on 2 busy
cores); the tests then read and change it in order, each leaving `dvc status` clean.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

ASSAY = "elastase"
MODEL = f"ms2img-{ASSAY}"
UPSTREAM = ("ingest", "render")  # stages a features/baselines parameter must never rerun
TRAIN_OUTPUTS = ("data/events", "data/images", "models", f"metrics/{ASSAY}.json", "reports/validation.json")


def test_first_repro_runs_every_stage_and_registers_a_champion(reproduced, project):
    every = {"ingest", "render", "features", f"train@{ASSAY}", f"baselines@{ASSAY}", f"promote@{ASSAY}"}
    before = reproduced.status_before
    assert every <= set(before), f"a fresh project should have every stage to run, dvc status said {before}"
    assert project.ran_stages(reproduced.output) == every, reproduced.output[-3000:]

    metrics = reproduced.metrics
    auc = metrics[f"{ASSAY}.json"]["cnn"]["summary"]["roc_auc"]["mean"]
    assert auc is None or 0.0 <= auc <= 1.0
    assert {"rf cosine", "rf entropy", "rf image", "oplsda"} <= set(metrics[f"{ASSAY}_baselines.json"])
    promotion = metrics[f"{ASSAY}_promotion.json"]
    assert promotion["promoted"] is True and promotion["champion_after"] == "1", promotion
    assert project.json("reports/validation.json")  # the validation report is a metrics file of ingest

    champion = reproduced.champion[ASSAY]
    assert champion["version"] == "1"
    assert champion["tags"]["data.hash"] == reproduced.data_hash  # trained on exactly what data/raw.dvc says
    assert reproduced.data_hash.startswith("md5:")
    lock = (project.root / "dvc.lock").read_text()
    for stage in every:
        assert f"  {stage}:" in lock, f"{stage} missing from dvc.lock"


def test_second_repro_is_a_no_op(project):
    assert project.status() == {}
    versions = project.versions(MODEL)
    watched = project.mtimes(*TRAIN_OUTPUTS, "data/features", "metrics", "dvc.lock")
    out = project.dvc("repro")
    assert project.ran_stages(out) == set(), out[-3000:]
    assert f"Stage 'train@{ASSAY}' didn't change, skipping" in out
    assert project.mtimes(*TRAIN_OUTPUTS, "data/features", "metrics", "dvc.lock") == watched
    assert project.versions(MODEL) == versions  # nothing trained, nothing registered


def test_features_parameter_reruns_only_downstream_stages(project):
    assert project.status() == {}
    versions = project.versions(MODEL)
    untouched = project.mtimes(*TRAIN_OUTPUTS)
    project.set_param("features.threshold", 0.75)

    stale = project.status()
    assert set(stale) == {"features"}, stale  # only the stage that reads the parameter is stale by itself
    assert "features" in str(stale["features"])  # ... and DVC says why: the params section changed

    out = project.dvc("repro")
    ran = project.ran_stages(out)
    assert {"features", f"baselines@{ASSAY}"} <= ran <= {"features", f"baselines@{ASSAY}", f"promote@{ASSAY}"}, out
    assert not ran & {*UPSTREAM, f"train@{ASSAY}"}
    assert project.mtimes(*TRAIN_OUTPUTS) == untouched  # events, images, CNN and its metrics kept
    assert project.versions(MODEL) == versions
    assert project.status() == {}


def test_top_level_baselines_parameter_marks_only_baselines_stale(project):
    assert project.status() == {}
    params = (project.root / "params.yaml").read_text()
    try:
        project.set_param("baselines.oplsda_cv_folds", 3)
        stale = project.status()
        assert set(stale) == {f"baselines@{ASSAY}"}, stale
    finally:
        (project.root / "params.yaml").write_text(params)
    assert project.status() == {}


def test_profile_override_of_a_baselines_parameter_marks_baselines_stale(project):
    assert project.status() == {}
    params = (project.root / "params.yaml").read_text()
    try:
        project.set_param("baselines.oplsda_permutations", 4, section="profiles.quick")
        assert f"baselines@{ASSAY}" in project.status()
    finally:
        (project.root / "params.yaml").write_text(params)
