"""How assays.csv is read: one reader behind both the checks (``validation.assays``) and training
(``training.labels.read_assays``), so the two cannot disagree on what a header or a cell says."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.errors import InputFileError
from ms2img.io.text import MISSING_CELLS, NUMBER_TEXT, read_text_lines, refuse_other_separator

FINITE_NUMBER_REGEX = rf"^{NUMBER_TEXT}$"  # an assay cell that is a number (GX's regex check and cell_numbers)


def read_csv_strings(path: str | Path) -> pd.DataFrame:
    """Read assays.csv as stripped strings, indexed by the line number an editor shows.

    An empty cell or a word for none (``NA``, ``n/a``, ``NaN``, ``null``, ``none``: ``io.text.MISSING_CELLS``) is None
    (not measured); nothing else is coerced, so a cell like ``1,5`` reaches the checks as written and is reported on
    its line. A header cell ``Accession`` in any case is ``accession``; two columns whose names differ only in case
    fail, and so does a row with more or fewer fields than the header. Blank lines are skipped but still counted.
    """
    path = Path(path)
    text = read_text_lines(path)  # UTF-8 (BOM or not), else Windows-1252; binary or UTF-16 fails naming the line
    if any("\r" in line for line in text):  # Excel for Mac's "CSV (Macintosh)" ends lines with a lone CR
        text = [piece for line in text for piece in line.split("\r")]
    records: list[list[str | None]] = []
    lines: list[int] = []
    header: list[str] | None = None
    try:
        # each line given back its end: a quoted cell spanning lines keeps its line break ("two\nlines", not
        # "twolines"), so an unclosed quote shows as the lines it swallowed; line_num is the row's last line
        reader = csv.reader(f"{line}\n" for line in text)
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            if header is None:
                if len(fields) == 1:
                    refuse_other_separator(path, fields[0], reader.line_num)
                header = [f.strip() for f in fields]
                if "" in header:  # a spreadsheet's trailing comma: the checks cannot name the column
                    raise InputFileError(
                        path,
                        f"column {header.index('') + 1} of the header has no name (a trailing comma?); "
                        "name it or delete it",
                        line=reader.line_num,
                    )
                header = ["accession" if h.casefold() == "accession" else h for h in header]
                folded = [h.casefold() for h in header]
                dupes = sorted({h for h in header if folded.count(h.casefold()) > 1})
                if dupes:
                    raise InputFileError(path, f"duplicate column names {dupes}", line=reader.line_num)
                continue
            if len(fields) != len(header):  # a cut-off row would lose values silently: a spreadsheet writes every comma
                said = f"{len(fields)} fields but the header has {len(header)}"
                if len(fields) < len(header):
                    said += " (a row cut short? an assay not measured is an empty field: 'S1,1.5,')"
                raise InputFileError(path, said, line=reader.line_num)
            cells = [f.strip() or None for f in fields]
            cells = [None if c is not None and c.casefold() in MISSING_CELLS else c for c in cells]
            records.append(cells)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise InputFileError(path, f"not valid CSV ({exc})", line=reader.line_num) from None
    if header is None:
        raise InputFileError(path, "empty file (expected a header line: accession, assay columns)")
    if not records:  # validate passed a header alone that training refused
        raise InputFileError(path, "no data rows below the header", line=2)
    return pd.DataFrame(records, columns=header, index=pd.Index(lines, dtype="int64"), dtype=object)


def cell_numbers(cells: pd.Series) -> np.ndarray:
    """float64 of the cells written as numbers; NaN for the others (empty, ``n/a``, ``inf``: other checks')."""
    numeric = cells.notna() & cells.astype(str).str.fullmatch(FINITE_NUMBER_REGEX)
    return pd.to_numeric(cells.where(numeric), errors="coerce").to_numpy(np.float64)


def default_assay_columns(header: Sequence[str]) -> list[str]:
    """The assay columns when none are named: every column but ``accession``, and, when ``accession`` is missing,
    but the column that is a misspelt ``accession`` (``acession``: its missing-column failure names it; read as an
    assay too it added a second, noise failure on every accession name)."""
    import difflib

    columns = [str(c) for c in header]
    misspelt = [] if "accession" in columns else difflib.get_close_matches("accession", columns, n=1, cutoff=0.8)
    return [c for c in columns if c != "accession" and c not in misspelt]
