"""MS-DIAL alignment exports (any version) -> canonical events.

Layout: optional metadata rows above the header (``Class``, ``File type`` or ``Type``, ``Injection order``,
``Batch ID``); their label sits in the column just left of the first sample column. The header starts with
``Alignment ID``. Sample columns are chosen by their type (Sample / QC / Blank); summary columns (type ``NA``,
``Batch ID`` Average / Stdev) are ignored whatever their names. Sample values are heights, 0 = not detected.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.errors import InputFileError
from ms2img.io.msms import parse_msms
from ms2img.io.result import ReadResult, aligned_events, column_to_float, make_manifest, read_text_lines
from ms2img.io.sample_sheet import index_sheet, normalize_type, resolve
from ms2img.io.schema import polarity_from_adduct

log = logging.getLogger(__name__)

ID, MZ, RT, MSMS = "Alignment ID", "Average Mz", "Average Rt(min)", "MS/MS spectrum"
ADDUCT_COLUMNS = ("Adduct type", "Adduct ion name")
TYPE_LABELS = ("file type", "type")
MAX_METADATA_ROWS = 50


def is_msdial_header(line: str) -> bool:
    """True when ``line`` is an MS-DIAL alignment header (used to sniff files)."""
    return line.split("\t", 1)[0].strip().lstrip("\ufeff") == ID


def read_msdial(
    path: str | Path, sample_sheet: pd.DataFrame | str | Path | None = None, accession_from: str = "column"
) -> ReadResult:
    """Read one MS-DIAL alignment export.

    ``accession_from="column"``: each sample column is its own accession (replicate ``"1"``);
    ``"file"``: the file is one accession (its stem) and each sample column a replicate. A sample sheet
    (see :mod:`ms2img.io.sample_sheet`) overrides accession, replicate, type and class per sample column.
    """
    if accession_from not in ("column", "file"):
        raise ValueError(f"accession_from must be 'column' or 'file', not {accession_from!r}")
    path = Path(path)
    lines = read_text_lines(path)
    h = _find_header(path, lines)
    header = [c.strip() for c in lines[h].split("\t")]
    header[0] = header[0].lstrip("\ufeff")
    hline = h + 1
    col = {name: i for i, name in reversed(list(enumerate(header)))}  # first occurrence wins
    for name in (ID, MZ, RT, MSMS):
        if name not in col:
            raise InputFileError(path, f"header lacks the column '{name}'", line=hline)
    adduct_col = next((col[c] for c in ADDUCT_COLUMNS if c in col), None)

    sheet_index = index_sheet(sample_sheet)
    samples = _select_samples(path, lines, h, header, sheet_index)
    rows = _data_rows(path, lines, h, len(header))
    if not rows:
        raise InputFileError(path, "no data rows below the header", line=hline)
    line_no = np.fromiter((n for n, _ in rows), dtype=np.int64, count=len(rows))
    fields = [f for _, f in rows]

    ids = np.array([f[col[ID]].strip() for f in fields], dtype=object)
    empty_id = np.flatnonzero(ids == "")
    if len(empty_id):
        raise InputFileError(path, "empty Alignment ID", line=int(line_no[empty_id[0]]), column=ID)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputFileError(path, f"duplicate Alignment ID '{ids[i]}'", line=int(line_no[i]), column=ID)
    mz = column_to_float([f[col[MZ]] for f in fields], path, line_no, MZ, positive=True)
    rt = column_to_float([f[col[RT]] for f in fields], path, line_no, RT, minimum=0.0)
    polarity = np.array(
        [polarity_from_adduct(f[adduct_col].strip()) if adduct_col is not None else "unknown" for f in fields],
        dtype=object,
    )
    spectra = [parse_msms(f[col[MSMS]], path, int(n), MSMS) for n, f in zip(line_no, fields, strict=True)]

    names = [header[j] for j, _ in samples]
    heights = column_to_float(
        [[f[j] for j, _ in samples] for f in fields],
        path,
        np.repeat(line_no, len(samples)),
        np.tile(np.array(names, dtype=object), len(rows)),
        missing=0.0,
        minimum=0.0,
    ).reshape(len(rows), len(samples))

    manifest = []
    for j, meta in samples:
        name = header[j]
        acc, rep = (name, "1") if accession_from == "column" else (path.stem, name)
        manifest.append({**resolve(sheet_index, name, acc, rep, meta["type"], meta["class"]), "source": str(path)})
    events = aligned_events(
        feature_id=ids,
        precursor_mz=mz,
        rt_min=rt,
        polarity=polarity,
        spectra=spectra,
        heights=heights,
        accessions=[m["accession"] for m in manifest],
        replicates=[m["replicate"] for m in manifest],
    )
    no_msms = int(sum(len(s[0]) == 0 for s in spectra))
    return ReadResult(events=events, samples=make_manifest(manifest), source=path, precursors_without_msms=no_msms)


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
    raise InputFileError(
        path,
        f"no header row starting with '{ID}' in the first {MAX_METADATA_ROWS + 1} lines "
        "(is this an MS-DIAL alignment export?)",
        line=1,
    )


def _select_samples(
    path: Path, lines: list[str], h: int, header: list[str], sheet_index: dict
) -> list[tuple[int, dict[str, str]]]:
    """``(column index, {"type", "class"})`` for each sample column, chosen by the File type / Type row.

    Without a type row the sample sheet decides (columns it lists); without either, the file is rejected
    because summary columns could not be told from samples.
    """
    label_col, meta = None, {}
    for i in range(h):
        cells = lines[i].split("\t")
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise InputFileError(
                path, f"metadata row has {len(cells)} fields, the header (line {h + 1}) has {len(header)}", line=i + 1
            )
        first = next(k for k, c in enumerate(cells) if c.strip())
        if label_col is not None and first != label_col:
            raise InputFileError(path, "metadata label is not in the same column as on the rows above", line=i + 1)
        label_col = first
        meta[cells[first].strip().lower()] = [c.strip() for c in cells]
    type_row = next((meta[k] for k in TYPE_LABELS if k in meta), None)
    class_row = meta.get("class")
    hline = h + 1

    chosen: list[tuple[int, dict[str, str]]] = []
    if type_row is not None:
        ignored = set()
        for j in range(label_col + 1, len(header)):
            t = normalize_type(type_row[j])
            if t is None:
                ignored.add(type_row[j] or "<empty>")
                continue
            chosen.append((j, {"type": t, "class": class_row[j] if class_row else ""}))
        if ignored:
            log.debug("%s: ignoring columns of type %s (summaries / standards)", path, sorted(ignored))
    elif sheet_index:
        start = header.index(MSMS) + 1
        chosen = [(j, {"type": "Sample", "class": ""}) for j in range(start, len(header)) if header[j] in sheet_index]
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
