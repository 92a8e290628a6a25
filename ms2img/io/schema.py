"""The canonical events table: one row per MS/MS fragment, the only thing downstream code reads.

Columns (the events table every reader writes and every stage reads):

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
charge                 int16    precursor charge (>= 1; 1 when the format does not say), optional
=====================  =======  ==========================================================

``charge`` is optional: ingest writes it (MZmine/FBMN ``charge``, MGF ``CHARGE``, MS-DIAL adducts such as
``[M+2H]2+``, mzML/mzXML precursor charge) so validation can judge fragments against the singly charged mass of a
multiply charged precursor, and the activity correlation reports it per feature; events written without it read as
charge 1. Only those read it (``coerce_events(..., optional=True)``); everything else sees the canonical columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
CHARGE = "charge"
OPTIONAL_DTYPES: dict[str, str] = {CHARGE: "int16"}
# What ingest writes: the canonical columns, then the optional ones.
WRITTEN_COLUMNS: list[str] = [*EVENT_COLUMNS, *OPTIONAL_DTYPES]
PROTON_MASS = 1.007276  # Da; [M+zH]z+ -> [M+H]+ adds back (z - 1) protons' worth of m/z after multiplying by z
POLARITIES = ("positive", "negative", "unknown")
# Largest intensity or height that can be real: no detector reports more; 1e308 is a corrupted cell, not a signal.
# ``ms2img validate`` fails training events above it and serving refuses requests above it.
MAX_INTENSITY = 1e12

# The sample manifest written next to the events: one row per sample column / raw file.
SAMPLE_COLUMNS: list[str] = ["sample", "accession", "replicate", "type", "class", "source"]
SAMPLE_TYPES = ("Sample", "QC", "Blank")


def empty_events() -> pd.DataFrame:
    """An events table with the canonical columns and no rows."""
    return coerce_events(pd.DataFrame({c: [] for c in EVENT_COLUMNS}))


def coerce_events(df: pd.DataFrame, optional: bool = False) -> pd.DataFrame:
    """Return ``df`` restricted to the canonical columns, in order, with the canonical dtypes.

    ``optional=True`` also keeps the optional columns (``charge``) that ``df`` has, after the canonical ones.
    """
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if missing:
        raise KeyError(f"events table lacks columns {missing}")
    dtypes = dict(EVENT_DTYPES)
    if optional:
        dtypes.update({c: t for c, t in OPTIONAL_DTYPES.items() if c in df.columns})
    out = df[list(dtypes)].copy()
    for col, dtype in dtypes.items():
        out[col] = out[col].astype(dtype)
    return out.reset_index(drop=True)


def charge_from_adduct(adduct: str | float | None) -> int:
    """Charge of an adduct string: ``[M+2H]2+`` -> 2, ``[M-H]-`` and ``[M+K-2H]-`` -> 1; 0 when it does not say."""
    if not isinstance(adduct, str):
        return 0
    m = _ADDUCT_CHARGE.search(adduct.strip())
    if not m:
        return 0
    return int(m.group(1) or 1)


def charge_from_text(text: object) -> int:
    """Charge from a cell such as ``2``, ``2+``, ``+2``, ``1-``, ``0+`` or empty: its size (0 = unknown)."""
    if text is None or (isinstance(text, float) and not np.isfinite(text)):
        return 0
    m = _CHARGE_TEXT.match(str(text).strip())
    return int(float(m.group(1))) if m else 0


_ADDUCT_CHARGE = re.compile(r"\]\s*(\d*)\s*[+-]$")
_CHARGE_TEXT = re.compile(r"^[+-]?\s*(\d+(?:\.0*)?)\s*[+-]?")
CHARGE_CELL = r"[+-]?\d+(?:\.0*)?[+-]?"  # a whole cell that is a charge: 2, 2+, +2, -1, 1.0 (charge_from_text reads it)


def singly_charged_mz(precursor_mz: np.ndarray, charge: np.ndarray, negative: np.ndarray | bool = False) -> np.ndarray:
    """The m/z the precursor would have with one charge: ``mz*z - (z-1)*proton`` (``+`` for negative ions).

    A fragment of a multiply charged precursor that kept one charge lies up to this m/z, above the precursor's
    own m/z: fragments are judged against it, not against the precursor m/z.
    """
    mz = np.asarray(precursor_mz, dtype=np.float64)
    z = np.maximum(np.asarray(charge, dtype=np.float64), 1.0)
    sign = np.where(negative, -1.0, 1.0)
    return mz * z - sign * (z - 1.0) * PROTON_MASS


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


def read_events(path: str | Path, optional: bool = False) -> pd.DataFrame:
    """Read one events Parquet file, or every ``*.parquet`` in a folder, into one canonical table (``optional``:
    with the optional columns, ``charge`` 1 where a file lacks it)."""
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
    if optional:
        frames = [f if CHARGE in f.columns else f.assign(**{CHARGE: 1}) for f in frames]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    try:
        return coerce_events(df, optional=optional)
    except KeyError as exc:
        raise InputFileError(path, str(exc)) from None


def polarity_of(text: object) -> str:
    """The one polarity rule, for every reader: "positive", "negative" or "unknown" from an adduct (``[M+H]+``,
    ``[M-H]-``, ``[M+2H]2+``), an ion mode (``Positive``, ``neg``) or a signed charge (``1+``, ``-1``)."""
    if not isinstance(text, str):
        return "unknown"
    v = text.strip().lower()
    if v.startswith(("neg", "-")) or v.endswith("-"):
        return "negative"
    if v.startswith(("pos", "+")) or v.endswith("+"):
        return "positive"
    return "unknown"


def one_polarity(polarities: Iterable[object]) -> str:
    """The ion mode of a set of rows: "positive" or "negative" when every known value agrees, "mixed" when both
    occur (``ingest.allow_mixed_polarity``), "unknown" when none is known (a model's, a request's)."""
    known = {p for p in (polarity_of(v) for v in set(polarities)) if p != "unknown"}
    return known.pop() if len(known) == 1 else ("mixed" if known else "unknown")


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
    charge: int | np.ndarray | None = None,
) -> pd.DataFrame:
    """Build a canonical events table from per-fragment arrays (all arrays the same length); with ``charge``
    (unknown = 0 or below is stored as 1) the optional ``charge`` column too."""
    n = len(fragment_mz)
    extra = {} if charge is None else {CHARGE: np.maximum(np.broadcast_to(np.asarray(charge, np.int64), n), 1)}
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
                **extra,
            }
        ),
        optional=charge is not None,
    )
