"""MS-DIAL-style MS/MS strings (``"mz:int mz:int ..."``): the one parser, used by every reader and the server.

One rule set, vectorised with Arrow over a whole column (:func:`parse_msms_column`); :func:`parse_msms` is the
same parser on one cell. The rules:

* a spectrum is ``mz:intensity`` pairs separated by whitespace and/or ``;`` (MS-DIAL writes ``"50.4:6 96.8:6"``,
  some versions and tools ``"50.4:6;96.8:6"``);
* a missing cell (null/NaN, empty, only separators, ``null``, ``NA``, ``NaN``, ``None``, any case) is a precursor
  without fragments;
* every token has exactly one ``:``; both sides are decimal numbers (``1.7E4`` is fine); m/z is finite and > 0,
  intensity finite and >= 0. Anything else raises, naming the row (and, for files, the file and line).

After :func:`warm_up` (the server calls it when it loads a model) plain columns take a numba-compiled single pass
over the Arrow bytes instead (~6 ms of CPU instead of the Arrow kernels' ~20 ms on a 5,000-precursor request), with
the same results bit for bit; anything it is not sure of goes to the Arrow path, which also makes every error.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ms2img.errors import InputFileError, Ms2ImgError
from ms2img.io.text import too_large

# Values MS-DIAL (and people) write for "no spectrum".
EMPTY_MSMS = frozenset({"", "null", "na", "nan", "none"})
_EMPTY_LIST = pa.array(sorted(EMPTY_MSMS), type=pa.string())
_EMPTY = np.empty(0, dtype=np.float64)
# A plain decimal number; used only to point at the offending token once Arrow's cast has failed.
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_POW10 = np.array([float(10**k) for k in range(23)])  # exact doubles
_compiled: dict[str, object] = {}
_compiled_lock = threading.Lock()
log = logging.getLogger(__name__)


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
    max_intensity: float | None = None,
) -> ParsedMsms:
    """Parse a whole column of MS/MS strings at once into ``ParsedMsms(row, mz, intensity)``.

    Vectorised with Arrow (separators to spaces, split, split tokens at ``:``, one cast to float64): ~50 M
    fragments/s. On a broken cell raises :class:`MsmsFormatError` (``.row`` = 0-based position), or, when
    ``path`` is given, :class:`~ms2img.errors.InputFileError` naming ``path``, ``lines[row]`` (default
    ``row + 1``) and ``column``. More than ``max_fragments`` fragments raises ``MsmsFormatError`` with
    ``row=None`` before anything is converted. A fragment intensity above ``max_intensity`` (ingest passes
    :data:`ms2img.io.schema.MAX_INTENSITY`) is an error too: no instrument reports it, a corrupted cell does.
    """
    try:
        parsed = _parse(_as_arrow(strings), max_fragments)
        if max_intensity is not None:
            _check_max_intensity(parsed, max_intensity)
        return parsed
    except MsmsFormatError as exc:
        if path is None or exc.row is None:
            raise
        line = int(np.asarray(lines)[exc.row]) if lines is not None else exc.row + 1
        raise InputFileError(path, exc.problem, line=line, column=column) from None


def _check_max_intensity(parsed: ParsedMsms, limit: float) -> None:
    """The first fragment above ``limit`` as an error on its row (both parse paths give the same values)."""
    big = np.flatnonzero(parsed.intensity > limit)
    if len(big):
        k = int(big[0])
        mz, intensity = parsed.mz[k], parsed.intensity[k]
        raise MsmsFormatError(
            int(parsed.row[k]),
            too_large(f"MS/MS peak {mz:g}:{intensity:g}'s intensity", limit),
            f"{mz:g}:{intensity:g}",
        )


def _parse(arr: pa.Array, max_fragments: int | None) -> ParsedMsms:
    n = len(arr)
    if n == 0:
        return ParsedMsms(np.empty(0, dtype=np.int64), _EMPTY, _EMPTY)
    kernel = _compiled.get("plain")
    if kernel is not None:
        plain = _parse_plain(kernel, arr, max_fragments)
        if plain is not None:
            return plain
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

    flat = _sides(tokens)
    if flat is None:  # some token has no ':' or several: name the first
        parts = pc.split_pattern(tokens, ":")
        not_pair = pc.not_equal(pc.list_value_length(parts), 2)
        k = int(np.flatnonzero(not_pair.to_numpy(zero_copy_only=False))[0])
        tok = tokens[k].as_py()
        raise MsmsFormatError(int(rows[k]), f"MS/MS peak '{_short(tok)}' is not 'mz:intensity'", tok)
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


def _sides(tokens: pa.Array) -> pa.Array | None:
    """``[mz0, int0, mz1, int1, ...]``: both sides of every token when each holds exactly one ``:``, else None.

    The same strings as ``pc.split_pattern(tokens, ":").flatten()``, cut from the tokens' own buffers instead of
    building one list per token (~2 ms less CPU on 150k peaks, ~12% of this path): with one ``:`` per token,
    deleting the colons shifts token ``i`` left by ``i`` bytes, so every side's offset follows from the token
    offsets and the colon positions.
    """
    n = len(tokens)
    _, offsets_buf, data_buf = tokens.buffers()
    wide = pa.types.is_large_string(tokens.type)
    raw = np.frombuffer(offsets_buf, dtype=np.int64 if wide else np.int32)[tokens.offset : tokens.offset + n + 1]
    raw = raw.astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)[raw[0] : raw[-1]]
    off = raw - raw[0]
    colon = np.flatnonzero(data == ord(":"))
    # as many ':' as tokens, the i-th inside the i-th token: exactly one in each
    if len(colon) != n or not ((off[:-1] <= colon) & (colon < off[1:])).all():
        return None
    shift = np.arange(n + 1, dtype=np.int64)  # colons deleted before token i
    offsets = np.empty(2 * n + 1, dtype=np.int64)
    offsets[0::2] = off - shift
    offsets[1::2] = colon - shift[:-1]
    text = data.tobytes().translate(None, b":")
    return pa.Array.from_buffers(pa.large_string(), 2 * n, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def _parse_plain(kernel, arr: pa.Array, max_fragments: int | None) -> ParsedMsms | None:
    """The compiled single pass (:func:`_plain_loop`) on the column's bytes; None when it declines."""
    if arr.null_count:
        arr = arr.fill_null("")
    _, offsets_buf, data_buf = arr.buffers()
    wide = pa.types.is_large_string(arr.type)
    raw = np.frombuffer(offsets_buf, dtype=np.int64 if wide else np.int32)[arr.offset : arr.offset + len(arr) + 1]
    if data_buf is None or raw[-1] == raw[0]:
        return None
    data = np.frombuffer(data_buf, dtype=np.uint8)[raw[0] : raw[-1]]
    n_colons = int(np.count_nonzero(data == ord(":")))  # a bound on the peaks: each has one
    if n_colons == 0 or (max_fragments is not None and n_colons > max_fragments):
        return None
    rows = np.empty(n_colons, dtype=np.int64)
    mz, intensity = np.empty(n_colons), np.empty(n_colons)
    k = kernel(data, np.ascontiguousarray(raw - raw[0], dtype=np.int64), _POW10, rows, mz, intensity)
    if k < 0:
        return None
    return ParsedMsms(rows[:k], mz[:k], intensity[:k]) if k < n_colons else ParsedMsms(rows, mz, intensity)


