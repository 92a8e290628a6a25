"""The retrain flow (issue 5) on a tiny project in a temp git repository with a local DVC remote.

``retrain.fn(...)`` runs the flow's steps as plain calls (no Prefect server); one test runs it for real under
``prefect_test_harness``. A module-scoped project is trained once by the first flow run and then reused: unchanged
data is a no-op, new data is detected and retrained on, ``force`` retrains, and faults (bad data, no DVC remote,
MLflow down) stop the flow early with a clear error and leave the champion alone.
"""

from __future__ import annotations

import socket
import time

import pytest

from flows import pipeline
from flows.retrain import detect_new_data, retrain, sync_data
from flows.watch import watch_new_data
from ms2img import tracking
from ms2img.errors import ConfigError, ValidationFailed

pytestmark = pytest.mark.integration

ASSAY = "elastase"
MODEL = f"ms2img-{ASSAY}"
PREFIX = "ms2img"


@pytest.fixture(scope="module")
def trained(tiny_project, in_project):
    """A tiny project after the flow's first run (trains, promotes, pushes), and that run's result."""
    project = tiny_project("retrain")
    with in_project(project):
        results = retrain.fn(project_dir=str(project.root))
        yield project, results


@pytest.fixture
def project(trained, in_project):
    with in_project(trained[0]) as project:
        yield project


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_first_run_trains_promotes_records_and_pushes(trained, project):
    _, results = trained
    assert set(results) == {ASSAY}
    decision = results[ASSAY]
    assert decision["promoted"] is True and decision["candidate"] == "1", decision

    champion = project.champion(MODEL)
    assert str(champion.version) == "1"
    assert champion.tags["data.hash"] == tracking.data_hash(project.raw)
    assert project.json(f"metrics/{ASSAY}.json")["cnn"]["summary"]["roc_auc"]
    assert {"rf cosine", "oplsda"} <= set(project.json(f"metrics/{ASSAY}_baselines.json"))
    # everything the flow ran outside `dvc repro` was recorded: DVC has nothing left to do ...
    assert project.status() == {}
    assert f"train@{ASSAY}:" in (project.root / "dvc.lock").read_text()
    # ... and pushed: the remote holds every cached output
    assert project.status("--cloud") == {}
    assert any(project.remote.rglob("*"))


def test_second_run_with_unchanged_data_does_nothing(project):
    lock = project.mtimes("dvc.lock", "metrics", "models")
    assert detect_new_data.fn([ASSAY], PREFIX, project.root) == {ASSAY: False}
    assert retrain.fn(project_dir=str(project.root)) == {}
    assert project.mtimes("dvc.lock", "metrics", "models") == lock
    assert project.versions(MODEL) == ["1"]
    assert watch_new_data.fn(project_dir=str(project.root)) is False  # the watcher agrees: nothing new


def test_new_data_is_detected_retrained_on_and_then_not_new(project):
    old_hash = tracking.data_hash(project.raw)
    project.sh("ms2img", "synth", "--out", "data/raw", "--accessions", "2", "--append")
    assert sync_data.fn(project.root) == "recorded new local data"  # dvc add + push of the grown cohort
    new_hash = tracking.data_hash(project.raw)
    assert new_hash != old_hash
    assert detect_new_data.fn([ASSAY], PREFIX, project.root) == {ASSAY: True}

    results = retrain.fn(project_dir=str(project.root))
    assert results[ASSAY]["candidate"] == "2" and results[ASSAY]["promoted"] is True, results
    champion = project.champion(MODEL)
    assert str(champion.version) == "2" and champion.tags["data.hash"] == new_hash
    assert detect_new_data.fn([ASSAY], PREFIX, project.root) == {ASSAY: False}
    assert project.status() == {}


@pytest.mark.slow
def test_force_retrains_unchanged_data(project):
    before = project.versions(MODEL)
    results = retrain.fn(project_dir=str(project.root), force=True)
    after = project.versions(MODEL)
    assert len(after) == len(before) + 1
    assert results[ASSAY]["candidate"] == after[-1]
    assert str(project.champion(MODEL).version) == after[-1]  # margin 1.0 in the tiny params
    assert project.status() == {}


def test_real_prefect_flow_run_completes(project):
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        state = retrain(project_dir=str(project.root), return_state=True)
    assert state.is_completed(), state
    assert state.result() == {}  # data and pipeline unchanged since the last run


def test_unreachable_mlflow_fails_fast_before_anything_runs(project, monkeypatch):
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = project.mtimes("dvc.lock", "data/raw.dvc", "params.yaml", "metrics")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"MLflow tracking server {uri} is unreachable"):
        retrain.fn(project_dir=str(project.root), force=True)
    assert time.perf_counter() - started < 30  # MLflow's own client retries for minutes
    assert project.mtimes("dvc.lock", "data/raw.dvc", "params.yaml", "metrics") == before


def test_bad_data_stops_before_training_and_keeps_the_champion(project):
    champion = str(project.champion(MODEL).version)
    versions = project.versions(MODEL)
    trained_outputs = project.mtimes("models", f"metrics/{ASSAY}.json", f"metrics/{ASSAY}_promotion.json")
    export = project.raw / "exports" / "ACC0002.txt"
    original = export.read_text()
    export.write_text(_fragment_above_precursor(original))
    try:
        with pytest.raises(ValidationFailed) as info:
            retrain.fn(project_dir=str(project.root))
        message = str(info.value)
        assert "validation failed" in message and "ACC0002" in message and "fragment_mz" in message
        assert str(project.root / "reports" / "validation.html") in message
        assert (project.root / "reports" / "validation.html").exists()
        assert project.json("reports/validation.json")  # the report of this run says what failed
        assert str(project.champion(MODEL).version) == champion
        assert project.versions(MODEL) == versions  # nothing was trained or registered
        assert project.mtimes("models", f"metrics/{ASSAY}.json", f"metrics/{ASSAY}_promotion.json") == trained_outputs
    finally:
        export.write_text(original)


def test_missing_dvc_remote_fails_at_the_start(tiny_project, in_project):
    project = tiny_project("no-remote", remote=False)
    with in_project(project):
        params = (project.root / "params.yaml").read_text()
        with pytest.raises(ConfigError, match="no default DVC remote"):
            retrain.fn(project_dir=str(project.root))
        assert not (project.root / "data" / "events").exists()  # no stage ran
        assert not (project.root / "dvc.lock").exists()
        assert (project.root / "params.yaml").read_text() == params
        with pytest.raises(ConfigError, match="unknown assays"):
            retrain.fn(assays=["nope"], project_dir=str(project.root))
        with pytest.raises(ConfigError, match="unknown profile"):
            retrain.fn(profile="huge", project_dir=str(project.root))


def test_project_dir_must_be_a_project(tmp_path):
    with pytest.raises(ConfigError, match="no dvc.yaml"):
        pipeline.project_dir(tmp_path)


def _fragment_above_precursor(text: str) -> str:
    """An export whose first MS/MS spectrum has a fragment far above its precursor (GX must reject it)."""
    lines = text.split("\n")
    header = next(i for i, line in enumerate(lines) if line.startswith("Alignment ID\t"))
    col = lines[header].split("\t").index("MS/MS spectrum")
    for i in range(header + 1, len(lines)):
        cells = lines[i].split("\t")
        if len(cells) > col and ":" in cells[col]:
            peaks = cells[col].split(" ")
            peaks[0] = "1900.5:" + peaks[0].split(":")[1]
            cells[col] = " ".join(peaks)
            lines[i] = "\t".join(cells)
            return "\n".join(lines)
    raise AssertionError("no MS/MS spectrum in the export")
