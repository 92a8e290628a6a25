"""MS-DIAL alignment exports (any version) -> canonical events.

Layout: optional metadata rows above the header (``Class``, ``File type`` or ``Type``, ``Injection order``,
``Batch ID``); their label sits in the column just left of the first sample column. The header starts with
``Alignment ID``. Sample columns are chosen by their type (Sample / QC / Blank); summary columns (type ``NA``,
``Batch ID`` Average / Stdev) are ignored whatever their names. Sample values are heights, 0 = not detected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ms2img.errors import InputFileError
from ms2img.io.msms import MsmsFormatError, parse_msms_column
from ms2img.io.result import AlignedFeatures, FragmentBlock, ReadResult
from ms2img.io.sample_sheet import (
    SHEET_TYPE_WARNING,
    index_sheet,
    normalize_type,
    resolve,
    sheet_row,
    type_changes,
)
from ms2img.io.schema import MAX_INTENSITY, SAMPLE_TYPES, charge_from_adduct, polarity_of
from ms2img.io.text import (
    BINARY_MAGIC,
    check_not_binary,
    plain_float_columns,
    plain_floats,
    read_text_lines,
    strings_to_float,
    strings_to_float_columns,
)

log = logging.getLogger(__name__)

ID, MZ, RT, MSMS = "Alignment ID", "Average Mz", "Average Rt(min)", "MS/MS spectrum"
ADDUCT_COLUMNS = ("Adduct type", "Adduct ion name")
TYPE_LABELS = ("file type", "type")
# Not samples: summaries (NA), standards, empty cells (warned); any other value is refused (a misspelt "Sampel" would
# silently drop a sample). A sample sheet's type decides for any column but a summary.
SKIPPED_TYPES = ("na", "standard", "")
UNTYPED_WARNING = "sample columns without a File type"
MAX_METADATA_ROWS = 50
STREAM_BLOCK_BYTES = 16 << 20  # lines read and parsed at a time: the parsing's working memory is a few blocks


def is_msdial_header(line: str) -> bool:
    """True when ``line`` is an MS-DIAL alignment header (used to sniff files)."""
    return line.split("\t", 1)[0].strip().lstrip("\ufeff") == ID


def read_msdial(
    path: str | Path,
    sample_sheet: pd.DataFrame | str | Path | None = None,
    accession_from: str = "column",
    expand_types: tuple[str, ...] | None = None,
    *,
    block_bytes: int | None = None,
) -> ReadResult:
    """Read one MS-DIAL alignment export.

    ``accession_from="column"``: each sample column is its own accession (replicate ``"1"``);
    ``"file"``: the file is one accession (its stem) and each sample column a replicate. A sample sheet
    (see :mod:`ms2img.io.sample_sheet`) overrides accession, replicate, type and class per sample column.
    ``expand_types`` (e.g. ``("Sample",)``) builds events only for samples of those types (the manifest still
    lists every sample): ingest uses it to skip blank and QC rows it would drop anyway.

    The file is read ``block_bytes`` (default ``STREAM_BLOCK_BYTES``) at a time, in whole lines, each block parsed
    by pyarrow's C CSV reader and converted column by column; the result holds the parsed features
    (:class:`AlignedFeatures`: events built on first use, or streamed by ingest), so memory follows the file, not
    its events (a 300 MB export holds 22 M). A file that is not plain throughout (ragged rows, blank lines,
    Windows-1252 bytes, any cell the C casts refuse) is read whole by a line-by-line reader that applies the same
    rules, so every error still names the line an editor shows and is the first error the whole file gives.
    """
    if accession_from not in ("column", "file"):
        raise ValueError(f"accession_from must be 'column' or 'file', not {accession_from!r}")
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    layout, parsed = _read_blocks(path, sample_sheet, max(1, int(block_bytes or STREAM_BLOCK_BYTES)))
    if parsed is None:
        layout, parsed = _read_whole(path, sample_sheet, layout)
    header, warnings, sheet_index = layout.header, layout.warnings, layout.sheet_index
    n_missing = parsed.pop("n_missing")
    if n_missing:
        warnings[MISSING_HEIGHT_WARNING] = warnings.get(MISSING_HEIGHT_WARNING, 0) + n_missing
        log.warning(
            "%s: %d sample height cell(s) empty or NA/nan/null: read as not detected",
            path,
            warnings[MISSING_HEIGHT_WARNING],
        )

    own_types = {header[j]: meta["type"] for j, meta in layout.samples if meta["type"]}
    changed = type_changes(sheet_index, own_types)
    if changed:
        warnings[SHEET_TYPE_WARNING] = len(changed)
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        log.warning(
            "%s: the sample sheet or metadata changes the File type of %s%s", path, ", ".join(changed[:5]), more
        )
    manifest = []
    for j, meta in layout.samples:
        name = header[j]
        acc, rep = (name, "1") if accession_from == "column" else (path.stem, name)
        manifest.append(
            {**resolve(sheet_index, name, acc, rep, meta["type"] or "Sample", meta["class"]), "source": str(path)}
        )
    expand = None if expand_types is None else [k for k, m in enumerate(manifest) if m["type"] in expand_types]
    features = AlignedFeatures(
        **parsed,
        accessions=[m["accession"] for m in manifest],
        replicates=[m["replicate"] for m in manifest],
        expand=expand,
    )
    no_msms = int(np.count_nonzero(features.fragment_counts() == 0))
    return ReadResult(
        events=None,
        samples=manifest,
        source=path,
        precursors_without_msms=no_msms,
        undetected_cells=int(np.count_nonzero(~(features.heights > 0))),
        warnings=warnings,
        rt_unit=f"minutes (MS-DIAL column '{RT}')",
        features=features,
    )


_Sheet = pd.DataFrame | str | Path | None  # a sample sheet as read_msdial takes it


class _Layout(NamedTuple):
    """What the lines above the body say: the header line (0-based), its cells, where the named columns are,
    the sample columns and the columns to read."""

    h: int
    header: list[str]
    col: dict[str, int]
    adduct_col: int | None
    samples: list[tuple[int, dict[str, str]]]
    wanted: list[int]
    warnings: dict[str, int]
    sheet_index: dict[str, dict[str, str]]


def _layout(path: Path, lines: list[str], sample_sheet: _Sheet) -> _Layout:
    """Header, named columns and sample columns from the head lines (errors name the line)."""
    h = _find_header(path, lines)
    header = [c.strip() for c in lines[h].split("\t")]
    header[0] = header[0].lstrip("\ufeff")
    hline = h + 1
    col = {name: i for i, name in reversed(list(enumerate(header)))}  # first occurrence wins
    for name in (ID, MZ, RT, MSMS):
        if name not in col:
            raise InputFileError(path, f"header lacks the column '{name}'", line=hline)
    _check_unique_fixed_columns(path, header, hline)
    adduct_col = next((col[c] for c in ADDUCT_COLUMNS if c in col), None)
    warnings: dict[str, int] = {}
    sheet_index = index_sheet(sample_sheet)
    samples = _select_samples(path, lines, h, header, sheet_index, warnings)
    wanted = [col[ID], col[MZ], col[RT], col[MSMS], *([adduct_col] if adduct_col is not None else [])]
    wanted += [j for j, _ in samples]
    return _Layout(h, header, col, adduct_col, samples, wanted, warnings, sheet_index)


def _read_blocks(path: Path, sample_sheet: _Sheet, block_bytes: int) -> tuple[_Layout | None, dict | None]:
    """The export read a block of lines at a time: ``(layout, parsed)`` with ``parsed`` the keyword arguments of
    :class:`AlignedFeatures` (plus ``n_missing``), or ``parsed=None`` when a block is not plain (anything the
    whole-file reader would explain, warn about or read line by line): that reader then decides."""
    with path.open("rb") as fh:
        head = _read_head(fh)
        if not head or head.isspace() or head.startswith(BINARY_MAGIC):
            return None, None
        lines = _head_lines(head)
        if lines is None:
            return None, None
        try:
            layout = _layout(path, lines, sample_sheet)
        except InputFileError:  # the whole-file reader says it (a NUL byte further down comes first there)
            return None, None
        col, width = layout.col, len(layout.header)
        sample_cols = [j for j, _ in layout.samples]
        adduct_codes: dict[str, tuple[int, int]] = {}
        ids, mz, rt, pol, charge, heights, blocks = [], [], [], [], [], [], []
        start = 0
        for block, final in _line_blocks(fh, head[_body_offset(head, layout.h) :], block_bytes):
            if final and not block.strip(b"\r\n"):
                break  # blank lines at the end of the file
            if b"\x00" in block or len(block.translate(None, _CONTROL_DELETE)) != len(block):
                return layout, None
            cells = _fast_columns(block, 0, width, layout.wanted, strip_end=final)
            if cells is None:
                return layout, None
            block_ids = pc.utf8_trim_whitespace(cells[col[ID]])
            n = len(block_ids)
            if n == 0 or pc.min(pc.binary_length(block_ids)).as_py() == 0:
                return layout, None
            block_mz = plain_floats(cells[col[MZ]], positive=True)
            block_rt = plain_floats(cells[col[RT]], minimum=0.0)
            block_h = plain_float_columns([cells[j] for j in sample_cols], n, minimum=0.0, maximum=MAX_INTENSITY)
            try:
                spectra = parse_msms_column(cells[col[MSMS]], path=None, max_intensity=MAX_INTENSITY)
            except MsmsFormatError:
                spectra = None
            if block_mz is None or block_rt is None or block_h is None or spectra is None:
                return layout, None
            adducts = cells[layout.adduct_col] if layout.adduct_col is not None else None
            block_pol, block_charge = _adduct_codes(adducts, n, adduct_codes)
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(spectra.counts(n), out=offsets[1:])
            blocks.append(FragmentBlock(start, offsets, spectra.mz, spectra.intensity))
            ids.append(block_ids)
            mz.append(block_mz)
            rt.append(block_rt)
            pol.append(block_pol)
            charge.append(block_charge)
            heights.append(block_h)
            start += n
            del cells, spectra
    if not ids:
        return layout, None
    feature_id = pc.dictionary_encode(pa.concat_arrays(ids))
    # the blocks' parsing buffers stay with Arrow's allocator otherwise (~100 MB for a 300 MB export): hand them
    # back before the caller builds the events
    pa.default_memory_pool().release_unused()
    if len(feature_id.dictionary) != start:  # a duplicate id: the whole-file reader names its line
        return layout, None
    parsed = {
        "feature_id": feature_id,
        "precursor_mz": np.concatenate(mz),
        "rt_min": np.concatenate(rt),
        "polarity": _polarity_array(np.concatenate(pol)),
        "charge": np.concatenate(charge),
        "heights": np.concatenate(heights),
        "blocks": blocks,
        "n_missing": 0,
    }
    return layout, parsed


def _read_whole(path: Path, sample_sheet: _Sheet, layout: _Layout | None) -> tuple[_Layout, dict]:
    """The whole file at once: pyarrow over the body when it can, else line by line with exact line numbers and
    every rule's error. ``layout``, from the same head lines, saves re-reading the head (and re-warning)."""
    data = path.read_bytes()
    check_not_binary(path, data)
    lines = _head_lines(data)
    fast = lines is not None
    if not fast:  # not UTF-8 (Windows-1252) or control characters: the careful reader explains or copes
        lines = read_text_lines(path)
        layout = None
    if layout is None:
        layout = _layout(path, lines, sample_sheet)
    h, header, col, adduct_col, samples, wanted = layout[:6]
    hline = h + 1
    cells = _fast_columns(data, _body_offset(data, h), len(header), wanted) if fast else None
    del data
    if cells is not None:
        ids_arr = pc.utf8_trim_whitespace(cells[col[ID]])
        line_no = np.arange(h + 2, h + 2 + len(ids_arr), dtype=np.int64)
        if len(ids_arr) == 0 or pc.min(pc.binary_length(ids_arr)).as_py() == 0:
            cells = None  # a blank or whitespace-only line (or an empty id): the line-by-line reader decides
    if cells is None:
        if fast:
            lines = read_text_lines(path)
        cells, line_no = _slow_columns(path, lines, h, len(header), wanted)
        ids_arr = pc.utf8_trim_whitespace(cells[col[ID]])
        if len(line_no) == 0:
            raise InputFileError(path, "no data rows below the header", line=hline)
        empty_id = np.flatnonzero(pc.equal(pc.binary_length(ids_arr), 0).to_numpy(zero_copy_only=False))
        if len(empty_id):
            raise InputFileError(path, "empty Alignment ID", line=int(line_no[empty_id[0]]), column=ID)
    ids = pc.dictionary_encode(ids_arr)  # also the feature_id dictionary of the events
    if len(ids.dictionary) != len(ids_arr):
        texts = ids_arr.to_numpy(zero_copy_only=False)
        i = int(np.flatnonzero(pd.Index(texts).duplicated())[0])
        raise InputFileError(path, f"duplicate Alignment ID '{texts[i]}'", line=int(line_no[i]), column=ID)
    mz, _ = strings_to_float(cells[col[MZ]], path, line_no, MZ, positive=True)
    rt, _ = strings_to_float(cells[col[RT]], path, line_no, RT, minimum=0.0)
    pol, charge = _adduct_codes(cells[adduct_col] if adduct_col is not None else None, len(ids_arr), {})
    spectra = parse_msms_column(cells[col[MSMS]], path=path, lines=line_no, column=MSMS, max_intensity=MAX_INTENSITY)
    heights, n_missing = strings_to_float_columns(
        [cells[j] for j, _ in samples],
        path,
        line_no,
        [header[j] for j, _ in samples],
        missing=0.0,
        minimum=0.0,
        maximum=MAX_INTENSITY,
    )
    n = len(ids_arr)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(spectra.counts(n), out=offsets[1:])
    parsed = {
        "feature_id": ids,
        "precursor_mz": mz,
        "rt_min": rt,
        "polarity": _polarity_array(pol),
        "charge": charge,
        "heights": heights,
        "blocks": [FragmentBlock(0, offsets, spectra.mz, spectra.intensity)],
        "n_missing": n_missing,
    }
    return layout, parsed


