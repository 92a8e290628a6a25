"""The canonical events table: one row per MS/MS fragment, the only thing downstream code reads.

Columns (see ../shared/design.md, "Data model"):

=====================  =======  ==========================================================
accession              str      the biological sample (extract) an image is made for
replicate              str      injection / replicate name within the accession
feature_id             str      precursor id, unique within (accession, replicate)
precursor_mz           float64  MS1 m/z of the precursor
rt_min                 float64  retention time in minutes
precursor_intensity    float64  MS1 height/area of the precursor in this replicate (>= 0)
fragment_mz            float64  MS2 fragment m/z
fragment_intensity     float64  MS2 fragment intensity (>= 0), raw units
polarity               str      "positive", "negative" or "unknown"
=====================  =======  ==========================================================
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.atomic import atomic_path
from ms2img.errors import InputFileError

EVENT_DTYPES: dict[str, str] = {
    "accession": "str",
    "replicate": "str",
    "feature_id": "str",
    "precursor_mz": "float64",
    "rt_min": "float64",
    "precursor_intensity": "float64",
    "fragment_mz": "float64",
    "fragment_intensity": "float64",
    "polarity": "str",
}
EVENT_COLUMNS: list[str] = list(EVENT_DTYPES)
POLARITIES = ("positive", "negative", "unknown")

# The sample manifest written next to the events: one row per sample column / raw file.
SAMPLE_COLUMNS: list[str] = ["sample", "accession", "replicate", "type", "class", "source"]
SAMPLE_TYPES = ("Sample", "QC", "Blank")


def empty_events() -> pd.DataFrame:
    """An events table with the canonical columns and no rows."""
    return coerce_events(pd.DataFrame({c: [] for c in EVENT_COLUMNS}))


def coerce_events(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` restricted to the canonical columns, in order, with the canonical dtypes."""
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if missing:
        raise KeyError(f"events table lacks columns {missing}")
    out = df[EVENT_COLUMNS].copy()
    for col, dtype in EVENT_DTYPES.items():
        out[col] = out[col].astype(dtype)
    return out.reset_index(drop=True)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def accession_filename(accession: str) -> str:
    """File name for one accession's Parquet file; unsafe characters become ``_``."""
    name = _SAFE.sub("_", str(accession)).strip("._") or "accession"
    return f"{name}.parquet"


def write_events(df: pd.DataFrame, path: str | Path) -> Path:
    """Write an events table to Parquet atomically (temporary file, then rename)."""
    df = coerce_events(df)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def read_events(path: str | Path) -> pd.DataFrame:
    """Read one events Parquet file, or every ``*.parquet`` in a folder, into one canonical table."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise InputFileError(path, "no events Parquet files found (run `ms2img ingest` first)")
    frames = []
    for f in files:
        try:
            frames.append(pd.read_parquet(f))
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; the user needs the file name
            raise InputFileError(f, f"not a readable Parquet events file ({exc.__class__.__name__}: {exc})") from None
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    try:
        return coerce_events(df)
    except KeyError as exc:
        raise InputFileError(path, str(exc)) from None


def polarity_from_adduct(adduct: str | float | None) -> str:
    """Infer ion polarity from an adduct string like ``[M+H]+`` or ``[M-H]-``."""
    if not isinstance(adduct, str):
        return "unknown"
    a = adduct.strip()
    if a.endswith("+"):
        return "positive"
    if a.endswith("-"):
        return "negative"
    return "unknown"


def events_from_arrays(
    *,
    accession: str,
    replicate: str,
    feature_id: np.ndarray,
    precursor_mz: np.ndarray,
    rt_min: np.ndarray,
    precursor_intensity: np.ndarray,
    fragment_mz: np.ndarray,
    fragment_intensity: np.ndarray,
    polarity: str | np.ndarray = "unknown",
) -> pd.DataFrame:
    """Build a canonical events table from per-fragment arrays (all arrays the same length)."""
    n = len(fragment_mz)
    return coerce_events(
        pd.DataFrame(
            {
                "accession": np.full(n, accession, dtype=object),
                "replicate": np.full(n, replicate, dtype=object),
                "feature_id": np.asarray(feature_id).astype(str),
                "precursor_mz": precursor_mz,
                "rt_min": rt_min,
                "precursor_intensity": precursor_intensity,
                "fragment_mz": fragment_mz,
                "fragment_intensity": fragment_intensity,
                "polarity": polarity if isinstance(polarity, str) else np.asarray(polarity),
            }
        )
    )
