"""The retrain flow on a tiny project in a temp git repository with a local DVC remote.

``retrain.fn(...)`` runs the flow's steps as plain calls (no Prefect server); two tests run it for real under
``prefect_test_harness``. Fast tests drive fresh, untrained projects: faults (bad data, no DVC remote, MLflow
down, unknown assay or profile) stop the flow early with a clear error before anything is trained. The ``slow``
ones drive the session's trained project (conftest ``reproduced``: one `dvc repro` from scratch): a reproduced
pipeline has nothing to do, new data is detected, trained on and considered for promotion, ``force`` retrains,
and bad data keeps the champion.
"""

from __future__ import annotations

import shlex
import socket
import sys
import time

import pytest

from flows import pipeline
from flows.retrain import (
    NEW_LOCAL,
    detect_new_data,
    local_data_is_new,
    refused_files,
    retrain,
    sync_data,
    train_assay,
    unvalidated_marker,
)
from flows.watch import watch_new_data
from ms2img import tracking
from ms2img.commands.init import VERSION_FILE, version_stamp
from ms2img.errors import ConfigError, ValidationFailed

pytestmark = pytest.mark.integration
slow = pytest.mark.slow

ASSAY = "elastase"
MODEL = f"ms2img-{ASSAY}"
PROMOTE_OUTS = (f"metrics/{ASSAY}_promotion.json", f"reports/{ASSAY}/promotion.json")
PREFIX = "ms2img"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@slow
def test_nothing_to_do_on_a_reproduced_pipeline(project):
    assert project.status() == {}
    before = project.mtimes("dvc.lock", "data/raw.dvc", "metrics", "models")
    versions = project.versions(MODEL)
    assert detect_new_data.fn([ASSAY], PREFIX, project.root) == {ASSAY: False}
    assert retrain.fn(project_dir=str(project.root)) == {}
    assert watch_new_data.fn(project_dir=str(project.root)) is False  # the watcher agrees: nothing new
    assert project.mtimes("dvc.lock", "data/raw.dvc", "metrics", "models") == before
    assert project.versions(MODEL) == versions


@slow
def test_new_data_is_detected_trained_on_promoted_and_then_not_new(project):
    versions = project.versions(MODEL)
    old_hash = tracking.data_hash(project.raw)
    project.sh("ms2img", "synth", "--out", "data/raw", "--accessions", "2", "--append")
    assert detect_new_data.fn([ASSAY], PREFIX, project.root) == {ASSAY: False}  # not recorded by DVC yet
    assert local_data_is_new(project.root)  # which the watcher sees from the files themselves
    assert sync_data.fn(project.root) == NEW_LOCAL  # what the flow does first: dvc add (pushed once validated)
    new_hash = tracking.data_hash(project.raw)
    assert new_hash != old_hash
    assert detect_new_data.fn([ASSAY], PREFIX, project.root) == {ASSAY: True}

    results = retrain.fn(project_dir=str(project.root))
    assert set(results) == {ASSAY}
    decision = results[ASSAY]
    new_versions = project.versions(MODEL)
    assert new_versions[: len(versions)] == versions and len(new_versions) > len(versions)  # one per family
    assert decision["candidate"] in new_versions[len(versions) :], decision
    assert isinstance(decision["promoted"], bool) and decision["reason"]
    champion = project.champion(MODEL)
    assert str(champion.version) == (decision["candidate"] if decision["promoted"] else decision["champion_before"])
    newest = project.client().get_model_version(MODEL, new_versions[-1])
    assert newest.tags["data.hash"] == new_hash
    assert detect_new_data.fn([ASSAY], PREFIX, project.root) == {ASSAY: False}
    # everything the flow ran outside `dvc repro` is recorded in dvc.lock and pushed to the remote
    assert project.status() == {}
    assert project.status("--cloud") == {}
    metrics = project.json(f"metrics/{ASSAY}.json")
    assert metrics["families"]["cnn"]["auc"]
    assert (project.root / "reports" / ASSAY / "drivers.csv").exists()  # explain@ ran after promote@
    assert (project.root / "report" / "index.html").exists()
    # a second run on the same data does nothing
    before = project.mtimes("dvc.lock", "metrics", "models")
    assert retrain.fn(project_dir=str(project.root)) == {}
    assert project.mtimes("dvc.lock", "metrics", "models") == before
    assert project.versions(MODEL) == new_versions


