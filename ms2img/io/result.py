"""What every reader returns, plus the plumbing readers share (safe text loading, the sample manifest)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ms2img.errors import InputFileError
from ms2img.io.schema import CHARGE, EVENT_COLUMNS, SAMPLE_COLUMNS, WRITTEN_COLUMNS, coerce_events

_GZIP, _ZIP, _BZ2, _XZ = b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ"
# Control characters that never occur in a text export (tab, CR, LF and form feed are allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class ReadResult:
    """One input's events (every sample incl. blanks and QC) and its sample manifest.

    ``events`` is the canonical pandas table; readers may hand over an Arrow table instead (``table``), which
    ingest writes without a pandas round trip, plus ``sample_of_row`` (row -> position in ``samples``).
    ``samples`` is the manifest as a DataFrame, or its rows as dicts (:func:`manifest_rows`; the DataFrame is
    then built on first use: ingest reads the rows and builds one manifest for all inputs).
    ``precursors_without_msms`` counts features / MS2 scans that gave no fragments; ``warnings`` counts
    recoverable problems by kind (e.g. a precursor intensity that could not be found, a height cell ``nan``).
    """

    def __init__(
        self,
        events: pd.DataFrame | pa.Table,
        samples: pd.DataFrame | list[dict],
        source: Path,
        precursors_without_msms: int = 0,
        warnings: dict[str, int] | None = None,
        aligned: bool = True,
        sample_of_row: np.ndarray | None = None,
        activity: pd.DataFrame | None = None,
        rt_unit: str = "",
    ):
        self._frame = events if isinstance(events, pd.DataFrame) else None
        self._table = events if isinstance(events, pa.Table) else None
        self._samples = samples if isinstance(samples, pd.DataFrame) else None
        self._sample_rows = None if isinstance(samples, pd.DataFrame) else manifest_rows(samples)
        self.source = Path(source)
        self.precursors_without_msms = int(precursors_without_msms)
        self.warnings = dict(warnings or {})
        self.aligned = aligned  # feature ids are shared across samples (needed for blank subtraction)
        self._sample_of_row = sample_of_row
        self.activity = activity  # sample -> assay values found in the input (bioactivity layouts), or None
        self.rt_unit = rt_unit  # how the input's retention times were read, for the ingest printout
        self.polarities: dict[str, int] = {}  # events per polarity, counted by ingest before the events go

    def release_events(self) -> None:
        """Drop the events (ingest keeps only the manifest and counts of an input once its parts are written)."""
        self._frame = self._table = self._sample_of_row = None

    @property
    def samples(self) -> pd.DataFrame:
        """The sample manifest (``SAMPLE_COLUMNS``, all strings), one row per sample column / raw file."""
        if self._samples is None:
            self._samples = make_manifest(self._sample_rows)
        return self._samples

    @samples.setter
    def samples(self, value: pd.DataFrame) -> None:
        self._samples, self._sample_rows = value, None

    @property
    def sample_rows(self) -> list[dict[str, str]]:
        """The manifest as a list of ``SAMPLE_COLUMNS`` dicts (no pandas work when the reader gave rows)."""
        if self._sample_rows is None:
            self._sample_rows = self._samples.to_dict("records")
        return self._sample_rows

    @property
    def events(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = coerce_events(self._table.to_pandas(), optional=True)
        return self._frame

    @property
    def table(self) -> pa.Table:
        """The events as an Arrow table with the canonical columns (strings may be dictionary-encoded)."""
        if self._table is None:
            self._table = pa.Table.from_pandas(coerce_events(self._frame, optional=True), preserve_index=False)
        return self._table

    @property
    def sample_of_row(self) -> np.ndarray:
        """Position in ``samples`` of each events row (matched on accession + replicate when not given)."""
        if self._sample_of_row is None:
            ev = self.events
            keys = pd.MultiIndex.from_frame(self.samples[["accession", "replicate"]].astype(str))
            rows = pd.MultiIndex.from_arrays([ev["accession"].astype(str), ev["replicate"].astype(str)])
            self._sample_of_row = keys.get_indexer(rows).astype(np.int64)
        return self._sample_of_row


def make_manifest(rows: list[dict]) -> pd.DataFrame:
    """A sample manifest with exactly ``SAMPLE_COLUMNS`` (all strings) from a list of row dicts."""
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    return df.fillna("").astype(str).reset_index(drop=True)


def manifest_rows(rows: list[dict]) -> list[dict[str, str]]:
    """The rows :func:`make_manifest` would hold, as dicts of ``SAMPLE_COLUMNS`` strings (missing -> "")."""
    return [{c: _cell_text(r.get(c)) for c in SAMPLE_COLUMNS} for r in rows]


def _cell_text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def check_not_binary(path: Path, data: bytes) -> None:
    """Reject empty and compressed/binary files with a message naming the file and line."""
    if not data or data.isspace():  # data.strip() without copying the file
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


def strings_to_float(
    cells: pa.Array,
    path: str | Path,
    lines: np.ndarray,
    column: str,
    *,
    missing: float | None = None,
    minimum: float | None = None,
    positive: bool = False,
) -> tuple[np.ndarray, int]:
    """An Arrow string column to float64 with one C cast; on anything unusual :func:`column_to_float` decides
    (same rules, exact file / line / column in the error). Returns the values and the number of cells that
    held an explicit missing marker (``NA``, ``nan``, ``null``, ...; empty cells are not counted)."""
    trimmed = pc.utf8_trim_whitespace(cells)
    try:
        values = pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)
        ok = bool(np.isfinite(values).all())
        if ok and positive:
            ok = bool((values > 0).all())
        if ok and minimum is not None:
            ok = bool((values >= minimum).all())
        if ok:
            return np.ascontiguousarray(values, dtype=np.float64), 0
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    texts = np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=object)
    values = column_to_float(texts, path, lines, column, missing=missing, minimum=minimum, positive=positive)
    lowered = pc.utf8_lower(trimmed)
    markers = pc.and_(pc.is_in(lowered, value_set=pa.array(sorted(_MISSING - {""}))), pc.invert(pc.is_null(lowered)))
    return values, int(pc.sum(markers).as_py() or 0)


def strings_to_float_columns(
    columns: list[pa.Array],
    path: str | Path,
    lines: np.ndarray,
    names: list[str],
    *,
    missing: float | None = None,
    minimum: float | None = None,
) -> tuple[np.ndarray, int]:
    """Several Arrow string columns (same length) to one float64 matrix (rows x columns) with one C cast; when
    any cell is unusual each column goes through :func:`strings_to_float` (same rules, same errors). Returns
    the matrix and the number of explicit missing markers."""
    n = len(lines)
    if not columns:
        return np.zeros((n, 0)), 0
    try:
        values = pc.cast(pc.utf8_trim_whitespace(pa.concat_arrays(columns)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
        ok = bool(np.isfinite(values).all()) and (minimum is None or bool((values >= minimum).all()))
        if ok:
            return np.ascontiguousarray(values.reshape(len(columns), n).T), 0
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out, n_missing = [], 0
    for cells, name in zip(columns, names, strict=True):
        values, k = strings_to_float(cells, path, lines, name, missing=missing, minimum=minimum)
        out.append(values)
        n_missing += k
    return np.column_stack(out), n_missing


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def aligned_table(
    *,
    feature_id: np.ndarray | list[str],
    precursor_mz: np.ndarray,
    rt_min: np.ndarray,
    polarity: np.ndarray | list[str],
    fragment_feature: np.ndarray,
    fragment_mz: np.ndarray,
    fragment_intensity: np.ndarray,
    heights: np.ndarray,
    accessions: list[str],
    replicates: list[str],
    samples: np.ndarray | None = None,
    charge: np.ndarray | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """Events of an aligned feature table as Arrow: every (sample, feature with height > 0) x its fragments.

    ``fragment_feature[k]`` is the feature (row of ``heights``, features x samples) of fragment ``k``, ascending.
    Only the sample positions in ``samples`` (default: all) are expanded. Returns the table (string columns
    dictionary-encoded: no per-row Python strings) and each row's sample position. Rows are grouped by sample,
    in the order of ``samples``. ``charge`` (per feature; 0 = unknown, stored as 1) adds the optional column.
    """
    heights = np.asarray(heights, dtype=np.float64)
    feature_of_fragment = np.asarray(fragment_feature, dtype=np.int64)
    cols = np.arange(heights.shape[1]) if samples is None else np.asarray(samples, dtype=np.int64).reshape(-1)
    # (sample position, fragment) of every detected pair, sample-major: one boolean matrix, one nonzero
    detected = (heights[:, cols] > 0).T[:, feature_of_fragment] if len(cols) else np.zeros((0, 0), dtype=bool)
    col_pos, frags = np.nonzero(detected)
    samp = cols[col_pos].astype(np.int64, copy=False)
    feats = feature_of_fragment[frags]
    arrays = {
        "accession": dictionary_strings(accessions, samp),
        "replicate": dictionary_strings(replicates, samp),
        "feature_id": dictionary_strings(feature_id, feats),
        "precursor_mz": pa.array(np.asarray(precursor_mz, dtype=np.float64)[feats]),
        "rt_min": pa.array(np.asarray(rt_min, dtype=np.float64)[feats]),
        "precursor_intensity": pa.array(heights[feats, samp]),
        "fragment_mz": pa.array(np.asarray(fragment_mz, dtype=np.float64)[frags]),
        "fragment_intensity": pa.array(np.asarray(fragment_intensity, dtype=np.float64)[frags]),
        "polarity": dictionary_strings(polarity, feats),
    }
    names = EVENT_COLUMNS
    if charge is not None:
        z = np.maximum(np.asarray(charge, dtype=np.int64), 1).astype(np.int16)
        arrays[CHARGE] = pa.array(z[feats])
        names = WRITTEN_COLUMNS
    return pa.table([arrays[c] for c in names], names=names), samp


def dictionary_strings(
    values: list[str] | np.ndarray | pa.Array | pa.DictionaryArray, codes: np.ndarray
) -> pa.DictionaryArray:
    """``values[codes]`` as an Arrow dictionary array (int32 codes): cheap to build, write and read.

    ``values`` may be an Arrow string array (encoded in C) or an Arrow dictionary array (used as it is)."""
    if isinstance(values, pa.Array) and not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values.cast(pa.string()))
    if isinstance(values, pa.DictionaryArray):
        remap = values.indices.to_numpy(zero_copy_only=False)
        dictionary = values.dictionary
        if dictionary.type != pa.string():
            dictionary = dictionary.cast(pa.string())
    else:  # a Python dict factorizes a short list faster than pandas sets up
        index: dict[str, int] = {}
        texts = [v if isinstance(v, str) else str(v) for v in values]
        remap = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
        dictionary = pa.array(list(index), type=pa.string())
    codes = remap[np.asarray(codes, dtype=np.int64)] if len(codes) else np.empty(0, dtype=np.int64)
    # codes index the dictionary by construction: no bounds check (safe=False)
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)), dictionary, safe=False)


def flatten_spectra(spectra: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature ``(mz, intensity)`` pairs -> ``(feature of fragment, mz, intensity)`` flat arrays."""
    counts = np.fromiter((len(mz) for mz, _ in spectra), dtype=np.int64, count=len(spectra))
    empty = np.empty(0, dtype=np.float64)
    mz = np.concatenate([m for m, _ in spectra]) if len(spectra) else empty
    it = np.concatenate([i for _, i in spectra]) if len(spectra) else empty
    return np.repeat(np.arange(len(spectra)), counts), mz, it
