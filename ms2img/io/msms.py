"""MS-DIAL-style MS/MS strings (``"mz:int mz:int ..."``): the one parser, used by every reader and the server.

One rule set, vectorised with Arrow over a whole column (:func:`parse_msms_column`); :func:`parse_msms` is the
same parser on one cell. The rules:

* a spectrum is ``mz:intensity`` pairs separated by whitespace and/or ``;`` (MS-DIAL writes ``"50.4:6 96.8:6"``,
  some versions and tools ``"50.4:6;96.8:6"``);
* a missing cell (null/NaN, empty, only separators, ``null``, ``NA``, ``NaN``, ``None``, any case) is a precursor
  without fragments;
* every token has exactly one ``:``; both sides are decimal numbers (``1.7E4`` is fine); m/z is finite and > 0,
  intensity finite and >= 0. Anything else raises, naming the row (and, for files, the file and line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ms2img.errors import InputFileError, Ms2ImgError

# Values MS-DIAL (and people) write for "no spectrum".
EMPTY_MSMS = frozenset({"", "null", "na", "nan", "none"})
_EMPTY_LIST = pa.array(sorted(EMPTY_MSMS), type=pa.string())
_EMPTY = np.empty(0, dtype=np.float64)
# A plain decimal number; used only to point at the offending token once Arrow's cast has failed.
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"


class MsmsFormatError(Ms2ImgError, ValueError):
    """An MS/MS string breaks the rules. ``row`` is the 0-based position in the column given (None when the
    problem is the whole column, e.g. too many fragments), ``token`` the offending peak text, ``problem`` the
    message without location (``str(err)`` is ``"row <row>: <problem>"``)."""

    def __init__(self, row: int | None, problem: str, token: str | None = None):
        self.row, self.problem, self.token = row, problem, token
        super().__init__(problem if row is None else f"row {row}: {problem}")


class ParsedMsms(NamedTuple):
    """Fragments of a parsed column: ``row[k]`` is the 0-based input row of fragment ``k``; rows are ascending
    and each row's fragments keep their order in the string."""

    row: np.ndarray  # int64
    mz: np.ndarray  # float64
    intensity: np.ndarray  # float64

    def counts(self, n_rows: int) -> np.ndarray:
        """Fragments per input row (int64, length ``n_rows``)."""
        return np.bincount(self.row, minlength=n_rows).astype(np.int64, copy=False)


def is_empty_msms(text: object) -> bool:
    """True for a missing MS/MS cell (NaN, None, empty, ``null``, ``NA``)."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return True
    return str(text).replace(";", " ").strip().lower() in EMPTY_MSMS


def _as_arrow(strings) -> pa.Array:
    """The column as one Arrow string array (nulls kept: they mean "no spectrum"); non-strings are an error."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks() if strings.num_chunks != 1 else strings.chunk(0)
    if isinstance(strings, pa.Array):
        arr = strings
    else:
        series = strings if isinstance(strings, pd.Series) else pd.Series(list(strings), dtype=object)
        arr = None
        if isinstance(series.dtype, pd.StringDtype | pd.ArrowDtype):
            try:
                arr = pa.array(series)  # zero-copy for pandas' Arrow-backed strings
            except (pa.ArrowException, TypeError, ValueError):
                arr = None
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
        if arr is None:
            texts = series.to_numpy(dtype=object)
            bad = [i for i, t in enumerate(texts) if not (isinstance(t, str) or _is_null(t))]
            if bad:
                raise MsmsFormatError(
                    bad[0], f"MS/MS must be a string of 'mz:intensity' pairs, got {_short(texts[bad[0]])}"
                )
            arr = pa.array([t if isinstance(t, str) else None for t in texts], type=pa.string())
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise MsmsFormatError(0, f"MS/MS must be strings of 'mz:intensity' pairs, got a column of {arr.type}")
    return arr


