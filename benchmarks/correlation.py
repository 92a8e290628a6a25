"""Timing of ``ms2img explain --method correlation``: the score table, and the whole command from events.

    .venv/bin/python benchmarks/correlation.py              # 600 x 14 and 20,000 x 500
    .venv/bin/python benchmarks/correlation.py --no-events  # the table only

Targets (issue 23): 600 features x 14 samples in under 2 s, 20,000 features x 500 samples in under a minute.
``table`` is the statistics (normalisation, Pearson, Spearman, BH, Bonferroni, sorting) from the abundance
matrix; ``command`` is :func:`ms2img.explain.correlation.score_assay` from an events folder written like ingest
does (one Parquet per accession, 3 fragments per detected feature): reading, the matrix, the table, the CSV, the
Cytoscape table and the volcano, without library annotation (its cost is the library's, not the table's).
Also checks 20 rows against scipy.stats.pearsonr / spearmanr. Prints one line per size.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

SIZES = ((600, 14), (20_000, 500))


def synthetic(n_features: int, n_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal heights, 40% not detected, 10 features that follow the activity."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 100, n_samples)
    x = rng.lognormal(9, 1.5, (n_features, n_samples)) * (rng.random((n_features, n_samples)) > 0.4)
    x[:10] = np.outer(rng.uniform(1e3, 1e5, 10), y) * rng.lognormal(0, 0.2, (10, n_samples))
    return x, y


def time_table(x: np.ndarray, y: np.ndarray) -> tuple[float, pd.DataFrame]:
    from ms2img.explain.correlation import Abundances, activity_scores

    n = x.shape[0]
    feats = pd.DataFrame(
        {
            "feature_id": np.arange(1, n + 1).astype(str),
            "precursor_mz": np.linspace(100, 1500, n),
            "rt_min": np.linspace(0.5, 20, n),
            "polarity": "positive",
        }
    )
    ab = Abundances(feats, [f"S{j:04d}" for j in range(x.shape[1])], x)
    t0 = time.perf_counter()
    scores = activity_scores(ab, np.arange(x.shape[1]), y)
    return time.perf_counter() - t0, scores


def check_against_scipy(x: np.ndarray, y: np.ndarray, scores: pd.DataFrame) -> float:
    """Largest |r - scipy r| over 20 rows (BMN-normalised as the table)."""
    from ms2img.explain.correlation import normalise

    xn = normalise(x, "bmn")
    by_id = scores.set_index("feature_id")
    worst = 0.0
    for i in np.linspace(0, len(x) - 1, 20).astype(int):
        row = by_id.loc[str(i + 1)]
        worst = max(worst, abs(row["r"] - stats.pearsonr(xn[i], y).statistic))
        worst = max(worst, abs(row["spearman_r"] - stats.spearmanr(xn[i], y).statistic))
    return worst


def write_events_dir(x: np.ndarray, y: np.ndarray, folder: Path) -> Path:
    """One Parquet per accession (3 fragments per detected feature) + assays.csv, as ``ms2img ingest`` leaves them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ms2img.io.schema import EVENT_COLUMNS

    n = x.shape[0]
    ids = np.arange(1, n + 1).astype(str)
    mz, rt = np.linspace(100, 1500, n), np.linspace(0.5, 20, n)
    events = folder / "events"
    events.mkdir(parents=True)
    for j in range(x.shape[1]):
        f = np.repeat(np.flatnonzero(x[:, j] > 0), 3)
        acc = f"S{j:04d}"
        cols = {
            "accession": pa.array(np.full(f.size, acc)).dictionary_encode(),
            "replicate": pa.array(np.full(f.size, "1")).dictionary_encode(),
            "feature_id": pa.array(ids[f]).dictionary_encode(),
            "precursor_mz": mz[f],
            "rt_min": rt[f],
            "precursor_intensity": x[f, j],
            "fragment_mz": mz[f] * np.tile([0.3, 0.5, 0.7], f.size // 3),
            "fragment_intensity": np.tile([100.0, 50.0, 20.0], f.size // 3),
            "polarity": pa.array(np.full(f.size, "positive")).dictionary_encode(),
        }
        pq.write_table(pa.table([cols[c] for c in EVENT_COLUMNS], names=EVENT_COLUMNS), events / f"{acc}.parquet")
    pd.DataFrame({"accession": [f"S{j:04d}" for j in range(x.shape[1])], "A": y}).to_csv(
        folder / "assays.csv", index=False
    )
    return events


def time_command(x: np.ndarray, y: np.ndarray) -> float:
    from ms2img.explain.correlation import score_assay

    with tempfile.TemporaryDirectory() as tmp:
        events = write_events_dir(x, y, Path(tmp))
        t0 = time.perf_counter()
        score_assay("A", events_dir=events, activity_path=Path(tmp) / "assays.csv", out_dir=Path(tmp) / "out",
                    annotate=0)  # fmt: skip
        return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-events", action="store_true", help="time the table only")
    args = ap.parse_args()
    for module in ("ms2img.explain.correlation", "ms2img.plots.volcano", "matplotlib.figure"):
        importlib.import_module(module)  # imports out of the timings

    for n_features, n_samples in SIZES:
        x, y = synthetic(n_features, n_samples)
        t_table, scores = time_table(x, y)
        err = check_against_scipy(x, y, scores)
        planted = int((scores.head(10)["feature_id"].astype(int) <= 10).sum())
        line = (
            f"{n_features} features x {n_samples} samples: table {t_table:.3f} s (max |r - scipy| {err:.1e}, "
            f"{planted}/10 planted features in the top 10)"
        )
        if not args.no_events:
            line += f"; command from events {time_command(x, y):.2f} s"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
