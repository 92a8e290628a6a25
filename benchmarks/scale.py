"""Scaling out: the training of the demo assays on 1 vs 2 Dask worker processes (one thread each).

The retrain flow's per-assay work (``train_assay``: each assay's ``train@`` command exactly as dvc.yaml defines it)
is run four ways on the same scratch project, each inside a Prefect flow run with the flow's own task runners
(``flows.dask_runner``): one after another on this machine (the local path on one thread), on today's local
``ThreadPoolTaskRunner`` of 2, on a Dask cluster of 1 worker process and of 2 worker processes (``dask scheduler``
and ``dask worker --nthreads 1`` on 127.0.0.1, started as the README starts them). Prints the wall time of each,
the 1-vs-2-worker ratio (goal: >= 1.7 for four assays) and the overhead of the Dask path on one worker against
the local path on one thread. Speed-up needs free cores: run it on an otherwise idle machine (it prints the load).

    .venv/bin/python benchmarks/scale.py                                    # 80 accessions, params' families
    .venv/bin/python benchmarks/scale.py --families rf-image,rf-cosine      # the forests only (minutes)
    .venv/bin/python benchmarks/scale.py --project /tmp/scale --accessions 240
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
# one BLAS/TF thread per stage command: a worker process is one core's worth of work
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}  # fmt: skip


def scratch_project(root: Path, accessions: int, families: list[str] | None) -> list[str]:
    """A DVC project (no git) with the checkout's dvc.yaml and params, the synthetic cohort and its upstream stages
    (ingest, render, features) done; returns its assays."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synth"]["accessions"] = accessions
    if families:
        params["train"]["families"] = families
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "dvc.yaml").exists():
        shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
        shutil.copytree(REPO / "profiles", root / "profiles", dirs_exist_ok=True)
        shutil.copytree(
            REPO / "ms2img", root / "ms2img", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "project_template")
        )
        subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=root, check=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if not (root / "data" / "raw" / "assays.csv").exists():
        cmd = [str(BIN / "ms2img"), "synth", "--accessions", str(accessions), "--out", "data/raw", "--force"]
        subprocess.run(cmd, cwd=root, check=True, capture_output=True)
    subprocess.run([str(BIN / "dvc"), "repro", "render", "features"], cwd=root, check=True, capture_output=True)
    return list(params["labels"]["assays"])


def timed_training(project: Path, assays: list[str], runner) -> float:
    """Wall seconds of the assays' training on ``runner``, inside a Prefect flow run (server start not counted)."""
    from prefect import flow

    from flows import pipeline
    from flows.retrain import collect, submit_each, train_assay

    jobs = {a: (a, [(f"train@{a}", pipeline.stage_command(f"train@{a}", cwd=project))], project) for a in assays}

    @flow(name="scale-benchmark", task_runner=runner)
    def train_all() -> float:
        started = time.perf_counter()
        _, failed = collect(submit_each(train_assay, jobs))
        if failed:
            raise RuntimeError(f"training failed: {failed}")
        return time.perf_counter() - started

    return train_all()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=None, help="scratch project folder (default: a temp one)")
    parser.add_argument("--accessions", type=int, default=80)
    parser.add_argument("--families", default=None, help="comma-separated train.families (default: params.yaml's)")
    parser.add_argument("--dask-only", action="store_true", help="skip the local runs (1 vs 2 Dask workers only)")
    args = parser.parse_args()
    os.environ.update(ONE_THREAD)
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # dvc's stage commands call `ms2img`
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="ms2img-scale-prefect-"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.pop("MS2IMG_DASK_ADDRESS", None)
    from distributed import Client
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows import dask_runner

    project = args.project or Path(tempfile.mkdtemp(prefix="ms2img-scale-")) / "project"
    families = args.families.split(",") if args.families else None
    assays = scratch_project(project.resolve(), args.accessions, families)
    project = project.resolve()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
    print(f"project {project}: {len(assays)} assays {assays}, {args.accessions} accessions, load {os.getloadavg()}")

    seconds = {}
    stack = contextlib.ExitStack()
    stack.enter_context(dask_runner.shared_api("benchmarks/scale.py"))  # one Prefect API for flow and workers
    if not args.dask_only:
        seconds["local, 1 thread"] = timed_training(project, assays, ThreadPoolTaskRunner(max_workers=1))
        seconds["local, 2 threads"] = timed_training(project, assays, ThreadPoolTaskRunner(max_workers=2))
    for n in (1, 2):
        with dask_runner.local_cluster(workers=n, threads=1) as address:
            with Client(address) as client:  # a running cluster has imported the flow's code already
                client.run(importlib.import_module, "flows.retrain")
            seconds[f"dask, {n} worker{'s' * (n > 1)}"] = timed_training(
                project, assays, dask_runner.task_runner(address)
            )
            with Client(address) as client:  # did every worker get work?
                done = client.run(lambda dask_worker: dask_worker.state.executed_count)
            print(f"dask, {n} worker(s): tasks per worker {sorted(done.values())}")
    for what, s in seconds.items():
        print(f"{what:28s} {s:8.1f} s")
    one, two = seconds["dask, 1 worker"], seconds["dask, 2 workers"]
    print(f"1 vs 2 Dask workers: {one / two:.2f}x (goal >= 1.7)")
    if "local, 1 thread" in seconds:
        local = seconds["local, 1 thread"]
        print(f"Dask path on 1 worker vs local on 1 thread: {one - local:+.1f} s ({(one / local - 1) * 100:+.1f}%)")
    print(f"load average after: {os.getloadavg()}, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
