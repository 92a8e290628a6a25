"""Shared test builders: serving requests and a tiny ingested, rendered, featurised cohort (training, registry)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from ms2img.serving.request import REQUEST_COLUMNS, random_request  # noqa: F401 - random_request re-exported for the tests

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (benchmarks/ is a folder of scripts, not a package), once per session."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def request_rows(rows: list[tuple[Any, ...]] | None = None, **overrides: list[Any]) -> pd.DataFrame:
    """A request frame (one row per precursor); default: one accession, three precursors with fragments."""
    if rows is None:
        rows = [
            ("ACC1", 300.1, 1000.0, 1.5, "100.05:20 150.2:100 290.0:5"),
            ("ACC1", 450.2, 5000.0, 2.5, "120.0:10 300.0:50"),
            ("ACC1", 800.3, 200.0, 3.5, "500.5:7"),
        ]
    df = pd.DataFrame(rows, columns=REQUEST_COLUMNS)
    for col, values in overrides.items():
        df[col] = values
    return df


@dataclass
class TinyCohort:
    """Paths of a small synthetic cohort, ingested, rendered and merged into feature tables."""

    root: Path
    raw: Path
    events: Path
    images: Path
    assays: Path
    features: Path | None = None  # data/features-like folder (one FeatureTable per similarity method)


def tiny_cohort(
    root: Path,
    accessions: int = 30,
    seed: int = 7,
    size: str = "75x70",
    methods: tuple[str, ...] | None = ("cosine", "entropy"),
) -> TinyCohort:
    """Synthetic cohort -> events (ingest) -> images at ``size`` -> feature tables (``methods``; None = none):
    what training needs, in a few seconds. Seed 7 x 30 accessions gives DPPH 10 low / 12 high / 8 middle."""
    from ms2img import synth
    from ms2img.io.ingest import ingest
    from ms2img.render import RenderConfig, parse_size, render_files

    raw, events, images = root / "raw", root / "events", root / f"images_{size}.npz"
    synth.make_cohort(raw, accessions=accessions, seed=seed)
    ingest(raw / "exports", events)
    w, h = parse_size(size)
    [imageset] = render_files(events, [RenderConfig(width=w, height=h)], progress=False)
    imageset.save(images)
    features = None
    if methods:
        from ms2img.features.table import build_feature_tables

        features = root / "features"
        build_feature_tables(events, features, methods=list(methods), progress=False)
    return TinyCohort(root, raw, events, images, raw / "assays.csv", features)


def tiny_params(**overrides: Any) -> dict[str, Any]:
    """The repo's params.yaml shrunk to the smallest run that still exercises every step: 2 folds x 1 repeat,
    a 2-epoch CNN with one tuner trial, 20-tree forests, 3 OPLS-DA permutations. ``section__key=value``
    overrides (e.g. ``train__families=["rf-image"]``)."""
    from ms2img.params import load_params

    params = load_params(REPO_ROOT / "params.yaml")
    params["cv"]["folds"] = 2
    params["cv"]["repeats"] = 1
    params["cnn"]["epochs"] = 2
    params["cnn"]["patience"] = 2
    params["tune"]["trials"] = 1
    params["baselines"]["rf_trees"] = [20]
    params["baselines"]["oplsda_permutations"] = 3
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return params


def train_tiny(cohort: TinyCohort, assay: str, params: dict[str, Any], out: Path, track: bool = True) -> dict[str, Any]:
    """``train_assay`` on the tiny cohort, every output under ``out``; with ``track`` into the current MLflow
    store (one parent run, a child per family)."""
    from ms2img.training.stage import train_assay

    return train_assay(
        assay=assay,
        images_path=cohort.images,
        assays_csv=cohort.assays,
        params=params,
        features_dir=cohort.features if cohort.features is not None else out / "no-features",
        events_dir=cohort.events,
        raw_data=cohort.raw,
        metrics_dir=out / "metrics",
        reports_dir=out / "reports",
        models_dir=out / "models",
        plots_dir=out / "plots",
        track=track,
    )


# ------------------------------------------------------------------------------------------------ registry
@contextlib.contextmanager
def temporary_store(root: Path) -> Iterator[str]:
    """``root`` as cwd with its own SQLite MLflow store (``MLFLOW_TRACKING_URI``) set up; yields the URI and
    restores MLflow's global tracking URI after, so nothing leaks to other tests."""
    import mlflow
    import pytest
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from ms2img import tracking

    previous = tracking_utils._tracking_uri
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        mp.chdir(root)
        try:
            yield tracking.setup_tracking()
        finally:
            mlflow.set_tracking_uri(previous)


ASSAY = "DPPH"
SCALING = {"min": 0.0, "max": 100.0, "low": 0.4, "high": 0.6}


def card(family: str, accessions: list[str], render: dict | None = None, auc: float = 0.8, **extra) -> dict:
    return {
        "assay": ASSAY,
        "render": render or {},
        "threshold": 0.5,
        "label_scaling": SCALING,
        "metrics": {
            "auc": {"mean": auc, "sd": 0.1, "ci_low": auc - 0.1, "ci_high": min(auc + 0.1, 1.0)},
            "balanced_accuracy": {"mean": 0.7, "sd": 0.1, "ci_low": 0.6, "ci_high": 0.8},
            "mcc": {"mean": 0.4, "sd": 0.2, "ci_low": 0.2, "ci_high": 0.6},
        },
        "class_counts": {"low": len(accessions) // 2, "high": len(accessions) - len(accessions) // 2},
        "n_accessions": len(accessions),
        "seconds": 1.5,
        **extra,
    }


def rf_image_model(images, accessions: list[str], labels: np.ndarray, folder: Path, seed: int = 0, auc: float = 0.8):
    """A tiny RF on the flattened images of ``accessions``, saved as a FamilyModel folder."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from ms2img.models.baselines import FlattenImages
    from ms2img.models.family import FamilyModel

    idx = pd.Index(images.ids.astype(str)).get_indexer(accessions)
    est = Pipeline([("flatten", FlattenImages()), ("rf", RandomForestClassifier(n_estimators=15, random_state=seed))])
    est.fit(images.images[idx], labels)
    fm = FamilyModel("rf-image", card("rf-image", accessions, images.config, auc=auc), est, list(accessions))
    return fm.save(folder)


# ------------------------------------------------------------------------------------------------ servers
def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started in its own session: SIGTERM to its process group, SIGKILL after 20 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_until_serving(proc: subprocess.Popen, base: str, log_path, seconds: float = 120) -> None:
    """Poll ``base``/ping until the server answers; fail with the server's log when it exits or times out."""
    import requests

    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            if requests.get(f"{base}/ping", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.5)
