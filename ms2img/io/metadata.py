"""Sample metadata tables of the GNPS/FBMN world, read as a sample sheet (plus activity values when present).

* GNPS / FBMN metadata: tab- (or comma-) separated, ``filename`` plus ``ATTRIBUTE_<name>`` columns.
* FERMO group metadata: ``sample_name, attribute`` (the attribute is the group; ``BLANK`` marks blanks).

Accession = file name without its raw-file extension, replicate ``1``. Type: a ``SampleType`` / ``type``
attribute when there is one (values containing ``blank`` -> Blank, ``qc`` or ``pool`` -> QC, else Sample);
otherwise a group attribute equal to ``blank`` marks blanks. Class: the ``class`` / ``group`` attribute (else the
first text attribute). Numeric attributes whose name contains ``activ`` are assays (``ReadResult.activity``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.errors import InputFileError
from ms2img.io.sample_sheet import SHEET_COLUMNS, strip_raw_extension
from ms2img.io.text import MISSING_CELLS, column_to_float, csv_rows, header_delimiter, read_text_lines

NAME_COLUMNS = ("filename", "sample_name", "sample name", "sample")
TYPE_ATTRIBUTES = ("sampletype", "sample_type", "type")
CLASS_ATTRIBUTES = ("class", "group", "attribute")


NUMBER_LIKE = re.compile(r"[+-]?[\d.,]*\d[\d.,]*(?:[eE][+-]?\d+)?")  # 12.5, 1e3, and 4,5 or 3,000 (refused later)


def _attribute(name: str) -> str:
    return re.sub(r"(?i)^attribute_", "", name.strip()).lower()


def _type_of(value: str) -> str:
    """A metadata type cell as a sample type; "" for an empty cell (the input's own type decides)."""
    v = value.strip().lower()
    if not v:
        return ""
    if "blank" in v:
        return "Blank"
    if v == "qc" or "qc" in re.split(r"[^a-z0-9]+", v) or "pool" in v:
        return "QC"
    return "Sample"


def side_table(header: str) -> tuple[str, str] | None:
    """``(kind, what it is and where it goes)`` of a table that sits beside LC-MS/MS data in a lab's folder, from
    its header line: kind ``activity`` (FERMO's ``sample_name, quant_data``), ``metadata`` (FERMO groups, GNPS/FBMN
    ``filename`` + ``ATTRIBUTE_*``), ``request``, ``assays`` or ``sheet`` (ms2img's own); None for any other header.
    Such tables would otherwise read as a quant CSV."""
    cells = [c.strip().strip('"').lower() for c in header.lstrip("\ufeff").replace("\t", ",").split(",")]
    if cells[:2] == ["sample_name", "quant_data"]:
        return "activity", (
            "a FERMO activity table (sample_name, quant_data): it goes to "
            "`ms2img explain --assay NAME --method correlation --assays FILE`"
        )
    if cells[:2] == ["sample_name", "attribute"] or (
        "filename" in cells and any(c.startswith("attribute_") for c in cells)
    ):
        return "metadata", (
            "a sample metadata table (FERMO groups or GNPS/FBMN ATTRIBUTE_ columns): it goes to "
            "`ms2img ingest --metadata FILE`"
        )
    beside = "it goes beside the exports folder, as data/raw/{} in a project (`ms2img {}`)"
    if cells[0] == "accession" and {"precursor_mz", "msms"} <= set(cells):  # ms2img.serving.request.REQUEST_COLUMNS
        return "request", "a serving request (`ms2img request`): it goes to a served model, not into training"
    if cells[0] == "accession":
        return "assays", "an assay table: " + beside.format("assays.csv", "validate --assays FILE")
    if cells[:2] == ["sample", "accession"]:
        return "sheet", "a sample sheet: " + beside.format("sample_sheet.csv", "ingest --sample-sheet FILE")
    return None


def read_sample_metadata(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``(sample sheet with SHEET_COLUMNS, activity or None)``; errors name the file and line."""
    path = Path(path)
    lines = read_text_lines(path)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise InputFileError(path, "file is empty", line=1)
    delimiter = header_delimiter(path, lines[first], first + 1)
    rows = csv_rows(path, lines[first:], first + 1, delimiter)
    header = [h.strip().lstrip("\ufeff") for h in rows[0]]
    header_line = first + 1
    lower = [h.lower() for h in header]
    name_j = next((lower.index(c) for c in NAME_COLUMNS if c in lower), None)
    if name_j is None:
        raise InputFileError(
            path, f"no sample column: expected one of {list(NAME_COLUMNS)} (GNPS 'filename' or FERMO)", line=header_line
        )
    side = side_table(lines[first])
    if side and side[0] == "activity":
        raise InputFileError(
            path, f"{side[1]}; it is not sample metadata (FERMO's is sample_name, attribute)", line=header_line
        )
    attrs = {j: _attribute(h) for j, h in enumerate(header) if j != name_j and h}
    records, line_no = [], []
    for k, fields in enumerate(rows[1:], start=1):
        if not any(f.strip() for f in fields):
            continue
        fields = [f.strip() for f in fields] + [""] * (len(header) - len(fields))
        if len(fields) > len(header) and any(fields[len(header) :]):
            raise InputFileError(path, f"{len(fields)} fields but the header has {len(header)}", line=header_line + k)
        if not fields[name_j]:
            raise InputFileError(path, "empty sample name", line=header_line + k, column=header[name_j])
        records.append(fields[: len(header)])
        line_no.append(header_line + k)
    if not records:
        raise InputFileError(path, "no samples listed below the header", line=header_line)
    names = [r[name_j] for r in records]
    stems = [strip_raw_extension(n) for n in names]  # a.mzML and a.mzXML: one sample, two rows
    dups = sorted({n for n in stems if stems.count(n) > 1})
    if dups:
        first = stems.index(dups[0])
        again = stems.index(dups[0], first + 1)
        raise InputFileError(
            path,
            f"duplicate sample(s) {dups[:5]} ('{records[first][name_j]}' on line {line_no[first]})",
            line=line_no[again],
        )
    lines_arr = np.array(line_no, dtype=np.int64)

    def numeric(j: int) -> bool:  # half the values are numbers as written (a stray #N/A or 4,5 is refused on its line)
        vals = [r[j] for r in records if r[j].lower() not in MISSING_CELLS]
        return bool(vals) and 2 * sum(bool(NUMBER_LIKE.fullmatch(v)) for v in vals) >= len(vals)

    type_j = next((j for j, a in attrs.items() if a in TYPE_ATTRIBUTES), None)
    class_j = next((j for c in CLASS_ATTRIBUTES for j, a in attrs.items() if a == c), None)
    if class_j is None:
        class_j = next((j for j in attrs if j != type_j and not numeric(j)), None)
    # NA reads as not measured; one "#N/A" made the whole column silently stop being an assay; G1/G2 is a class
    activity_cols = [j for j, a in attrs.items() if "activ" in a and numeric(j)]

    sheet = pd.DataFrame(
        {
            "sample": names,
            "accession": [strip_raw_extension(n) for n in names],
            "replicate": ["1"] * len(names),
            "type": [
                _type_of(r[type_j])
                if type_j is not None
                else ("Blank" if class_j is not None and r[class_j].lower() == "blank" else "")  # "": input's own
                for r in records
            ],
            "class": [r[class_j] if class_j is not None else "" for r in records],
        },
        columns=SHEET_COLUMNS,
    ).astype(str)
    activity = None
    if activity_cols:
        activity = pd.DataFrame({"sample": names})
        for j in activity_cols:
            activity[re.sub(r"(?i)^attribute_", "", header[j])] = column_to_float(
                [r[j] for r in records], path, lines_arr, header[j], missing=np.nan
            )
    return sheet, activity
