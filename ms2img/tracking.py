"""MLflow tracking: one experiment per assay, a parent run per job, nested runs per fold and tuner trial.

The default store is embedded (``sqlite:///mlflow.db`` with artifacts in ``mlartifacts/``); setting
``MLFLOW_TRACKING_URI`` points everything at a team server instead, with no code change.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from ms2img import __version__
from ms2img.errors import ConfigError
from ms2img.params import flatten

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# Tells the MLflow UI these are model-training experiments (runs table, charts), not GenAI traces.
EXPERIMENT_KIND_TAG = ("mlflow.experimentKind", "custom_model_development")
DEFAULT_ARTIFACT_DIR = Path("mlartifacts")
TRACKED_PACKAGES = ("tensorflow", "keras", "keras-tuner", "jax", "scikit-learn", "mlflow", "numpy", "pandas", "dvc")


def tracking_uri(project: str | Path | None = None) -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI`` if set, else the embedded SQLite store (``mlflow.db`` in
    the working directory, or an absolute URI inside ``project``, so processes started elsewhere share it)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(project).resolve() / 'mlflow.db'}" if project is not None else DEFAULT_TRACKING_URI


def _is_local(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def setup_tracking(uri: str | None = None, check: bool = True, timeout: float = 5.0) -> str:
    """Point MLflow at ``uri`` (default: :func:`tracking_uri`) and fail within seconds if a server is unreachable.

    MLflow's own client retries a refused connection with backoff for minutes, so one plain HTTP request goes
    first: any HTTP answer (even 401/404) counts as reachable, then the client itself must list experiments.
    """
    import mlflow

    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    if check and not _is_local(uri):
        import requests
        from mlflow import MlflowClient

        hint = "start it or fix MLFLOW_TRACKING_URI (unset, the local sqlite:///mlflow.db is used)"
        try:
            requests.get(uri.rstrip("/") + "/health", timeout=timeout)
        except requests.RequestException as exc:
            raise ConfigError(
                f"MLflow tracking server {uri} is unreachable ({exc.__class__.__name__}); {hint}"
            ) from None
        try:
            MlflowClient(uri).search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - auth and protocol errors come in many types
            raise ConfigError(
                f"MLflow tracking server {uri} refused the request ({exc.__class__.__name__}: {exc})"
            ) from None
    return uri


def experiment_name(assay: str) -> str:
    """One experiment per assay, e.g. ``ms2img-DPPH``."""
    return f"ms2img-{assay}"


def ensure_experiment(assay: str) -> str:
    """Create (or reuse) the assay's experiment ``ms2img-<assay>`` and make it the active one."""
    return use_experiment(experiment_name(assay))


def use_experiment(name: str) -> str:
    """Create (or reuse) the experiment ``name`` and make it active; on a local store its artifacts go under
    ``mlartifacts/<name>`` (MLflow's own default would be ``./mlruns``, beside nothing else of the project)."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = None
        if _is_local(mlflow.get_tracking_uri()):
            location = (DEFAULT_ARTIFACT_DIR.resolve() / name).as_uri()
        exp_id = client.create_experiment(name, artifact_location=location, tags=dict([EXPERIMENT_KIND_TAG]))
    else:
        exp_id = exp.experiment_id
        if EXPERIMENT_KIND_TAG[0] not in exp.tags:
            client.set_experiment_tag(exp_id, *EXPERIMENT_KIND_TAG)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


PACKAGE_DIR = Path(__file__).resolve().parent
CODE_PATHS = ("ms2img", "flows")  # what "the code" is inside a checkout: data and pipeline records are not code


def git_commit(repo: str | Path | None = None) -> str | None:
    """The commit the code runs from, ``-dirty`` appended when the code itself (``CODE_PATHS``) has uncommitted
    changes; None outside a git checkout. A retrain leaves dvc.lock and data/raw.dvc modified: that is data, not
    code, so it does not mark a model's code version dirty."""
    repo = Path(repo) if repo is not None else PACKAGE_DIR.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def code_version() -> str:
    """The version of the code that trains: the checkout's commit (see :func:`git_commit`), else the installed
    package's version (a lab's project runs an installed ms2img, not a checkout)."""
    return git_commit() or f"ms2img=={__version__}"