@slow
def test_real_prefect_flow_run_completes(project):
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        state = retrain(project_dir=str(project.root), return_state=True)
    assert state.is_completed(), state
    assert state.result() == {}  # data and pipeline unchanged since the last run


@pytest.mark.slow
def test_force_retrains_unchanged_data_in_a_real_flow_run(project):
    """``force`` retrains; run for real, so per-assay training goes through task submission and the task runner.
    The same data, params and code give the same registration keys: trained again, registered nothing new."""
    from prefect.testing.utilities import prefect_test_harness

    before, trained = project.versions(MODEL), project.mtimes(f"metrics/{ASSAY}.json")
    with prefect_test_harness(server_startup_timeout=60):
        state = retrain(project_dir=str(project.root), force=True, return_state=True)
    assert state.is_completed(), state
    results = state.result()
    assert project.mtimes(f"metrics/{ASSAY}.json") != trained  # the train stage ran again
    assert project.versions(MODEL) == before
    assert str(project.champion(MODEL).version) == results[ASSAY]["champion_after"]
    assert project.status() == {}


@pytest.fixture(scope="module")
def fresh(tiny_project):
    """An untrained project with a DVC remote (about 10 s to build), for the fast fault tests."""
    return tiny_project("fresh", remote=True)


def test_unreachable_mlflow_fails_fast_before_anything_runs(fresh, in_project, monkeypatch):
    with in_project(fresh) as project:
        uri = f"http://127.0.0.1:{_closed_port()}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        before = project.mtimes("data/raw.dvc", "params.yaml")
        started = time.perf_counter()
        with pytest.raises(ConfigError, match=f"MLflow tracking server {uri} is unreachable"):
            retrain.fn(project_dir=str(project.root), force=True)
        assert time.perf_counter() - started < 30  # MLflow's own client retries for minutes
        assert project.mtimes("data/raw.dvc", "params.yaml") == before
        assert not (project.root / "data" / "events").exists() and not (project.root / "dvc.lock").exists()


def test_a_failed_flow_run_ends_in_one_line_not_tracebacks(fresh):
    """The real command under a real Prefect run: the project's own error is the last line, with no traceback."""
    import os
    import subprocess

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_closed_port()}"}
    cmd = [sys.executable, "-m", "flows.retrain", "--project-dir", str(fresh.root)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300, cwd=pipeline.ROOT)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    errors = [line for line in proc.stderr.splitlines() if line.startswith("retrain: error:")]
    assert len(errors) == 1 and "MLflow tracking server" in errors[0], output
    assert "Traceback" not in output and len(output.splitlines()) < 20  # Prefect's state lines, no stack


def test_bad_data_in_a_fresh_project_stops_before_training(fresh, in_project):
    """New local data that fails validation: recorded and validated, then the flow stops; nothing is trained or
    pushed, and the DVC pointer goes back to the last good data."""
    with in_project(fresh) as project:
        pointer = project.root / "data" / "raw.dvc"
        recorded = pointer.read_bytes()
        export = project.raw / "exports" / "ACC0002.txt"
        original = export.read_bytes()  # MS-DIAL exports end lines in CRLF: restore the very bytes
        export.write_text(_fragment_above_precursor(original.decode().replace("\r\n", "\n")))
        stamp = project.root / VERSION_FILE  # as `ms2img init` writes it; here, of an older ms2img
        stamp.write_text("ms2img 0.0.1 sha256:old\n")
        try:
            with pytest.raises(ValidationFailed) as info:
                retrain.fn(project_dir=str(project.root))
            assert stamp.read_text() == version_stamp()  # the flow, not only `ms2img retrain`, sees new code
            message = str(info.value)
            assert "validation failed" in message and "ACC0002" in message and "above_precursor" in message
            assert str(project.root / "reports" / "validation.html") in message
            assert "Nothing was trained or pushed" in message and "back at the last validated data" in message
            assert project.json("reports/validation.json")
            assert pointer.read_bytes() == recorded  # `dvc repro` had recorded the bad drop: put back
            assert not (project.root / "models").exists() and not (project.root / "metrics" / f"{ASSAY}.json").exists()
            assert project.versions(MODEL) == []
            # an input a stage refuses outright (exit 2: here assays.csv, a row longer than its header) is put
            # back the same way; it used to stay recorded as the versioned data
            export.write_bytes(original)
            assays = project.raw / "assays.csv"
            good_assays = assays.read_bytes()
            assays.write_bytes(good_assays + b"ACC9999,1,2,3,4,5,6,7\n")
            try:
                with pytest.raises(pipeline.StageFailed, match="Nothing was trained or pushed") as refused:
                    retrain.fn(project_dir=str(project.root))
                assert "fields but the header has" in str(refused.value), refused.value
                assert "back at the last validated data" in str(refused.value)
                assert pointer.read_bytes() == recorded
                # the watcher sees files the pointer does not record, and that these very files were refused
                assert local_data_is_new(project.root) and refused_files(project.root)
                assays.write_bytes(good_assays + b"ACC9999,1,2\n")
                assert local_data_is_new(project.root) and not refused_files(project.root)
            finally:
                assays.write_bytes(good_assays)
        finally:
            export.write_bytes(original)
            stamp.unlink()


