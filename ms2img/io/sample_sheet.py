"""Optional sample sheet: maps sample columns / raw files to accessions, replicates, types and classes.

CSV with a header; ``sample`` and ``accession`` are required, ``replicate`` (default: the sample name),
``type`` (Sample | QC | Blank, default Sample, any case) and ``class`` (default empty) are optional.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ms2img.errors import InputFileError
from ms2img.io.result import read_text_lines
from ms2img.io.schema import SAMPLE_TYPES

SHEET_COLUMNS = ["sample", "accession", "replicate", "type", "class"]
REQUIRED = ("sample", "accession")
_TYPES = {t.lower(): t for t in SAMPLE_TYPES}
# File extensions stripped when a sheet names a raw file without it (or with it when the data does not).
RAW_EXTENSIONS = (".mzml", ".mzxml", ".mzdata", ".raw", ".d", ".wiff", ".cdf", ".mgf", ".abf")


def normalize_type(value: str) -> str | None:
    """``"sample"`` / ``"QC"`` / ``"BLANK"`` -> the canonical spelling; anything else -> None."""
    return _TYPES.get(str(value).strip().lower())


def strip_raw_extension(name: str) -> str:
    """``"A_01.mzXML"`` -> ``"A_01"``; names without a known raw-file extension are returned unchanged."""
    stem, dot, ext = str(name).rpartition(".")
    return stem if dot and stem and f".{ext.lower()}" in RAW_EXTENSIONS else str(name)


def read_sample_sheet(path: str | Path) -> pd.DataFrame:
    """Read and validate a sample sheet; returns ``SHEET_COLUMNS`` as strings, one row per unique sample."""
    path = Path(path)
    lines = read_text_lines(path)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise InputFileError(path, "file is empty", line=1)
    rows = list(csv.reader(lines[first:]))
    header = [h.strip().lower() for h in rows[0]]
    header_line = first + 1
    if len(header) == 1 and any(d in lines[first] for d in ";\t|"):
        raise InputFileError(path, "header has one column: the sample sheet must be comma-separated", line=header_line)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputFileError(
            path, f"missing column(s) {missing}; expected a header with {SHEET_COLUMNS}", line=header_line
        )
    dup_cols = sorted({h for h in header if h and header.count(h) > 1})
    if dup_cols:
        raise InputFileError(path, f"duplicate column(s) {dup_cols} in the header", line=header_line)
    pos = {c: header.index(c) for c in SHEET_COLUMNS if c in header}

    records, seen, pairs = [], {}, {}
    for k, fields in enumerate(rows[1:], start=1):
        line = header_line + k
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise InputFileError(path, f"has {len(fields)} fields, the header has {len(header)}", line=line)
        rec = {c: fields[i].strip() for c, i in pos.items()}
        for c in REQUIRED:
            if not rec[c]:
                raise InputFileError(path, f"empty {c}", line=line, column=c)
        rec.setdefault("replicate", "")
        rec["replicate"] = rec["replicate"] or rec["sample"]
        raw_type = rec.get("type", "") or "Sample"
        rec["type"] = normalize_type(raw_type)
        if rec["type"] is None:
            raise InputFileError(
                path, f"unknown type '{raw_type}' (expected one of {list(SAMPLE_TYPES)})", line=line, column="type"
            )
        rec.setdefault("class", "")
        if rec["sample"] in seen:
            raise InputFileError(
                path, f"duplicate sample '{rec['sample']}' (first on line {seen[rec['sample']]})", line=line
            )
        seen[rec["sample"]] = line
        pair = (rec["accession"], rec["replicate"])
        if pair in pairs:
            raise InputFileError(
                path, f"accession '{pair[0]}' replicate '{pair[1]}' already used on line {pairs[pair]}", line=line
            )
        pairs[pair] = line
        records.append(rec)
    if not records:
        raise InputFileError(path, "no samples listed below the header", line=header_line)
    return pd.DataFrame(records, columns=SHEET_COLUMNS).astype(str)


def index_sheet(sheet: pd.DataFrame | str | Path | None) -> dict[str, dict[str, str]]:
    """Sheet rows by sample name, also reachable without a raw-file extension (``A_01`` for ``A_01.mzXML``).

    ``sheet`` is what :func:`read_sample_sheet` returns, or a path to read it from.
    """
    if sheet is None:
        return {}
    if isinstance(sheet, (str, Path)):
        sheet = read_sample_sheet(sheet)
    records = sheet.to_dict("records")
    index = {rec["sample"]: rec for rec in records}
    for rec in records:
        index.setdefault(strip_raw_extension(rec["sample"]), rec)
    return index


def resolve(
    index: dict[str, dict[str, str]],
    name: str,
    accession: str,
    replicate: str,
    sample_type: str,
    sample_class: str = "",
) -> dict[str, str]:
    """Manifest fields for sample ``name``: the sheet's values where it lists the sample, else the defaults."""
    rec = index.get(name) or index.get(strip_raw_extension(name))
    if rec is None:
        return {
            "sample": name,
            "accession": accession,
            "replicate": replicate,
            "type": sample_type,
            "class": sample_class,
        }
    return {
        "sample": name,
        "accession": rec["accession"],
        "replicate": rec["replicate"],
        "type": rec["type"],
        "class": rec["class"] or sample_class,
    }
