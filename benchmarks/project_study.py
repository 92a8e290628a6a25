"""What the fold studies on a kept project share (``replicates.py``, ``graded_targets.py``): their command line, the
project's params, the per-fold progress line and the printed footer (the scripts' output contract: a table, the wall
time, ``<F> folds x <R> repeats``, then ``<assay> <model> auc=<mean>`` lines)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ms2img.params import load_params

REPO = Path(__file__).resolve().parents[1]


def study_arguments(description: str, extra: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """``--project DIR --assays A,B --repeats R`` (plus ``extra``'s arguments)."""
    ap = argparse.ArgumentParser(description=description, parents=[extra] if extra else [])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--assays", default=None, help="comma-separated (default: labels.assays)")
    ap.add_argument("--repeats", type=int, default=1, help="cv.repeats (default 1)")
    return ap.parse_args()


def project_params(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The project's params.yaml (else the repository's) with ``cv.repeats`` from ``--repeats``; the assays."""
    own = args.project / "params.yaml"
    params = load_params(own if own.exists() else REPO / "params.yaml")
    params["cv"]["repeats"] = args.repeats
    assays = args.assays.split(",") if args.assays else list(params["labels"]["assays"])
    return params, assays


def print_fold(assay: str, fold: Any, aucs: dict[str, list[float]]) -> None:
    """One progress line per fold: every model's AUC on it."""
    scores = ", ".join(f"{m} {v[-1]:.3f}" for m, v in aucs.items())
    print(f"{assay} repeat {fold.repeat + 1} fold {fold.fold}: {scores}", flush=True)


def print_footer(table: list[str], aucs: dict[str, dict[str, list[float]]], started: float, params: dict) -> None:
    """The table, the wall time since ``started`` and the protocol, then one ``<assay> <model> auc=`` line each."""
    print("\nAUC on the labelled test accessions, same folds; paired corrected resampled t, 95% interval:")
    print("\n".join(table))
    cv = params["cv"]
    print(f"wall time {time.perf_counter() - started:.0f} s; {cv['folds']} folds x {cv['repeats']} repeats")
    print("\n".join(f"{assay} {m} auc={np.mean(v):.4f}" for assay, per in aucs.items() for m, v in per.items()))
