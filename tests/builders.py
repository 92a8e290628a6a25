"""Shared test builders: serving requests and a tiny trained-and-registered cohort (for registry/serving tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ms2img.serving import REQUEST_COLUMNS, random_request  # noqa: F401 - random_request re-exported for the tests

REPO_ROOT = Path(__file__).resolve().parents[1]


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
    """Paths of a small synthetic cohort, ingested and rendered."""

    root: Path
    raw: Path
    events: Path
    images: Path
    assays: Path


def tiny_cohort(root: Path, accessions: int = 20, seed: int = 7, size: str = "75x70") -> TinyCohort:
    """Synthetic cohort -> events (ingest) -> images at ``size``: what training needs, in a few seconds."""
    from ms2img import synth
    from ms2img.io.ingest import ingest
    from ms2img.render import RenderConfig, parse_size, render_files

    raw, events, images = root / "raw", root / "events", root / f"images_{size}.npz"
    synth.make_cohort(raw, accessions=accessions, seed=seed)
    ingest(raw / "exports", events)
    w, h = parse_size(size)
    [imageset] = render_files(events, [RenderConfig(width=w, height=h)], progress=False)
    imageset.save(images)
    return TinyCohort(root, raw, events, images, raw / "assays.csv")


def tiny_params(**overrides: Any) -> dict[str, Any]:
    """The repo's params.yaml, quick profile, shrunk to the smallest run that still exercises every step."""
    from ms2img.params import load_params

    params = load_params(REPO_ROOT / "params.yaml", profile="quick")
    params["cv"]["folds"] = 2
    params["cnn"]["epochs"] = 1
    params["tune"]["trials"] = 1
    params["tune"]["epochs"] = 1
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return params


def train_tiny(cohort: TinyCohort, assay: str, params: dict[str, Any], out: Path) -> dict[str, Any]:
    """``train_assay`` on the tiny cohort with tracking into the current MLflow store; registers a version."""
    from ms2img.train import train_assay

    return train_assay(
        assay=assay,
        images_path=cohort.images,
        assays_csv=cohort.assays,
        params=params,
        metrics_dir=out / "metrics",
        plots_dir=out / "plots",
        models_dir=out / "models",
        workdir=out / "kt",
        events_dir=cohort.events,
        raw_data=cohort.raw,
    )
