"""dvc.yaml on a tiny project in a temp git repository: a full `dvc repro`, a no-op second one, and parameter
changes that mark exactly the stages that read them (the pipeline is the one definition of the job).

The session's tiny project (conftest ``reproduced``) is reproduced once from scratch (several minutes on 2 busy
cores: every family is trained, then promoted, explained and reported), so these tests are ``slow``; each leaves
`dvc status` clean.
"""

from __future__ import annotations

import json

import pytest
import yaml
from builders import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASSAY = "elastase"
MODEL = f"ms2img-{ASSAY}"
PER_ASSAY = ("train", "promote", "explain", "resolution")
EVERY = {"ingest", "render", "features", "report"} | {f"{stage}@{ASSAY}" for stage in PER_ASSAY}
FAMILIES = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["train"]["families"]  # the project's candidates
TRAIN_OUTPUTS = ("data/events", "data/images", "data/features", "models", f"metrics/{ASSAY}.json")


def test_first_repro_runs_every_stage_and_registers_a_champion(reproduced, project):
    before = reproduced.status_before
    assert EVERY <= set(before), f"a fresh project should have every stage to run, dvc status said {before}"
    assert project.ran_stages(reproduced.output) == EVERY, reproduced.output[-3000:]
    assert not any(name.startswith("baselines@") for name in before)

    metrics = reproduced.metrics[f"{ASSAY}.json"]
    assert set(metrics["families"]) == set(FAMILIES)
    for entry in metrics["families"].values():
        auc = entry["auc"]["mean"]
        assert auc is None or 0.0 <= auc <= 1.0
    for fam in FAMILIES:
        assert (project.root / "models" / ASSAY / fam / "model.json").exists(), fam
    selection = project.json(f"reports/{ASSAY}/selection.json")
    assert selection["winner"] in FAMILIES
    promotion = reproduced.metrics[f"{ASSAY}_promotion.json"]
    assert promotion["promoted"] == 1 and promotion["champion_version"] >= 1, promotion
    assert project.json("reports/validation.json")  # the validation report is a metrics file of ingest
    assert (project.root / "report" / "index.html").stat().st_size > 1000
    assert (project.root / "reports" / ASSAY / "drivers.csv").exists()
    table1 = reproduced.metrics[f"{ASSAY}_resolution.json"]["table"]  # the paper's Table 1, one row per size
    assert [row["size"] for row in table1] == ["75x70"] and 0.0 <= table1[0]["auc_mean"] <= 1.0

    champion = reproduced.champion[ASSAY]
    assert champion["tags"]["data.hash"] == reproduced.data_hash  # trained on exactly what data/raw.dvc says
    assert champion["tags"]["family"] == selection["winner"]
    assert reproduced.data_hash.startswith("md5:")
    lock = (project.root / "dvc.lock").read_text()
    for stage in EVERY:
        assert f"  {stage}:" in lock, f"{stage} missing from dvc.lock"
    shown = json.loads(project.dvc("plots", "show", "--json"))["data"]  # dvc.yaml's top-level plots: the figures
    roc = f"plots/{ASSAY}/roc_{selection['winner'].replace('-', '_')}.png"
    assert roc in shown and any("fingerprints" in p for p in shown), shown


def test_second_repro_is_a_no_op(project):
    assert project.status() == {}
    versions = project.versions(MODEL)
    watched = project.mtimes(*TRAIN_OUTPUTS, "metrics", "dvc.lock")
    out = project.dvc("repro")
    assert project.ran_stages(out) == set(), out[-3000:]
    assert f"Stage 'train@{ASSAY}' didn't change, skipping" in out
    assert project.mtimes(*TRAIN_OUTPUTS, "metrics", "dvc.lock") == watched
    assert project.versions(MODEL) == versions  # nothing trained, nothing registered


def test_explain_parameter_reruns_only_explain_and_report(project):
    assert project.status() == {}
    versions = project.versions(MODEL)
    untouched = project.mtimes(*TRAIN_OUTPUTS)
    project.set_param("explain.top", 5)  # kept: the project is reproduced with it
    stale = project.status()
    # the stage that reads the parameter, and the report, which shows every parameter in effect
    assert set(stale) == {f"explain@{ASSAY}", "report"}, stale
    out = project.dvc("repro")
    ran = project.ran_stages(out)
    assert f"explain@{ASSAY}" in ran and ran <= {f"explain@{ASSAY}", "report"}, out[-3000:]
    assert project.mtimes(*TRAIN_OUTPUTS) == untouched
    assert project.versions(MODEL) == versions
    assert project.status() == {}


@pytest.mark.parametrize("dotted, value", [("cv.repeats", 2), ("baselines.rf_trees", [12]), ("cnn.epochs", 2)])
def test_a_training_parameter_marks_train_stale(project, dotted, value):
    assert project.status() == {}
    params = (project.root / "params.yaml").read_text()
    try:
        project.set_param(dotted, value)
        stale = project.status()
        # train reads it; the report shows every parameter; Table 1 reruns when the CNN's own settings change
        expected = {f"train@{ASSAY}", "report"} | ({f"resolution@{ASSAY}"} if dotted.startswith("cnn.") else set())
        assert set(stale) == expected, stale
    finally:
        (project.root / "params.yaml").write_text(params)
    assert project.status() == {}
