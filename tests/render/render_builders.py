"""Shared test data for the render tests: hand-computed events, random samples, a frame with every bad value.

Imported by the tests in this folder (``from render_builders import ...``), as tests/io does with io_builders."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ms2img.io.schema import EVENT_COLUMNS, coerce_events, write_events

# 100 m/z per bin on both axes: x 100..1500 in 14 columns, y 0..1500 in 15 rows.
COARSE = {"width": 14, "height": 15}


def events(rows: list[tuple]) -> pd.DataFrame:
    """Canonical events from (accession, replicate, feature_id, precursor_mz, precursor_int, fragment_mz, frag_int)."""
    df = pd.DataFrame(
        rows,
        columns=[
            "accession",
            "replicate",
            "feature_id",
            "precursor_mz",
            "precursor_intensity",
            "fragment_mz",
            "fragment_intensity",
        ],
    )
    df["rt_min"] = 1.0
    df["polarity"] = "positive"
    return coerce_events(df[EVENT_COLUMNS])


def random_sample(rng: np.random.Generator, n_prec: int, n_frag: int, accession="A", replicate="r1", above=False):
    """A synthetic sample: fragments below their precursor (or anywhere when ``above``)."""
    pmz = rng.uniform(80, 1550, n_prec)
    pint = rng.lognormal(10, 2, n_prec)
    frac = rng.uniform(0, 1.3 if above else 1.0, (n_prec, n_frag))
    fmz = (frac * pmz[:, None]).ravel()
    fint = rng.lognormal(5, 1, n_prec * n_frag)
    idx = np.repeat(np.arange(n_prec), n_frag)
    return pd.DataFrame(
        {
            "accession": accession,
            "replicate": replicate,
            "feature_id": np.char.add("f", idx.astype(str)),
            "precursor_mz": pmz[idx],
            "rt_min": 1.0,
            "precursor_intensity": pint[idx],
            "fragment_mz": fmz,
            "fragment_intensity": fint,
            "polarity": "positive",
        }
    ).pipe(coerce_events)


TINY = [
    # f1: precursor 550 (column 4), intensity 200 -> 1.0; fragments 150 (row 1) 10 -> 1.0, 250 (row 2) 5 -> 0.5
    ("A", "r1", "f1", 550.0, 200.0, 150.0, 10.0),
    ("A", "r1", "f1", 550.0, 200.0, 250.0, 5.0),
    # f2: precursor 555 (column 4), intensity 100 -> 0.5; fragments 160 (row 1) 4 -> 0.5, 270 (row 2) 8 -> 1.0
    ("A", "r1", "f2", 555.0, 100.0, 160.0, 4.0),
    ("A", "r1", "f2", 555.0, 100.0, 270.0, 8.0),
    # f3: precursor 1250 (column 11), intensity 50 -> 0.25; fragments 1200 (row 12) 2 -> 1.0, 90 (row 0) 1 -> 0.5
    ("A", "r1", "f3", 1250.0, 50.0, 1200.0, 2.0),
    ("A", "r1", "f3", 1250.0, 50.0, 90.0, 1.0),
]


def expected_tiny(aggregation: str) -> np.ndarray:
    img = np.zeros((15, 14), np.float32)
    if aggregation == "max":
        img[1, 4] = max(1.0 * 1.0, 0.5 * 0.5)
        img[2, 4] = max(1.0 * 0.5, 0.5 * 1.0)
    else:
        img[1, 4] = 1.0 * 1.0 + 0.5 * 0.5
        img[2, 4] = 1.0 * 0.5 + 0.5 * 1.0
    img[12, 11] = 0.25 * 1.0
    img[0, 11] = 0.25 * 0.5
    return img


ALIGNED = [
    # f1 seen in both replicates (300 and 100 -> mean 200), the aligned export repeats its spectrum
    ("A", "r1", "f1", 550.0, 300.0, 150.0, 10.0),
    ("A", "r2", "f1", 550.0, 100.0, 150.0, 10.0),
    # f2 only in r1 (100 -> mean 50, absence counted as zero)
    ("A", "r1", "f2", 850.0, 100.0, 300.0, 3.0),
]


def write_events_dir(path, rows_by_file: dict[str, list[tuple]]):
    path.mkdir(parents=True, exist_ok=True)
    for name, rows in rows_by_file.items():
        write_events(events(rows), path / f"{name}.parquet")
    return path


def poisoned_frame(rng: np.random.Generator) -> pd.DataFrame:
    """Three accessions x three replicates (some features aligned across replicates), shuffled, with NaN,
    negative, zero and infinite intensities and out-of-range or NaN m/z: everything the loops must treat alike."""
    parts = []
    for acc in ("C", "A", "B"):
        base = random_sample(rng, 120, 9, accession=acc, above=True)
        for rep in ("r2", "r1", "r3"):
            part = base[rng.random(len(base)) < 0.8].copy()
            part["replicate"] = rep
            part["precursor_intensity"] *= rng.uniform(0.5, 1.5)
            parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    n = len(df)
    for col in ("precursor_intensity", "fragment_intensity"):
        v = df[col].to_numpy().copy()
        idx = rng.choice(n, 12, replace=False)
        v[idx[:3]], v[idx[3:6]], v[idx[6:9]] = np.nan, -v[idx[3:6]], 0.0
        v[idx[9]] = np.inf
        df[col] = v
    mz = df["fragment_mz"].to_numpy().copy()
    mz[rng.choice(n, 4, replace=False)] = [np.nan, -3.0, 2000.0, np.inf]
    df["fragment_mz"] = mz
    return coerce_events(df.sample(frac=1.0, random_state=4).reset_index(drop=True))


def as_categorical(df: pd.DataFrame) -> pd.DataFrame:
    """Ids as categoricals, as ``render_dir`` reads them from Parquet and the serving model builds them."""
    return df.astype({c: "category" for c in ("accession", "replicate", "feature_id")})


CONFIGS = [
    {"aggregation": "max"},
    {"aggregation": "sum"},
    {"aggregation": "max", "transform": "sqrt", "per_replicate": True},
    {"aggregation": "sum", "transform": "sqrt"},
    {"aggregation": "sum", "transform": "log1p"},
    {"aggregation": "sum", "ppm_jitter": 20.0, "per_replicate": True},
    {"aggregation": "max", "ppm_jitter": 20.0, "mask_diagonal": False},
]