def test_an_assay_whose_training_refuses_is_one_row_of_the_summary(tiny_project, in_project, capsys, caplog):
    """The only assay refuses to train (more folds than a class has accessions): the summary says why in its row,
    lists the families params.yaml trains, and the flow neither reports nor pushes (nothing new to show)."""
    refusing = tiny_project("refusing", overrides={"cv.folds": 40, "resolution.assays": []})
    caplog.set_level("INFO", logger="flows.retrain")
    failed = pytest.raises(pipeline.StageFailed, match=r"training failed for \['elastase'\]")
    with in_project(refusing) as project, failed:
        retrain.fn(project_dir=str(project.root))
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(f"| {ASSAY} |"))
    assert "training failed (champion kept): train@elastase failed" in row and "| none |" in row, row
    header = next(line for line in out.splitlines() if line.startswith("| assay |"))
    assert "cnn-mt" not in header and "rf-image" in header
    assert "report and pipeline push skipped" in out
    assert "bringing ['elastase'] up to date" in caplog.text and "still stale" not in caplog.text
    assert not (project.root / "report").exists()


@slow
def test_bad_data_stops_before_training_and_keeps_the_champion(project):
    champion = str(project.champion(MODEL).version)
    versions = project.versions(MODEL)
    trained_outputs = project.mtimes("models", f"metrics/{ASSAY}.json", f"metrics/{ASSAY}_promotion.json")
    pointer = (project.root / "data" / "raw.dvc").read_bytes()
    export = project.raw / "exports" / "ACC0002.txt"
    original = export.read_bytes()  # MS-DIAL exports end lines in CRLF: restore the very bytes
    export.write_text(_fragment_above_precursor(original.decode().replace("\r\n", "\n")))
    try:
        with pytest.raises(ValidationFailed) as info:
            retrain.fn(project_dir=str(project.root))
        message = str(info.value)
        assert (project.root / "data" / "raw.dvc").read_bytes() == pointer  # still the champion's data
        assert "validation failed" in message and "ACC0002" in message and "above_precursor" in message
        assert str(project.root / "reports" / "validation.html") in message
        assert (project.root / "reports" / "validation.html").exists()
        assert project.json("reports/validation.json")  # the report of this run says what failed
        assert str(project.champion(MODEL).version) == champion
        assert project.versions(MODEL) == versions  # nothing was trained or registered
        assert project.mtimes("models", f"metrics/{ASSAY}.json", f"metrics/{ASSAY}_promotion.json") == trained_outputs
    finally:
        export.write_bytes(original)
    # with the data fixed, the next run re-ingests and re-validates but trains nothing: the data is what the
    # champion was trained on, and DVC finds every later stage's inputs unchanged
    results = retrain.fn(project_dir=str(project.root))
    assert results[ASSAY]["champion_after"] == champion, results
    assert project.versions(MODEL) == versions
    assert project.mtimes("models", f"metrics/{ASSAY}.json") == {
        k: v for k, v in trained_outputs.items() if not k.endswith("_promotion.json")
    }
    assert project.status() == {}


def test_a_drop_an_interrupted_run_recorded_is_put_back_when_the_next_run_refuses_it(project):
    """The ops engineer: Ctrl-C during ingest left data/raw.dvc at a bad drop, and the next run refused the data but
    kept the pointer (only the run that recorded the drop knew the last validated one)."""
    pointer = (project.root / "data" / "raw.dvc").read_bytes()
    export = project.raw / "exports" / "ACC0002.txt"
    original = export.read_bytes()
    export.write_text(_fragment_above_precursor(original.decode().replace("\r\n", "\n")))
    try:
        assert sync_data.fn(project.root) == NEW_LOCAL  # as far as the interrupted run got: the drop is recorded
        assert (project.root / "data" / "raw.dvc").read_bytes() != pointer
        assert unvalidated_marker(project.root).read_bytes() == pointer
        with pytest.raises(ValidationFailed, match="data/raw.dvc is back at the last validated data"):
            retrain.fn(project_dir=str(project.root))
        assert (project.root / "data" / "raw.dvc").read_bytes() == pointer
        assert not unvalidated_marker(project.root).exists()
    finally:
        export.write_bytes(original)
    retrain.fn(project_dir=str(project.root))
    assert project.status() == {} and not unvalidated_marker(project.root).exists()