def _is_null(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def parse_msms_column(
    strings: pd.Series | pa.Array | pa.ChunkedArray | Sequence[str | None],
    *,
    path: str | Path | None = None,
    lines: np.ndarray | Sequence[int] | None = None,
    column: str | None = "MS/MS spectrum",
    max_fragments: int | None = None,
) -> ParsedMsms:
    """Parse a whole column of MS/MS strings at once into ``ParsedMsms(row, mz, intensity)``.

    Vectorised with Arrow (separators to spaces, split, split tokens at ``:``, one cast to float64): ~50 M
    fragments/s. On a broken cell raises :class:`MsmsFormatError` (``.row`` = 0-based position), or, when
    ``path`` is given, :class:`~ms2img.errors.InputFileError` naming ``path``, ``lines[row]`` (default
    ``row + 1``) and ``column``. More than ``max_fragments`` fragments raises ``MsmsFormatError`` with
    ``row=None`` before anything is converted.
    """
    try:
        return _parse(_as_arrow(strings), max_fragments)
    except MsmsFormatError as exc:
        if path is None or exc.row is None:
            raise
        line = int(np.asarray(lines)[exc.row]) if lines is not None else exc.row + 1
        raise InputFileError(path, exc.problem, line=line, column=column) from None


def _parse(arr: pa.Array, max_fragments: int | None) -> ParsedMsms:
    n = len(arr)
    if n == 0:
        return ParsedMsms(np.empty(0, dtype=np.int64), _EMPTY, _EMPTY)
    arr = pc.replace_substring(arr.fill_null(""), ";", " ")
    trimmed = pc.utf8_trim_whitespace(arr)
    short = np.flatnonzero(pc.less_equal(pc.binary_length(trimmed), 4).to_numpy(zero_copy_only=False))
    if len(short):  # only short cells can be "null" / "NA": lower-case those, not the whole column
        marker = pc.is_in(pc.utf8_lower(trimmed.take(pa.array(short))), value_set=_EMPTY_LIST.cast(trimmed.type))
        hit = short[marker.to_numpy(zero_copy_only=False)]
        if len(hit):
            mask = np.zeros(n, dtype=bool)
            mask[hit] = True
            trimmed = pc.if_else(pa.array(mask), pa.scalar("", trimmed.type), trimmed)
    token_lists = pc.ascii_split_whitespace(trimmed)
    tokens = token_lists.flatten()
    rows = pc.list_parent_indices(token_lists).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    keep = pc.greater(pc.binary_length(tokens), 0)  # "" splits into one empty token
    if not pc.all(keep).as_py():
        tokens = tokens.filter(keep)
        rows = rows[keep.to_numpy(zero_copy_only=False)]
    if max_fragments is not None and len(tokens) > max_fragments:
        raise MsmsFormatError(None, f"{len(tokens)} MS/MS fragments, at most {max_fragments} allowed")
    if len(tokens) == 0:
        return ParsedMsms(np.empty(0, dtype=np.int64), _EMPTY, _EMPTY)

    parts = pc.split_pattern(tokens, ":")
    not_pair = pc.not_equal(pc.list_value_length(parts), 2)
    if pc.any(not_pair).as_py():
        k = int(np.flatnonzero(not_pair.to_numpy(zero_copy_only=False))[0])
        tok = tokens[k].as_py()
        raise MsmsFormatError(int(rows[k]), f"MS/MS peak '{_short(tok)}' is not 'mz:intensity'", tok)
    flat = parts.flatten()
    try:
        values = pc.cast(flat, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = pc.invert(pc.match_substring_regex(flat, _NUMBER)).to_numpy(zero_copy_only=False)
        k = int(np.flatnonzero(bad)[0]) // 2 if bad.any() else 0
        tok = tokens[k].as_py()
        raise MsmsFormatError(int(rows[k]), f"MS/MS peak '{_short(tok)}' is not 'mz:intensity'", tok) from None
    pairs = values.reshape(-1, 2)
    mz, intensity = np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
    finite = np.isfinite(mz) & np.isfinite(intensity)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        tok = tokens[k].as_py()
        raise MsmsFormatError(int(rows[k]), f"MS/MS peak '{_short(tok)}' is not a finite number", tok)
    if (mz <= 0).any():
        k = int(np.flatnonzero(mz <= 0)[0])
        tok = tokens[k].as_py()
        raise MsmsFormatError(int(rows[k]), f"MS/MS peak '{_short(tok)}' has m/z <= 0", tok)
    if (intensity < 0).any():
        k = int(np.flatnonzero(intensity < 0)[0])
        tok = tokens[k].as_py()
        raise MsmsFormatError(int(rows[k]), f"MS/MS peak '{_short(tok)}' has a negative intensity", tok)
    return ParsedMsms(rows, mz, intensity)


def parse_msms(
    text: object, path: str | Path | None = None, line: int | None = None, column: str | None = "MS/MS spectrum"
) -> tuple[np.ndarray, np.ndarray]:
    """One cell through :func:`parse_msms_column`: ``(mz, intensity)`` float64 arrays (empty for a missing cell).

    Errors name ``path`` and ``line`` (:class:`InputFileError`); without ``path``, a plain ``ValueError``
    (:class:`MsmsFormatError`) whose message starts with ``line <line>`` when given.
    """
    if is_empty_msms(text):
        return _EMPTY, _EMPTY
    try:
        parsed = parse_msms_column(pa.array([str(text)], type=pa.string()))
    except MsmsFormatError as exc:
        if path is not None:
            raise InputFileError(path, exc.problem, line=line, column=column) from None
        raise MsmsFormatError(None, (f"line {line}: " if line is not None else "") + exc.problem, exc.token) from None
    return parsed.mz, parsed.intensity


def format_msms(mz: np.ndarray, intensity: np.ndarray, decimals: int = 5) -> str:
    """The inverse of :func:`parse_msms`: ``"mz:int mz:int"`` (used by the synthetic cohort and clients)."""
    return " ".join(f"{m:.{decimals}f}:{i:.6g}" for m, i in zip(mz, intensity, strict=True))


def _short(token: object, n: int = 40) -> str:
    token = str(token)
    return token if len(token) <= n else token[: n - 3] + "..."