MISSING_HEIGHT_WARNING = "sample height cells empty or NA/nan/null read as not detected"
# Control characters that never occur in a text export (tab, CR, LF and form feed are allowed), as a lookup table.
_CONTROL_BYTES = np.zeros(256, dtype=bool)
_CONTROL_BYTES[[*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F]] = True
_CONTROL_DELETE = bytes(np.flatnonzero(_CONTROL_BYTES).astype(np.uint8))  # bytes.translate: one C pass


def _head_lines(data: bytes) -> list[str] | None:
    """The first lines (decoded, ``\\r`` removed) for header sniffing, or None when the file needs the careful
    reader (not UTF-8, control characters, classic Mac line ends: a lone ``\r``)."""
    if len(data.translate(None, _CONTROL_DELETE)) != len(data) or (b"\r" in data and b"\n" not in data):
        return None
    cut = -1
    for _ in range(MAX_METADATA_ROWS + 1):  # split only the head, not a copy of the whole file
        cut = data.find(b"\n", cut + 1)
        if cut < 0:
            break
    pieces = (data if cut < 0 else data[:cut]).split(b"\n")
    try:
        lines = [p.decode("utf-8") for p in pieces]
    except UnicodeDecodeError:
        return None
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return [ln.removesuffix("\r") for ln in lines]


