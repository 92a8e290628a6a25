"""What every reader returns, plus the plumbing readers share (safe text loading, the sample manifest)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ms2img.errors import InputFileError
from ms2img.io.schema import SAMPLE_COLUMNS, coerce_events

_GZIP, _ZIP, _BZ2, _XZ = b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ"
# Control characters that never occur in a text export (tab, CR, LF and form feed are allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass
class ReadResult:
    """One input's events (every sample incl. blanks and QC) and its sample manifest.

    ``precursors_without_msms`` counts features / MS2 scans that gave no fragments; ``warnings`` counts
    recoverable problems by kind (e.g. a precursor intensity that could not be found).
    """

    events: pd.DataFrame
    samples: pd.DataFrame
    source: Path
    precursors_without_msms: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    aligned: bool = True  # feature ids are shared across samples (needed for blank subtraction)


def make_manifest(rows: list[dict]) -> pd.DataFrame:
    """A sample manifest with exactly ``SAMPLE_COLUMNS`` (all strings) from a list of row dicts."""
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    return df.fillna("").astype(str).reset_index(drop=True)


def line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def check_not_binary(path: Path, data: bytes) -> None:
    """Reject empty and compressed/binary files with a message naming the file and line."""
    if not data.strip():
        raise InputFileError(path, "file is empty", line=1)
    for magic, kind in ((_GZIP, "gzip"), (_ZIP, "zip"), (_BZ2, "bzip2"), (_XZ, "xz")):
        if data.startswith(magic):
            raise InputFileError(path, f"file is {kind}-compressed; decompress it first", line=1)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputFileError(path, "binary data (NUL byte), not a text file", line=line_of_offset(data, nul))


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a text file (line ``i`` of the editor is ``lines[i - 1]``), rejecting binary content.

    UTF-8 (with or without BOM) first, then Windows-1252 (MS-DIAL on Windows). Lines are split on ``\\n`` only
    and a trailing ``\\r`` is removed, so line numbers match what an editor shows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    data = path.read_bytes()
    check_not_binary(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise InputFileError(
                path, "not a text file (undecodable bytes)", line=line_of_offset(data, exc.start)
            ) from None
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputFileError(path, "binary data (control characters), not a text file", line=line)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


_MISSING = frozenset({"", "na", "nan", "null", "none", "n/a"})


def column_to_float(
    values: list[str] | np.ndarray,
    path: str | Path,
    lines: np.ndarray,
    columns: str | np.ndarray,
    *,
    missing: float | None = None,
    minimum: float | None = None,
    positive: bool = False,
) -> np.ndarray:
    """Convert text cells to float64 at once, reporting the first bad cell's file, line and column.

    ``lines`` (and ``columns`` when it is an array) give each cell's 1-based line / column name. Missing cells
    (empty, NA, null) become ``missing``, or are an error when it is None. ``minimum`` / ``positive`` bound values.
    """
    cells = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    arr = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan, copy=True)

    def fail(mask: np.ndarray, problem: str) -> None:
        i = int(np.flatnonzero(mask)[0])
        col = columns if isinstance(columns, str) else str(np.asarray(columns).ravel()[i])
        raise InputFileError(path, problem.format(value=_short(str(cells.iat[i]))), line=int(lines[i]), column=col)

    bad = ~np.isfinite(arr)
    if bad.any():
        is_missing = np.zeros(len(arr), dtype=bool)
        idx = np.flatnonzero(bad)
        is_missing[idx] = [str(cells.iat[i]).strip().lower() in _MISSING for i in idx]
        if missing is None and is_missing.any():
            fail(is_missing, "missing value")
        if (bad & ~is_missing).any():
            fail(bad & ~is_missing, "'{value}' is not a number")
        arr[is_missing] = missing
    if positive and (arr <= 0).any():
        fail(arr <= 0, "{value} must be > 0")
    if minimum is not None and (arr < minimum).any():
        fail(arr < minimum, f"{{value}} is negative (must be >= {minimum:g})")
    return arr


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def aligned_events(
    *,
    feature_id: np.ndarray,
    precursor_mz: np.ndarray,
    rt_min: np.ndarray,
    polarity: np.ndarray,
    spectra: list[tuple[np.ndarray, np.ndarray]],
    heights: np.ndarray,
    accessions: list[str],
    replicates: list[str],
) -> pd.DataFrame:
    """Events of an aligned feature table: every (sample, feature with height > 0) x that feature's fragments.

    ``spectra[i]`` is feature ``i``'s (m/z, intensity); ``heights`` is features x samples. Vectorised: each
    spectrum is parsed once and the per-sample expansion is index arithmetic.
    """
    counts = np.fromiter((len(mz) for mz, _ in spectra), dtype=np.int64, count=len(spectra))
    empty = np.empty(0, dtype=np.float64)
    frag_mz = np.concatenate([mz for mz, _ in spectra]) if len(spectra) else empty
    frag_int = np.concatenate([it for _, it in spectra]) if len(spectra) else empty
    feature_of_fragment = np.repeat(np.arange(len(spectra)), counts)
    fragment_idx, sample_idx = [], []
    for j in range(heights.shape[1]):
        keep = np.flatnonzero(heights[feature_of_fragment, j] > 0)
        fragment_idx.append(keep)
        sample_idx.append(np.full(len(keep), j, dtype=np.int64))
    frags = np.concatenate(fragment_idx) if fragment_idx else np.empty(0, dtype=np.int64)
    samples = np.concatenate(sample_idx) if sample_idx else np.empty(0, dtype=np.int64)
    feats = feature_of_fragment[frags]
    return coerce_events(
        pd.DataFrame(
            {
                "accession": repeat_strings(accessions, samples),
                "replicate": repeat_strings(replicates, samples),
                "feature_id": repeat_strings(feature_id, feats),
                "precursor_mz": np.asarray(precursor_mz, dtype=np.float64)[feats],
                "rt_min": np.asarray(rt_min, dtype=np.float64)[feats],
                "precursor_intensity": heights[feats, samples].astype(np.float64),
                "fragment_mz": frag_mz[frags],
                "fragment_intensity": frag_int[frags],
                "polarity": repeat_strings(polarity, feats),
            }
        )
    )


def repeat_strings(values: list[str] | np.ndarray, codes: np.ndarray) -> pd.Series:
    """``values[codes]`` as a pandas string column, built by pyarrow (10x faster than from Python objects)."""
    dictionary = pa.array([str(v) for v in values], type=pa.large_string())
    arr = pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int64)), dictionary)
    return pd.Series(arr.cast(pa.large_string()).to_pandas(types_mapper={pa.large_string(): pd.StringDtype()}.get))
