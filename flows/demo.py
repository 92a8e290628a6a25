"""``make demo``: the main job on the bundled synthetic cohort, end to end, on a laptop.

synthetic cohort -> DVC (add, push) -> a real Prefect ``retrain`` flow run (params.yaml as it is: ingest +
validate, render, features, per assay every model family on the same folds, promotion of the winner,
attribution, the HTML report) -> MLflow runs and registered champions. Prints the summary table, how to open
the MLflow and Prefect UIs and the report, how to serve a model, and its own wall time.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from flows import dask_runner, pipeline, process
from flows.retrain import quiet_known_errors, retrain
from ms2img.errors import Ms2ImgError
from ms2img.params import load_params


def prepare_data(accessions: int, seed: int, project: Path) -> None:
    """Generate the cohort (deterministic, so an existing one is kept) and version it with DVC."""
    raw = project / "data" / "raw"
    if not (raw / "assays.csv").exists():
        pipeline.run(
            ["ms2img", "synth", "--accessions", str(accessions), "--seed", str(seed), "--out", str(raw)], cwd=project
        )
    pipeline.check_remote(project)
    pipeline.dvc("add", "data/raw", cwd=project)
    pipeline.dvc("push", "data/raw.dvc", cwd=project)


def start_temporary_api(address: str | None) -> threading.Thread | None:
    """Without $PREFECT_API_URL the flow run starts a temporary Prefect server (~13 s on a fresh PREFECT_HOME, which
    creates its database): start that same server (``dask_runner.temporary_server``, a per-process singleton; the
    cluster's own port with ``address``) beside the data preparation, so the flow finds it running. Join the thread
    before the flow starts."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None
    server = dask_runner.temporary_server(dask_runner.dask_address(address))
    thread = threading.Thread(target=server.start, name="prefect-temporary-server", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    project = pipeline.project_dir()  # the checkout when run from it (`make demo`)
    params = load_params(project / "params.yaml")
    parser = argparse.ArgumentParser(description="Run the ms2img main job on the bundled synthetic cohort.")
    parser.add_argument("--accessions", type=int, default=int(params["synth"]["accessions"]))
    parser.add_argument("--seed", type=int, default=int(params["synth"]["seed"]))
    parser.add_argument("--profile", default=None, help="apply profiles/<NAME>.yaml first (e.g. paper: a GPU)")
    parser.add_argument(
        "--dask-address", default=None, help="a Dask scheduler, tcp://host:8786 (default: $MS2IMG_DASK_ADDRESS)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    quiet_known_errors()
    process.temporary_server_apart()  # Ctrl-C of `make demo` reaches the flow first (flows.process)
    process.exit_on_sigterm()
    try:
        server = start_temporary_api(args.dask_address)
        prepare_data(args.accessions, args.seed, project)
        if server is not None:
            server.join()
        results = dask_runner.on_cluster(retrain, args.dask_address)(profile=args.profile, project_dir=str(project))
    except Ms2ImgError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 1
    minutes = (time.perf_counter() - started) / 60
    assay = next(iter(results), params["labels"]["assays"][0])
    stale = pipeline.stale([], cwd=project)
    audit = "nothing to do: every stage is up to date" if not stale else f"would run {', '.join(sorted(stale))}"
    print(
        f"""
ms2img demo finished in {minutes:.1f} min.

  MLflow UI:   .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db   ->  http://127.0.0.1:5000
  Prefect UI:  .venv/bin/prefect server start                                 ->  http://127.0.0.1:4200
  Report:      report/index.html (every assay and family)   Metrics: .venv/bin/dvc metrics show
  Serve:       .venv/bin/ms2img serve --assay {assay}                  ->  POST http://127.0.0.1:5001/invocations
  Audit:       source .venv/bin/activate && dvc repro   (checked now with dvc status: {audit})
"""
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