def _body_offset(data: bytes, h: int) -> int:
    """Byte offset of the line after the header (line ``h``, 0-based)."""
    pos = -1
    for _ in range(h + 1):
        pos = data.find(b"\n", pos + 1)
        if pos < 0:
            return len(data)
    return pos + 1


def _read_head(fh) -> bytes:
    """The first bytes of an open file, enough to hold the lines :func:`_head_lines` looks at (or all of it)."""
    head = b""
    while head.count(b"\n") <= MAX_METADATA_ROWS:
        more = fh.read(1 << 16)
        if not more:
            break
        head += more
    return head


def _line_blocks(fh, buf: bytes, size: int) -> Iterator[tuple[bytes, bool]]:
    """``(block, is_last)``: the rest of an open file (``buf`` already read) in blocks of whole lines of about
    ``size`` bytes. A run of blank lines is never cut at its start, so blank lines at the end of the file all
    fall in the last block (dropped there as the whole-file reader drops them)."""
    eof = False
    while True:
        cut = -1
        while True:
            nl = buf.find(b"\n", size - 1) if len(buf) >= size else -1
            if nl >= 0:  # cut after a line end that content follows, not inside a run of line ends
                j = nl + 1
                while j < len(buf) and buf[j] in b"\r\n":
                    j += 1
                cut = nl + 1 if j < len(buf) else -1
            if cut >= 0 or eof:
                break
            more = fh.read(max(size, 1 << 16))
            eof = not more
            buf += more
        if cut < 0:
            if buf:
                yield buf, True
            return
        yield buf[:cut], False
        buf = buf[cut:]


