"""The retrain flow on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1): each worker trains an
assay, the flow process records them, and the metrics and champions equal those of a local run on the same cohort.
Two assays, forests only (the CNN adds minutes, not cases). Without an address the flow keeps its local threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows import dask_runner, pipeline
from flows.retrain import retrain

ASSAYS = ["elastase", "TPC"]
OVERRIDES = {"labels.assays": ASSAYS, "train.families": ["rf-image", "rf-cosine"], "resolution.assays": []}


def _worker_cpu_seconds(dask_worker) -> dict:  # runs inside each worker process (Client.run)
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    servers = [c for c in me.children(recursive=True) if "uvicorn" in " ".join(c.cmdline())]
    return {"children": t.children_user + t.children_system, "tasks": dask_worker.state.executed_count,
            "servers": len(servers)}  # fmt: skip


def _outcome(project) -> dict:
    """Per assay: every family's AUC (mean and interval) and the champion's family and version."""
    out = {}
    for assay in ASSAYS:
        fams = json.loads((project.root / "metrics" / f"{assay}.json").read_text())["families"]
        champion = project.champion(f"ms2img-{assay}")
        out[assay] = {
            "auc": {fam: fams[fam]["auc"] for fam in sorted(fams)},
            "champion": (champion.tags.get("family"), str(champion.version)),
        }
    return out


@pytest.mark.integration
@pytest.mark.slow
def test_the_flow_on_two_dask_workers_equals_a_local_run(tiny_project, in_project):
    import cloudpickle
    from distributed import Client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module

    local = tiny_project("dask-local", overrides=OVERRIDES)
    with in_project(local):
        assert set(retrain.fn(project_dir=str(local.root))) == set(ASSAYS)
    expected = _outcome(local)

    remote = tiny_project("dask-remote", overrides=OVERRIDES)
    with dask_runner.local_cluster(workers=2) as address, Client(address) as client:
        before = client.run(_worker_cpu_seconds)
        env = {**os.environ, "MLFLOW_TRACKING_URI": remote.tracking_uri}
        env.pop(dask_runner.ADDRESS_ENV, None)
        cmd = [sys.executable, "-m", "flows.retrain", "--dask-address", address, "--project-dir", str(remote.root)]
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, env=env, cwd=pipeline.ROOT, timeout=1200
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        after = client.run(_worker_cpu_seconds)

    assert len(after) == 2
    for worker, seen in after.items():  # each worker process ran an assay's task and its stage commands
        assert seen["tasks"] > before[worker]["tasks"], after
        assert seen["children"] - before[worker]["children"] > 1.0, after
        assert seen["servers"] == 0, after  # task runs went to the flow's Prefect API, no server of its own
    with in_project(remote):
        assert _outcome(remote) == expected
        stages = [f"{kind}@{a}" for kind in ("train", "promote", "explain") for a in ASSAYS]
        assert remote.status("--with-deps", *stages) == {}  # the flow process recorded what the workers ran


@pytest.mark.integration
@pytest.mark.slow
def test_an_unreachable_scheduler_stops_the_flow_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != dask_runner.ADDRESS_ENV}
    cmd = [sys.executable, "-m", "flows.retrain", "--dask-address", "tcp://127.0.0.1:9", "--project-dir"]
    proc = subprocess.run(
        [*cmd, str(Path(pipeline.ROOT))], check=False, capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "not reachable" in proc.stderr


def test_the_default_stays_two_local_threads_and_an_address_selects_dask(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    monkeypatch.delenv(dask_runner.ADDRESS_ENV, raising=False)
    local = dask_runner.task_runner()
    assert isinstance(local, ThreadPoolTaskRunner) and local._max_workers == dask_runner.LOCAL_THREADS
    assert dask_runner.on_cluster(retrain) is retrain  # no address: the flow object itself, unchanged
    monkeypatch.setenv(dask_runner.ADDRESS_ENV, "10.0.0.5:8786")
    assert dask_runner.dask_address() == "tcp://10.0.0.5:8786"
    assert isinstance(dask_runner.task_runner(), DaskTaskRunner)
    assert dask_runner.dask_address("tcp://127.0.0.1:1") == "tcp://127.0.0.1:1"  # the option wins over the variable


def test_the_workers_api_port_is_the_same_for_every_run_on_a_cluster():
    """A worker's Prefect events client keeps the first URL it was given: a port per run lost every later run's
    task events (a helper's second flow run on README-started workers)."""
    port = dask_runner.api_port("tcp://10.0.0.5:8786")
    assert port == dask_runner.api_port("tcp://10.0.0.5:8786") and port in dask_runner.API_PORTS
    assert len({dask_runner.api_port(f"tcp://10.0.0.5:{p}") for p in range(8786, 8796)}) > 1
    # one cluster, two spellings (the README's localhost, a worker's 127.0.0.1): one port
    assert dask_runner.api_port("tcp://localhost:8786") == dask_runner.api_port("tcp://127.0.0.1:8786")
    assert dask_runner.api_port("inproc://10.0.0.5/71/1") != dask_runner.api_port("inproc://10.0.0.5/71/2")
    assert dask_runner.api_port("tcp://scheduler:port") in dask_runner.API_PORTS  # as written, never a traceback