def _plain_loop(data, off, pow10, rows, mz, intensity):  # pragma: no cover - compiled by numba
    """Parse the cells ``data[off[r]:off[r + 1]]`` as peaks ``mz:intensity`` separated by ASCII whitespace or
    ``;`` into ``rows``/``mz``/``intensity``; the number of peaks, or -1 to decline (the Arrow path decides).

    It accepts only what the Arrow path accepts with the same value: each side ``[+-]digits[.digits][e[+-]digits]``
    (at least one digit, at most 18, exponent at most 4 digits), whose value ``w * 10**q`` has an integer
    ``w <= 2**53`` and ``|q| <= 22``: then ``w`` and ``10**|q|`` are exact doubles and one IEEE multiplication or
    division rounds the exact decimal correctly, as Arrow's parser (fast_float) does. m/z must be > 0 and
    intensity >= 0. Anything else (markers such as ``NA``, other bytes, long or huge numbers, broken peaks)
    declines.
    """
    k = 0
    for r in range(off.shape[0] - 1):
        i = off[r]
        end = off[r + 1]
        while i < end:
            c = data[i]
            if c == 32 or c == 59 or (c >= 9 and c <= 13):
                i += 1
                continue
            if k >= rows.shape[0]:
                return -1
            for side in range(2):
                neg = False
                if i < end and (data[i] == 43 or data[i] == 45):
                    neg = data[i] == 45
                    i += 1
                w = 0
                digits = 0
                q = 0
                while i < end and data[i] >= 48 and data[i] <= 57:
                    w = w * 10 + (np.int64(data[i]) - 48)
                    digits += 1
                    i += 1
                if i < end and data[i] == 46:
                    i += 1
                    while i < end and data[i] >= 48 and data[i] <= 57:
                        w = w * 10 + (np.int64(data[i]) - 48)
                        digits += 1
                        q -= 1
                        i += 1
                if digits == 0 or digits > 18:
                    return -1
                if i < end and (data[i] == 101 or data[i] == 69):
                    i += 1
                    e_neg = False
                    if i < end and (data[i] == 43 or data[i] == 45):
                        e_neg = data[i] == 45
                        i += 1
                    e = 0
                    e_digits = 0
                    while i < end and data[i] >= 48 and data[i] <= 57:
                        e = e * 10 + (np.int64(data[i]) - 48)
                        e_digits += 1
                        i += 1
                    if e_digits == 0 or e_digits > 4:
                        return -1
                    q += -e if e_neg else e
                if w > 9007199254740992 or q < -22 or q > 22:
                    return -1
                v = float(w) * pow10[q] if q >= 0 else float(w) / pow10[-q]
                if neg:
                    v = -v
                if side == 0:
                    if i >= end or data[i] != 58 or not v > 0.0:
                        return -1
                    i += 1
                    mz[k] = v
                else:
                    if i < end:
                        c = data[i]
                        if not (c == 32 or c == 59 or (c >= 9 and c <= 13)):
                            return -1
                    if not v >= 0.0:
                        return -1
                    intensity[k] = v
            rows[k] = r
            k += 1
    return k


def _compile_plain():
    try:
        import numba
        from numba import types
    except ImportError:
        log.debug("numba is not installed; MS/MS strings are parsed with Arrow")
        return None
    i64, f64 = types.Array(types.int64, 1, "C"), types.Array(types.float64, 1, "C")
    sigs = [
        types.int64(types.Array(types.uint8, 1, "C", readonly=readonly), i64, f64, i64, f64, f64)
        for readonly in (True, False)  # Arrow's buffers are read-only
    ]
    for cache in (True, False):  # no writable cache folder: compile every process
        try:
            return numba.njit(sigs, cache=cache, nogil=True)(_plain_loop)
        except Exception as exc:  # noqa: BLE001 - numba raises many types; the Arrow path is always there
            log.warning("numba MS/MS parser unavailable (%s: %s)", exc.__class__.__name__, exc)
    return None


def warm_up() -> bool:
    """Import numba and compile (or load from its cache) the plain-column parser, and use it from now on in this
    process; False without numba (the Arrow path stays). A server calls this when it loads its model."""
    with _compiled_lock:
        if "plain" not in _compiled:
            _compiled["plain"] = _compile_plain()
    return _compiled["plain"] is not None


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