def test_a_chain_that_fails_after_a_stage_keeps_that_stage_recorded(project):
    """Each stage is recorded as it finishes: promote ran, explain failed, and the next run starts at explain (one
    record after all chains lost a finished training to a failure or a Ctrl-C later in its chain)."""
    kept = {rel: (project.root / rel).read_bytes() for rel in ("params.yaml", *PROMOTE_OUTS)}  # a shared project
    promote = f"promote@{ASSAY}"
    try:
        project.set_param("serve.max_rows", 12345)  # a promote@ parameter: that stage alone is stale
        assert set(project.status(promote, f"explain@{ASSAY}")) == {promote}
        chain = [
            (promote, pipeline.stage_command(promote, cwd=project.root)),
            (f"explain@{ASSAY}", "ms2img explain --no-such"),
        ]
        with pytest.raises(pipeline.StageFailed, match=f"explain@{ASSAY} failed with exit code 2"):
            train_assay.fn(ASSAY, chain, project.root)
        assert project.status(promote) == {}
    finally:
        for rel, data in kept.items():
            (project.root / rel).write_bytes(data)
        project.dvc("commit", "--force", promote)
    assert project.status() == {}


@slow
def test_a_retry_after_a_crash_starts_after_the_stages_its_first_attempt_finished(project, tmp_path):
    """A retried chain re-ran train and promote before the stage that crashed (every family registered twice); in
    a flow run the retry starts at the crashed stage. Harmless commands stand in for promote and explain."""
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    counts = tmp_path / "counts"
    first = f"import sys; open({str(counts)!r}, 'a').write('p')"
    crash_once = (f"import os, sys; open({str(counts)!r}, 'a').write('e'); "
                  f"sys.exit(0 if open({str(counts)!r}).read().count('e') > 1 else 137)")  # fmt: skip
    chain = [(f"promote@{ASSAY}", f"{sys.executable} -c {shlex.quote(first)}"),
             (f"explain@{ASSAY}", f"{sys.executable} -c {shlex.quote(crash_once)}")]  # fmt: skip

    @flow
    def one_chain() -> list[str]:
        return train_assay(ASSAY, chain, project.root)

    with prefect_test_harness(server_startup_timeout=60):
        assert one_chain() == [name for name, _ in chain]
    assert counts.read_text() == "pee"  # promote once, explain crashed then ran again
    assert project.status() == {}


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
        with pytest.raises(ConfigError, match=r"unknown profile 'huge'.*\['paper'\]"):
            retrain.fn(profile="huge", project_dir=str(project.root))
        assert (project.root / "params.yaml").read_text() == params  # preflight changes nothing


def test_project_dir_must_be_a_project(tmp_path):
    with pytest.raises(ConfigError, match="no dvc.yaml"):
        pipeline.project_dir(tmp_path)


