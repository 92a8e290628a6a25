"""A lab's text files read safely: binary and compressed files refused, UTF-8 or Windows-1252 decoded, lines
numbered as an editor shows them, CSV rows, and cells turned into numbers with one C cast where the file is plain.
Every error names the file, the line and the column (:class:`ms2img.errors.InputFileError`)."""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ms2img.errors import InputFileError

_GZIP, _ZIP, _BZ2, _XZ = b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ"
BINARY_MAGIC = (_GZIP, _ZIP, _BZ2, _XZ)  # how compressed files start
# Control characters that never occur in a text export (tab, CR, LF and form feed are allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def check_not_binary(path: Path, data: bytes) -> None:
    """Reject empty, compressed, UTF-16 and binary files with a message naming the file and line."""
    if not data or data.isspace():  # data.strip() without copying the file
        raise InputFileError(path, "file is empty", line=1)
    for magic, kind in ((_GZIP, "gzip"), (_ZIP, "zip"), (_BZ2, "bzip2"), (_XZ, "xz")):
        if data.startswith(magic):
            raise InputFileError(path, f"file is {kind}-compressed; decompress it first", line=1)
    wide = wide_text(data)
    if wide:  # Excel's "Unicode text", Notepad's "Unicode": text, but not UTF-8 (and every other byte NUL)
        raise InputFileError(path, f"{wide} text: save it as UTF-8", line=1)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputFileError(path, "binary data (NUL byte), not a text file", line=line_of_offset(data, nul))


_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE, whose BOM it starts with
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def wide_text(data: bytes) -> str | None:
    """``"UTF-16"`` / ``"UTF-32"`` when ``data`` is text in a wide encoding (its byte-order mark, or, without one,
    UTF-16's pattern: ASCII text with a NUL byte before or after every character), else None. A lab re-saving an
    export as "Unicode text" gets a file that is text, just not UTF-8: it should hear that, not "binary"."""
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            return name
    head = data[:4096]
    head = head[: len(head) - len(head) % 2]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    for zeros, chars in ((odd, even), (even, odd)):  # little-endian, big-endian
        if zeros.count(0) >= 0.95 * len(zeros) and chars.count(0) <= 0.05 * len(chars):
            return "UTF-16"
    return None


UNTERMINATED_WARNING = "exports ending inside a line (cut short?)"


def unterminated(path: str | Path) -> str | None:
    """Why a machine-written table may be cut short, or None: MS-DIAL and MZmine end every line with a line break,
    so a file that ends without one may have lost the rest of its last value (312.125 read as 31)."""
    with open(path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            return None
        fh.seek(-1, 2)
        if fh.read(1) in b"\r\n":
            return None
        fh.seek(0)
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) + 1
    return f"{path}: the file ends inside line {lines} without a line break: if it was cut short its last value is \
incomplete; copy or export it again"