def code_hash() -> str:
    """SHA-256 over the package's Python sources: the same code gives the same hash, committed or not."""
    digest = hashlib.sha256()
    for f in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(str(f.relative_to(PACKAGE_DIR)).encode())
        digest.update(f.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def data_hash(path: str | Path) -> str | None:
    """DVC's hash of a tracked input (from ``<path>.dvc``), else a SHA-256 over its files; None if absent.

    This is the "data version" a champion was trained on: retraining compares it with the current one.
    """
    path = Path(path)
    dvc_file = path.with_name(path.name + ".dvc")
    if dvc_file.exists():
        meta = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
        outs = meta.get("outs") or [{}]
        md5 = outs[0].get("md5")
        if md5:
            return f"md5:{md5}"
    return files_hash(path)


def files_hash(path: str | Path) -> str | None:
    """A SHA-256 over the names and bytes of the files under ``path`` as they are (not its DVC pointer); None if
    absent."""
    path = Path(path)
    if not path.exists():
        return None
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        digest.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a model's numbers."""
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def device_tags() -> dict[str, str]:
    """Keras backend and whether a GPU is in use (imports only the active backend)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    device = "cpu"
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            device = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
        elif backend == "jax":
            import jax

            device = jax.devices()[0].platform
        elif backend == "torch":
            import torch

            device = "gpu" if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001 - a tag must never break a training run
        device = "unknown"
    return {"keras_backend": backend, "device": device}


def provenance_tags(raw_data: str | Path | None = None) -> dict[str, str]:
    """Tags every run carries: git commit, data hash, package versions, backend, device, host."""
    tags = {
        "ms2img.version": __version__,
        "git.commit": code_version(),
        "python": platform.python_version(),
        **{f"pkg.{k}": v for k, v in package_versions().items()},
        **device_tags(),
    }
    if raw_data is not None:
        tags["data.hash"] = data_hash(raw_data) or "unknown"
        tags["data.path"] = str(raw_data)
    return tags


def loggable_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Flatten nested params to dotted keys with string values MLflow accepts (<= 6000 chars)."""
    return {
        k: (json.dumps(v) if isinstance(v, list | tuple | dict) else str(v))[:6000] for k, v in flatten(params).items()
    }


class RunLogger:
    """What the training code needs from a tracker. This base class logs nowhere (library use without MLflow)."""

    @contextlib.contextmanager
    def child(self, run_name: str, params: Mapping[str, Any] | None = None) -> Iterator[RunLogger]:
        """A nested run (one per outer fold or tuner trial)."""
        yield self

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters of the current run."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log numeric metrics of the current run (non-finite values are skipped)."""

    def log_history(self, history: Mapping[str, list[float]], prefix: str = "") -> None:
        """Log per-epoch curves as metric steps, so the MLflow UI draws them."""
        for key, values in history.items():
            for epoch, value in enumerate(values):
                self.log_metrics({f"{prefix}{key}": float(value)}, step=epoch)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Attach a file (plot, JSON, report) to the current run."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Tag the current run."""


class MlflowRunLogger(RunLogger):
    """Logs into the active MLflow run; ``child`` opens nested runs."""

    @contextlib.contextmanager
    def child(self, run_name: str, params: Mapping[str, Any] | None = None) -> Iterator[RunLogger]:
        import mlflow

        with mlflow.start_run(run_name=run_name, nested=True):
            if params:
                self.log_params(params)
            yield self

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.log_params(loggable_params(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import math

        import mlflow

        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        import mlflow

        mlflow.set_tags(dict(tags))

    def log_history(self, history: Mapping[str, list[float]], prefix: str = "") -> None:
        """Per-epoch curves under their own prefix, in one batch (not one call per point)."""
        log_series({f"{prefix}{k}": list(v) for k, v in history.items()})


@contextlib.contextmanager
def parent_run(
    assay: str,
    run_name: str,
    params: Mapping[str, Any],
    raw_data: str | Path | None = None,
    tags=None,
    started_at: float | None = None,
) -> Iterator[MlflowRunLogger]:
    """Open the parent run of a training job in the assay's experiment, with params and provenance tags.

    ``started_at`` (epoch seconds): when the training began. The run is logged after it ends, so without this the
    MLflow UI's Duration column showed the seconds of logging, not the minutes of training."""
    import mlflow

    experiment_id = ensure_experiment(assay)
    start_time = None if started_at is None else int(started_at * 1000)
    from mlflow.tracking.context.registry import resolve_tags  # the user/source tags start_run would add

    created = mlflow.MlflowClient().create_run(experiment_id, start_time, resolve_tags(), run_name)
    with mlflow.start_run(run_id=created.info.run_id) as run:
        logger = MlflowRunLogger()
        logger.set_tags({**provenance_tags(raw_data), "assay": assay, **(tags or {})})
        logger.log_params(params)
        log.info("MLflow run %s (%s) in experiment %s", run.info.run_id, run_name, experiment_name(assay))
        yield logger


def log_series(series: Mapping[str, list[float]]) -> None:
    """Log whole curves (one value per step) into the active run with one ``log_batch`` call.

    One ``log_metric`` call per point costs ~30 ms on the SQLite store; the full protocol logs thousands.
    """
    import math
    import time

    import mlflow
    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None:
        return
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(v), now, step)
        for key, values in series.items()
        for step, v in enumerate(values)
        if v is not None and math.isfinite(float(v))
    ]
    client = mlflow.MlflowClient()
    for start in range(0, len(metrics), 1000):  # the REST API takes at most 1000 metrics per batch
        client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])


def log_dataset(raw_data: str | Path | None, name: str, context: str = "training") -> None:
    """Record the raw exports as the run's input dataset, with the DVC hash as its digest (UI "Datasets")."""
    if raw_data is None:
        return
    import mlflow
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    from ms2img.io.assay_table import read_csv_strings

    digest = data_hash(raw_data) or "unknown"
    assays = Path(raw_data) / "assays.csv"
    # as every reader of it: UTF-8 or Windows-1252 (Excel), accessions such as 001 kept as written
    frame = (
        read_csv_strings(assays).reset_index(drop=True) if assays.is_file() else pd.DataFrame({"path": [str(raw_data)]})
    )
    dataset = from_pandas(frame, source=str(Path(raw_data).resolve()), name=name, digest=digest.split(":")[-1][:36])
    mlflow.log_input(dataset, context=context)