def test_stage_commands_run_as_argument_lists_without_a_shell(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert pipeline.command_args("ms2img ingest a --out 'b c' && ms2img validate x") == [
        ["ms2img", "ingest", "a", "--out", "b c"],
        ["ms2img", "validate", "x"],
    ]
    script = "import sys; print('x stage fold 1 AUC 0.9'); print('chatter'); print('$HOME;', sys.argv[1])"
    seen = []
    out = pipeline.run([sys.executable, "-c", script, "a && b"], cwd=tmp_path, what="train@X", echo=seen.append)
    assert out.splitlines() == ["x stage fold 1 AUC 0.9", "chatter", "$HOME; a && b"]  # no shell expansion
    assert seen == ["train@X: x stage fold 1 AUC 0.9"]  # progress lines only, as they come
    fail = "import sys; print('\\n'.join(f'line {i}' for i in range(40))); sys.exit(3)"
    with pytest.raises(pipeline.StageFailed, match="train@X failed with exit code 3") as info:
        pipeline.run([sys.executable, "-c", fail], cwd=tmp_path, what="train@X")
    assert str(info.value) == "train@X failed with exit code 3: line 39"  # one line, ending in the output's last
    assert "line 39" in info.value.tail and "line 5\n" not in info.value.tail  # the tail only, kept for the log
    refusal = "print('training fold 1'); print('ms2img train: error: cv.folds 5: too few'); print('ERROR: dvc'); 1/0"
    with pytest.raises(pipeline.StageFailed) as info:
        pipeline.run([sys.executable, "-c", refusal], cwd=tmp_path, what="train@X")
    assert str(info.value) == "train@X failed with exit code 1: ms2img train: error: cv.folds 5: too few"
    killed = "import os, signal; print('fold 3/5: AUC 0.81', flush=True); os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(pipeline.StageFailed, match=r"exit code -9: killed by signal 9 \(2: .*; 9: out of memory"):
        pipeline.run([sys.executable, "-c", killed], cwd=tmp_path, what="train@X")


def test_a_failed_stage_gets_the_outputs_dvc_removed_back(tmp_path):
    """``dvc repro`` deletes a stage's outputs before its command runs: a stage that then failed (a truncated
    export in ingest) left the project without its last good events. The flows' repro checks them out again; what
    the failed command wrote itself, and a ``persist`` output DVC never removed, stay as they are."""
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  copy:\n    cmd: grep -q good src.txt && echo failed-run > note.txt && cp src.txt out.txt\n"
        "    deps: [src.txt]\n    outs: [out.txt, {note.txt: {cache: false, persist: true}}]\n"
    )
    pipeline.dvc("init", "-q", cwd=tmp_path)
    (tmp_path / "src.txt").write_text("good\n")
    pipeline.repro("copy", cwd=tmp_path)
    (tmp_path / "note.txt").write_text("last good report\n")
    (tmp_path / "src.txt").write_text("bad\n")
    with pytest.raises(pipeline.StageFailed, match="failed to reproduce 'copy'"):
        pipeline.repro("copy", cwd=tmp_path)
    assert (tmp_path / "out.txt").read_text() == "good\n"  # back from the cache, as dvc.lock records it
    assert (tmp_path / "note.txt").read_text() == "last good report\n"  # persist: never removed
    assert pipeline.restore_removed_outputs(tmp_path) == []  # nothing missing: nothing checked out


def _fragment_above_precursor(text: str) -> str:
    """An export whose MS/MS spectra all have their fragments far above the precursor (validation must reject it,
    whatever share of isotope peaks above the precursor ``validate.max_above_precursor_share`` tolerates)."""
    lines = text.split("\n")
    header = next(i for i, line in enumerate(lines) if line.startswith("Alignment ID\t"))
    col = lines[header].split("\t").index("MS/MS spectrum")
    changed = 0
    for i in range(header + 1, len(lines)):
        cells = lines[i].split("\t")
        if len(cells) > col and ":" in cells[col]:
            peaks = cells[col].split(" ")
            cells[col] = " ".join(f"{1900.5 + k}:{p.split(':')[1]}" for k, p in enumerate(peaks))
            lines[i] = "\t".join(cells)
            changed += 1
    assert changed, "no MS/MS spectrum in the export"
    return "\n".join(lines)


def test_a_stage_that_refuses_is_not_retried_a_crash_is():
    """A retried chain re-ran train and promote before failing at the same place (a regression model's explain):
    every family was registered twice. Exit 2 is ms2img's own refusal; anything else may be transient."""
    from prefect.states import Failed

    from flows.retrain import worth_retrying

    refused = pipeline.StageFailed("explain@A failed with exit code 2", 2)
    crashed = pipeline.StageFailed("train@A failed with exit code 137", 137)
    assert not worth_retrying(None, None, Failed(data=refused))
    assert worth_retrying(None, None, Failed(data=crashed)) and worth_retrying(None, None, Failed(data=OSError()))
    with pytest.raises(pipeline.StageFailed) as info:
        pipeline.run([sys.executable, "-c", "import sys; sys.exit(2)"], cwd=pipeline.ROOT, what="x")
    assert info.value.returncode == 2 and info.value.deterministic


def test_a_failure_without_a_message_still_fills_its_summary_row():
    """A cancelled job's exception may have no message: the summary row names its type (it raised IndexError)."""
    from flows.retrain import first_line

    assert first_line(RuntimeError()) == "RuntimeError"
    assert first_line(ValueError("train@A failed | exit 2\ndetails")) == "train@A failed / exit 2"