def _fast_columns(
    data: bytes, offset: int, width: int, wanted: list[int], strip_end: bool = True
) -> dict[int, pa.Array] | None:
    """The ``wanted`` columns of the body as Arrow strings via pyarrow's CSV reader; None when the body has
    ragged rows or bytes that are not UTF-8. Blank lines are kept as rows (``ignore_empty_lines=False``: an
    empty row, or a whitespace one that fails the field count), so line numbers never shift; a row with an
    empty id sends the caller to the line-by-line reader, which skips blank lines or names the line. Blank lines
    at the end are dropped when ``strip_end`` (the end of the file, not of a block)."""
    end = len(data)
    while strip_end and end > offset and data[end - 1] in b"\r\n":
        end -= 1
    if end <= offset:
        return None
    body = memoryview(data)[offset:end]
    names = [str(i) for i in range(width)]
    columns = list(dict.fromkeys(wanted))
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(body)),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, newlines_in_values=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=[names[j] for j in columns],
                column_types={names[j]: pa.string() for j in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException:
        return None
    out = {}
    for j in columns:
        chunked = table.column(names[j])
        out[j] = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
    return out


def _slow_columns(
    path: Path, lines: list[str], h: int, width: int, wanted: list[int]
) -> tuple[dict[int, pa.Array], np.ndarray]:
    """The same columns from the decoded lines, one line at a time, with exact line numbers."""
    rows = _data_rows(path, lines, h, width)
    line_no = np.fromiter((n for n, _ in rows), dtype=np.int64, count=len(rows))
    out = {j: pa.array([f[j] for _, f in rows], type=pa.string()) for j in dict.fromkeys(wanted)}
    return out, line_no


_POLARITIES = pa.array(["unknown", "positive", "negative"], type=pa.string())
_POLARITY_CODE = {"unknown": 0, "positive": 1, "negative": 2}  # the order of _POLARITIES


def _adduct_codes(adducts: pa.Array | None, n: int, known: dict[str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: the polarity code (index in ``_POLARITIES``, :func:`polarity_of`) and the adduct's charge
    (``[M+2H]2+`` -> 2; 0 where there is no adduct to say, read as 1). A few distinct adducts: each is judged once
    (``known`` keeps the judgements across blocks)."""
    if adducts is None:
        return np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int64)
    enc = pc.dictionary_encode(adducts)
    values = enc.dictionary.to_pylist()
    if not values:
        return np.zeros(n, dtype=np.int32), np.zeros(n, dtype=np.int64)
    for a in values:
        if a not in known:
            known[a] = (_POLARITY_CODE[polarity_of(a)], charge_from_adduct(a))
    per_value = np.array([known[a] for a in values], dtype=np.int64).reshape(-1, 2)
    idx = enc.indices.to_numpy(zero_copy_only=False)
    return per_value[idx, 0].astype(np.int32), per_value[idx, 1]


def _polarity_array(codes: np.ndarray) -> pa.DictionaryArray:
    """The per-feature polarity codes as a dictionary array whose dictionary is in order of first appearance (as
    a factorize of the per-feature strings gives)."""
    values, first = np.unique(codes, return_index=True)
    seen = values[np.argsort(first)]
    remap = np.empty(len(_POLARITIES), dtype=np.int32)
    remap[seen] = np.arange(len(seen), dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(remap[codes]), _POLARITIES.take(pa.array(seen)))


def _check_unique_fixed_columns(path: Path, header: list[str], hline: int) -> None:
    """The columns read by name, and every column up to ``MS/MS spectrum``, must be unique: with two
    ``Average Mz`` columns which one holds the m/z is a guess. Summary columns (right of the samples) may
    repeat a class name (one Average, one Stdev), and sample columns are checked by ``_select_samples``."""
    named = {ID, MZ, RT, MSMS, *ADDUCT_COLUMNS}
    fixed_end = header.index(MSMS) + 1
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if not name or (j >= fixed_end and name not in named):
            continue
        if name in seen:
            raise InputFileError(
                path, f"duplicate header column (columns {seen[name] + 1} and {j + 1})", line=hline, column=name
            )
        seen[name] = j


def _find_header(path: Path, lines: list[str]) -> int:
    """Index of the ``Alignment ID`` header line; explains a wrong delimiter or a missing header."""
    for i, line in enumerate(lines[: MAX_METADATA_ROWS + 1]):
        if is_msdial_header(line):
            return i
        first = line.lstrip("\ufeff")
        for sep, name in ((",", "comma"), (";", "semicolon")):
            if first.startswith((ID + sep, f'"{ID}"{sep}')):
                raise InputFileError(
                    path, f"header is {name}-separated; MS-DIAL alignment exports are tab-separated", line=i + 1
                )
    raise InputFileError(path, f"no header row starting with '{ID}' in the first {MAX_METADATA_ROWS + 1} lines "
                         "(is this an MS-DIAL alignment export?)", line=1)  # fmt: skip


def _select_samples(
    path: Path, lines: list[str], h: int, header: list[str], sheet_index: dict, warnings: dict[str, int]
) -> list[tuple[int, dict[str, str]]]:
    """``(column index, {"type", "class"})`` per sample column, by the File type / Type row, else by the sample
    sheet (the columns it lists); without either, summary columns could not be told from samples: refused."""
    meta, meta_line, label_col = {}, {}, header.index(MSMS)  # labels sit above 'MS/MS spectrum'
    for i in range(h):
        cells = lines[i].split("\t")
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):  # a header that ends the file and is shorter is a file cut short in it
            cut = len(header) < len(cells) and not any(line.strip() for line in lines[h + 1 :])
            where = (f"the file ends in its header (line {h + 1}), cut short after {len(header)} of its fields"
                     if cut else f"the header (line {h + 1}) has {len(header)}")  # fmt: skip
            raise InputFileError(path, f"metadata row has {len(cells)} fields, {where}", line=h + 1 if cut else i + 1)
        first = next(k for k, c in enumerate(cells) if c.strip())
        if first != label_col:  # a shifted row would give every sample its neighbour's type and class
            raise InputFileError(path, f"metadata label '{cells[first].strip()}' is in column {first + 1} (header "
                                 f"'{header[first]}'), not above '{MSMS}' (column {label_col + 1}): the row is shifted "
                                 f"by {first - label_col:+d} cell(s), so every sample would get its neighbour's type "
                                 "and class; re-export, or fix the row", line=i + 1)  # fmt: skip
        meta[cells[first].strip().lower()] = [c.strip() for c in cells]
        meta_line[cells[first].strip().lower()] = i + 1
    type_key = next((k for k in TYPE_LABELS if k in meta), None)
    type_row = meta[type_key] if type_key is not None else None
    class_row = meta.get("class")
    hline = h + 1

    chosen: list[tuple[int, dict[str, str]]] = []
    if type_row is not None:
        type_line, untyped = meta_line[type_key], []
        for j in range(label_col + 1, len(header)):
            t = normalize_type(type_row[j])
            listed = sheet_row(sheet_index, header[j]) if t is None else None
            if listed is not None and listed["type"] and type_row[j].lower() != "na":
                t = ""  # a sheet's type decides for a column the export leaves empty, calls Standard or misspells
            elif t is None and type_row[j].lower() not in SKIPPED_TYPES:  # a typo would drop a sample
                raise InputFileError(
                    path,
                    f"unknown sample type '{type_row[j]}' in the {type_row[label_col]} row (MS-DIAL writes "
                    f"{', '.join(SAMPLE_TYPES)} or Standard; NA columns are summaries): correct the cell, or give "
                    "this column a type in a sample sheet",
                    line=type_line,
                    column=header[j],
                )
            if t is not None:
                chosen.append((j, {"type": t, "class": class_row[j] if class_row else ""}))
            elif not type_row[j] and header[j]:
                untyped.append(header[j])
        if untyped:  # a blanked cell must not lose a sample without a word
            warnings[UNTYPED_WARNING] = len(untyped)
            log.warning("%s: %d column(s) with an empty %s cell (line %d) skipped: %s; give them a type in the "
                        "export or a sample sheet", path, len(untyped), type_row[label_col], type_line,
                        ", ".join(untyped[:5]) + (" ..." if len(untyped) > 5 else ""))  # fmt: skip
    elif sheet_index:
        start = header.index(MSMS) + 1
        chosen = [(j, {"type": "", "class": ""}) for j in range(start, len(header)) if header[j] in sheet_index]
    else:
        raise InputFileError(
            path,
            "no 'File type' or 'Type' row above the header, so sample columns cannot be told from summary "
            "columns; export with metadata rows or give a sample sheet listing the sample columns",
            line=hline,
        )
    if not chosen:
        raise InputFileError(path, "no sample columns (File type Sample, QC or Blank) found", line=hline)
    names = [header[j] for j, _ in chosen]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InputFileError(path, f"duplicate sample column name(s) {dups}", line=hline)
    if any(not n for n in names):
        raise InputFileError(path, "a sample column has an empty name", line=hline)
    return chosen


def _data_rows(path: Path, lines: list[str], h: int, width: int) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` for each non-blank line below the header, checking the field count."""
    rows = []
    for i in range(h + 1, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != width:
            if len(fields) > width and not any(f.strip() for f in fields[width:]):
                fields = fields[:width]
            else:
                raise InputFileError(
                    path,
                    f"has {len(fields)} fields, the header has {width} (truncated line or wrong delimiter?)",
                    line=i + 1,
                )
        rows.append((i + 1, fields))
    return rows