def nfc(text: str) -> str:
    """One spelling of a name: Unicode NFC. macOS writes file names decomposed (``é`` as ``e`` + a combining accent)
    while Excel and Windows compose them; the two look identical and would be two accessions, and a sample sheet
    typed on Windows would list none of a Mac's ``Café_01.mzML``."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a text file (line ``i`` of the editor is ``lines[i - 1]``), rejecting binary content.

    UTF-8 (with or without BOM) first, then Windows-1252 (MS-DIAL on Windows). Lines are split on ``\\n`` only
    and a trailing ``\\r`` is removed, so line numbers match what an editor shows; a file without any ``\\n`` is
    split on ``\\r`` (Excel for Mac's "CSV (Macintosh)"). Text comes back NFC (:func:`nfc`).
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
            text = data.removeprefix(codecs.BOM_UTF8).decode("cp1252")  # a BOM is not three letters of the header
        except UnicodeDecodeError:
            raise InputFileError(
                path, "not a text file (undecodable bytes)", line=line_of_offset(data, exc.start)
            ) from None
    text = nfc(text)
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputFileError(path, "binary data (control characters), not a text file", line=line)
    lines = text.split("\n" if "\n" in text or "\r" not in text else "\r")  # "\r" alone: classic Mac line ends
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.removesuffix("\r") for ln in lines]


SEPARATOR_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def refuse_other_separator(path: str | Path, header: str, line: int, accepted: str = ",") -> None:
    """The one refusal of a header line split by a separator the reader does not take (a semicolon: Excel in a
    decimal-comma locale): read with the wrong one it is a single column, and every later message would be about a
    missing column. ``accepted``: the separators the reader takes; a header holding one of them passes."""
    if any(sep in header for sep in accepted):
        return
    for sep, name in SEPARATOR_NAMES.items():
        if sep in header:
            want = "- or ".join(SEPARATOR_NAMES[a] for a in accepted)
            raise InputFileError(path, f"header is {name}-separated: save it {want}-separated", line=line)


def header_delimiter(path: str | Path, header: str, line: int) -> str:
    """Tab or comma, as a side table's header line shows; any other separator is refused
    (:func:`refuse_other_separator`)."""
    if "\t" in header:
        return "\t"
    refuse_other_separator(path, header, line, accepted=",\t")
    return ","


def csv_rows(path: str | Path, lines: list[str], first_line: int, delimiter: str = ",") -> list[list[str]]:
    """The fields of each of ``lines`` (file line ``first_line`` onwards, one row per line). A line the csv module
    refuses (a carriage return inside it: old Excel's "CSV (Macintosh)" ends lines with one) is an InputFileError
    naming that line, not a traceback."""
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        return list(reader)
    except csv.Error as exc:
        line = first_line + reader.line_num - 1
        hint = " (lines ending in a lone carriage return? save it as CSV UTF-8)" if "new-line" in str(exc) else ""
        raise InputFileError(path, f"not readable as CSV: {exc}{hint}", line=line) from None


NUMBER_TEXT = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"  # a decimal number as written: no NaN, inf, 1,000
MISSING_CELLS = frozenset({"", "na", "nan", "null", "none", "n/a"})  # a cell that says "no value" (any case)


def too_large(what: str, limit: float) -> str:
    """The one message for a height or intensity above ``limit`` (ms2img.io.schema.MAX_INTENSITY in the readers):
    ``what`` names the value, e.g. "MS2 peak intensity 3e+30"."""
    return f"{what} is above {limit:g}: no instrument reports that much (a corrupted or mistyped cell?)"


def column_to_float(
    values: list[str] | np.ndarray,
    path: str | Path,
    lines: np.ndarray,
    columns: str | np.ndarray,
    *,
    missing: float | None = None,
    minimum: float | None = None,
    positive: bool = False,
    maximum: float | None = None,
) -> np.ndarray:
    """Convert text cells to float64 at once, reporting the first bad cell's file, line and column.

    ``lines`` (and ``columns`` when it is an array) give each cell's 1-based line / column name. Missing cells
    (empty, NA, null) become ``missing``, or are an error when it is None. ``minimum`` / ``positive`` /
    ``maximum`` bound values (heights pass ``maximum=MAX_INTENSITY``: a larger one is a corrupted cell).
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
        is_missing[idx] = [str(cells.iat[i]).strip().lower() in MISSING_CELLS for i in idx]
        if missing is None and is_missing.any():
            fail(is_missing, "missing value")
        if (bad & ~is_missing).any():
            fail(bad & ~is_missing, "'{value}' is not a number")
        arr[is_missing] = missing
    if positive and (arr <= 0).any():
        fail(arr <= 0, "{value} must be > 0")
    if minimum is not None and (arr < minimum).any():
        fail(arr < minimum, f"{{value}} is negative (must be >= {minimum:g})")
    if maximum is not None and (arr > maximum).any():
        fail(arr > maximum, too_large("{value}", maximum))
    return arr


def plain_floats(
    cells: pa.Array, *, minimum: float | None = None, positive: bool = False, maximum: float | None = None
) -> np.ndarray | None:
    """The C path of :func:`strings_to_float` alone: float64 values when every cell is a finite number within the
    bounds, else None (the caller decides: the full rules, or a reader that streams falling back to one that
    does not)."""
    try:
        values = pc.cast(pc.utf8_trim_whitespace(cells), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    ok = bool(np.isfinite(values).all())
    if ok and positive:
        ok = bool((values > 0).all())
    if ok and minimum is not None:
        ok = bool((values >= minimum).all())
    if ok and maximum is not None:
        ok = bool((values <= maximum).all())
    return np.ascontiguousarray(values, dtype=np.float64) if ok else None


def plain_float_columns(
    columns: list[pa.Array], n: int, *, minimum: float | None = None, maximum: float | None = None
) -> np.ndarray | None:
    """The C path of :func:`strings_to_float_columns` alone: the rows x columns float64 matrix of ``n`` rows, or
    None when any cell is not a finite number within ``minimum`` and ``maximum``."""
    if not columns:
        return np.zeros((n, 0))
    try:
        values = pc.cast(pc.utf8_trim_whitespace(pa.concat_arrays(columns)), pa.float64()).to_numpy(
            zero_copy_only=False
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    ok = bool(np.isfinite(values).all()) and (minimum is None or bool((values >= minimum).all()))
    ok = ok and (maximum is None or bool((values <= maximum).all()))
    return np.ascontiguousarray(values.reshape(len(columns), n).T) if ok else None


def strings_to_float(
    cells: pa.Array,
    path: str | Path,
    lines: np.ndarray,
    column: str,
    *,
    missing: float | None = None,
    minimum: float | None = None,
    positive: bool = False,
    maximum: float | None = None,
    count_empty: bool = False,
) -> tuple[np.ndarray, int]:
    """An Arrow string column to float64 with one C cast; on anything unusual :func:`column_to_float` decides
    (same rules, exact file / line / column in the error). Returns the values and the number of cells that
    held an explicit missing marker (``NA``, ``nan``, ``null``, ...; empty cells too when ``count_empty``)."""
    values = plain_floats(cells, minimum=minimum, positive=positive, maximum=maximum)
    if values is not None:
        return values, 0
    trimmed = pc.utf8_trim_whitespace(cells)
    texts = np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=object)
    values = column_to_float(
        texts, path, lines, column, missing=missing, minimum=minimum, positive=positive, maximum=maximum
    )
    lowered = pc.utf8_lower(trimmed)
    counted = MISSING_CELLS if count_empty else MISSING_CELLS - {""}
    markers = pc.and_(pc.is_in(lowered, value_set=pa.array(sorted(counted))), pc.invert(pc.is_null(lowered)))
    return values, int(pc.sum(markers).as_py() or 0)


def strings_to_float_columns(
    columns: list[pa.Array],
    path: str | Path,
    lines: np.ndarray,
    names: list[str],
    *,
    missing: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> tuple[np.ndarray, int]:
    """Several Arrow string columns (same length) to one float64 matrix (rows x columns) with one C cast; when
    any cell is unusual each column goes through :func:`strings_to_float` (same rules, same errors). Returns
    the matrix and the number of missing cells (markers and empty cells: a table of heights has no optional cell)."""
    values = plain_float_columns(columns, len(lines), minimum=minimum, maximum=maximum)
    if values is not None:
        return values, 0
    out, n_missing = [], 0
    for cells, name in zip(columns, names, strict=True):
        values, k = strings_to_float(
            cells, path, lines, name, missing=missing, minimum=minimum, maximum=maximum, count_empty=True
        )
        out.append(values)
        n_missing += k
    return np.column_stack(out), n_missing


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
