"""Every stage once: one flow run trains, promotes and records each asked assay once and leaves nothing stale; a
second run with no new data does nothing; ``--assays`` touches only those assays; a second flow on the same
project stops at once with one line. A two-assay project with the forests only (the CNN adds minutes, not cases).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from flows import pipeline
from flows.retrain import retrain

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASSAYS = ["elastase", "TPC"]
FAMILIES = ["rf-image", "rf-cosine"]
OVERRIDES = {"labels.assays": ASSAYS, "train.families": FAMILIES, "resolution.assays": []}


@pytest.fixture(scope="module")
def two_assays(tiny_project, in_project):
    project = tiny_project("once", overrides=OVERRIDES)
    with in_project(project):
        yield project


def _versions(project) -> dict[str, list[str]]:
    return {a: project.versions(f"ms2img-{a}") for a in ASSAYS}


def test_one_flow_run_trains_every_stage_once_and_leaves_nothing_stale(two_assays, capsys):
    project = two_assays
    results = retrain.fn(project_dir=str(project.root))
    printed = capsys.readouterr().out
    assert set(results) == set(ASSAYS)
    # recorded stages were up to date before the report task ran (the report then ran alone)
    assert "up to date after recording" in printed and "still stale" not in printed
    assert _versions(project) == {a: ["1", "2"] for a in ASSAYS}  # one version per family, registered once
    for assay in ASSAYS:
        champion = project.champion(f"ms2img-{assay}")
        assert f"{champion.tags['family']} v{champion.version}" in printed  # the summary names what the registry holds
    assert project.status() == {}
    assert project.ran_stages(project.dvc("repro", "--dry")) == set()  # an audit right after runs nothing


def test_caches_written_beside_the_code_leave_recorded_stages_up_to_date(two_assays):
    """Serving and promotion compile the MS/MS parser and render kernels with numba, which caches beside the code
    (ms2img/io/__pycache__, ms2img/render/__pycache__): stages whose code deps are those folders stay recorded."""
    project = two_assays
    for folder in ("ms2img/io", "ms2img/render"):
        cache = project.root / folder / "__pycache__"
        cache.mkdir(exist_ok=True)
        (cache / "msms._plain_loop-249.py311.nbi").write_bytes(b"numba index")
        (cache / "msms._plain_loop-249.py311.1.nbc").write_bytes(b"numba code")
        (project.root / folder / "stray.pyc").write_bytes(b"bytecode")
    assert project.status() == {}


def test_a_second_run_with_no_new_data_does_nothing_in_seconds(two_assays):
    project = two_assays
    before = project.mtimes("dvc.lock", "metrics", "models", "report")
    started = time.perf_counter()
    assert retrain.fn(project_dir=str(project.root)) == {}
    assert time.perf_counter() - started < 60
    assert _versions(project) == {a: ["1", "2"] for a in ASSAYS}
    assert project.mtimes("dvc.lock", "metrics", "models", "report") == before


def test_a_second_flow_on_the_same_project_stops_at_once_with_one_line(two_assays):
    project = two_assays
    env = {**os.environ, "MLFLOW_TRACKING_URI": project.tracking_uri}
    cmd = [sys.executable, "-m", "flows.retrain", "--force", "--project-dir", str(project.root)]
    with pipeline.project_lock(project.root):
        started = time.perf_counter()
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=300, cwd=pipeline.ROOT)
        seconds = time.perf_counter() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("retrain: error:")]
    assert len(errors) == 1 and "another ms2img flow is running" in errors[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert seconds < 120  # the start of Prefect's temporary server, not a training
    assert _versions(project) == {a: ["1", "2"] for a in ASSAYS}


def test_a_killed_flow_leaves_the_project_unlocked(two_assays):
    code = (
        "import sys, time; from flows import pipeline\n"
        "with pipeline.project_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(two_assays.root)], stdout=subprocess.PIPE, text=True, cwd=pipeline.ROOT
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(pipeline.ProjectBusy, match="pid"), pipeline.project_lock(two_assays.root):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with pipeline.project_lock(two_assays.root):
        pass  # the kernel released the lock with the process


def test_a_run_asked_for_one_assay_touches_only_that_assay(two_assays):
    project = two_assays
    project.sh("ms2img", "synth", "--out", "data/raw", "--accessions", "3", "--append")
    other = ASSAYS[1]
    before = project.mtimes(f"models/{other}", f"metrics/{other}.json", f"reports/{other}")
    versions = _versions(project)
    results = retrain.fn(assays=[ASSAYS[0]], project_dir=str(project.root))
    assert set(results) == {ASSAYS[0]}
    after = _versions(project)
    assert after[other] == versions[other]  # the other assay's registry entry is untouched ...
    assert project.mtimes(f"models/{other}", f"metrics/{other}.json", f"reports/{other}") == before  # ... its outputs
    assert len(after[ASSAYS[0]]) == len(versions[ASSAYS[0]]) + len(FAMILIES)  # new data: one new version per family
    stale = set(project.status())
    assert stale and all(other in name for name in stale), stale  # what was not asked stays stale, honestly
