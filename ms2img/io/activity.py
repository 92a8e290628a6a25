"""One assay's raw activity per accession, from any activity layout the correlation route accepts.

Why a reader of its own: ``ms2img ingest --assays-out`` already turns the activity rows and columns of
bioactivity-guided exports (the BMN ``Bioactivity...`` row, Optimus activity columns, GNPS ``ATTRIBUTE_*activ*``
metadata) into ``assays.csv``, but FERMO keeps its activities in a separate ``sample_name, quant_data`` file that
lists the active samples only. The correlation route reads all of these directly, so no file is rewritten by hand:

* ``assays.csv``: ``accession`` plus one column per assay (:func:`ms2img.training.labels.read_assays`);
* FERMO: ``sample_name, quant_data`` (one activity; samples not listed were inactive);
* GNPS / FBMN metadata: ``filename`` plus numeric ``ATTRIBUTE_*activ*`` columns (:mod:`ms2img.io.metadata`).

Sample names become accessions as ingest makes them (the raw-file extension dropped).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.errors import ConfigError, InputFileError
from ms2img.io.sample_sheet import strip_raw_extension
from ms2img.io.text import column_to_float, csv_rows, header_delimiter, read_text_lines

log = logging.getLogger(__name__)

FERMO_COLUMNS = ("sample_name", "quant_data")


def _header(path: Path) -> tuple[list[str], int, list[str]]:
    """(lower-cased header fields, its 1-based line, the file's lines)."""
    lines = read_text_lines(path)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise InputFileError(path, "file is empty", line=1)
    header = csv_rows(path, [lines[first]], first + 1, header_delimiter(path, lines[first], first + 1))[0]
    return [h.strip().lstrip("\ufeff").lower() for h in header], first + 1, lines


def _layout(header: list[str]) -> str:
    """Which activity layout a (lower-cased) header is: "fermo", "assays" (``accession`` + assay columns) or
    "metadata" (GNPS/FBMN ``filename`` + ``ATTRIBUTE_*`` columns): one rule for reading and for naming rows."""
    if all(c in header for c in FERMO_COLUMNS):
        return "fermo"
    return "assays" if "accession" in header else "metadata"


def read_fermo_activity(path: str | Path) -> pd.Series:
    """FERMO's ``sample_name, quant_data`` file -> activity per accession (only the samples it lists)."""
    path = Path(path)
    header, header_line, lines = _header(path)
    delimiter = header_delimiter(path, lines[header_line - 1], header_line)
    name_j, value_j = header.index(FERMO_COLUMNS[0]), header.index(FERMO_COLUMNS[1])
    names, cells, line_no = [], [], []
    for k, fields in enumerate(csv_rows(path, lines[header_line:], header_line + 1, delimiter), start=header_line + 1):
        if not any(f.strip() for f in fields):
            continue
        fields = [f.strip() for f in fields] + [""] * (len(header) - len(fields))
        if not fields[name_j]:
            raise InputFileError(path, "empty sample name", line=k, column="sample_name")
        names.append(fields[name_j])
        cells.append(fields[value_j])
        line_no.append(k)
    if not names:
        raise InputFileError(path, "no samples listed below the header", line=header_line)
    values = column_to_float(cells, path, np.array(line_no, dtype=np.int64), "quant_data", missing=np.nan)
    acc = [strip_raw_extension(n) for n in names]
    seen: dict[str, int] = {}
    for a, ln in zip(acc, line_no, strict=True):
        if a in seen:
            raise InputFileError(path, f"sample '{a}' is listed twice (lines {seen[a]} and {ln})", line=ln)
        seen[a] = ln
    return pd.Series(values, index=pd.Index(acc, name="accession"), dtype="float64")


def read_activity(path: str | Path, assay: str) -> pd.Series:
    """Raw values of ``assay`` per accession (NaN: not measured), whatever the layout (module docstring).

    A FERMO file holds one activity and serves whatever ``assay`` is asked for; the other layouts must have a
    column of that name (case-insensitive, an ``ATTRIBUTE_`` or ``Bioactivity`` prefix ignored).
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "activity file not found")
    header, header_line, _ = _header(path)
    layout = _layout(header)
    if layout == "fermo":
        return read_fermo_activity(path).rename(assay)
    if layout == "assays":
        from ms2img.training.labels import read_assays

        table = read_assays(path).set_index("accession")
    else:
        from ms2img.io.metadata import read_sample_metadata

        _, activity = read_sample_metadata(path)
        if activity is None:
            raise InputFileError(
                path,
                "no activity: expected 'accession' + assay columns (assays.csv), FERMO 'sample_name, quant_data', "
                "or GNPS metadata with numeric ATTRIBUTE_...activ... columns",
                line=header_line,
            )
        activity = activity.assign(accession=activity["sample"].map(strip_raw_extension))
        table = activity.drop(columns="sample").groupby("accession", sort=False).mean()
    column = _match_column(list(table.columns), assay)
    if column is None:
        raise ConfigError(f"unknown assay '{assay}'; {path} has: {', '.join(map(str, table.columns))}")
    out = table[column].astype("float64").rename(assay)
    out.index = out.index.astype(str).rename("accession")
    return out


def _match_column(columns: list[str], assay: str) -> str | None:
    """The column that names ``assay``: exact, then case-insensitive without ATTRIBUTE_/Bioactivity prefixes."""
    if assay in columns:
        return assay
    from ms2img.io.fbmn import assay_name

    def key(name: str) -> str:
        name = str(name).strip()
        if name.lower().startswith("attribute_"):
            name = name[len("attribute_") :]
        return assay_name(name).lower()

    want = key(assay)
    hits = [c for c in columns if key(c) == want]
    return hits[0] if len(hits) == 1 else None


def activity_lines(path: str | Path) -> dict[str, int]:
    """Accession -> 1-based line of its row in an activity file of any layout, so an error can point at the row.

    The sample column is found as :func:`read_activity` finds it (``accession``, FERMO ``sample_name``, GNPS
    ``filename`` ...); names become accessions the same way (the raw-file extension dropped, except in
    ``assays.csv``, whose accessions are taken as written). Only the first line of a name is kept.
    """
    from ms2img.io.metadata import NAME_COLUMNS

    path = Path(path)
    header, header_line, lines = _header(path)
    as_written = _layout(header) == "assays"
    name = "accession" if as_written else next((c for c in (FERMO_COLUMNS[0], *NAME_COLUMNS) if c in header), None)
    if name is None:
        return {}
    j = header.index(name)
    delimiter = header_delimiter(path, lines[header_line - 1], header_line)
    out: dict[str, int] = {}
    for k, fields in enumerate(csv_rows(path, lines[header_line:], header_line + 1, delimiter), start=header_line + 1):
        cell = fields[j].strip() if j < len(fields) else ""
        if cell:
            out.setdefault(cell if as_written else strip_raw_extension(cell), k)
    return out


def check_activity_names(
    activity: pd.Series, accessions: list[str], *, known: list[str] | None = None, source: str | Path = ""
) -> None:
    """Fail on a row of the activity file that names no sample of the events (a typo, another project's sample).

    Such a row would otherwise be dropped without a word, and with ``--absent-as-zero`` the sample it meant would
    count as inactive: a misspelt active reorders the whole ranking. ``known`` adds the other samples ingest listed
    (blanks have no events file but a GNPS metadata table lists them). The error names the lines of the first few
    unmatched rows and the first few accessions the events hold.
    """
    have = set(accessions) | set(known or ())
    unmatched = [str(a) for a in activity.index if str(a) not in have]
    if not unmatched:
        return
    if source and Path(source).is_file() and _layout(_header(Path(source))[0]) == "metadata":
        # a GNPS/FBMN metadata table lists every run of a study (the other ion mode, runs not ingested), as ingest
        # allows (sample_sheet.unmatched_rows): counted, not refused
        log.warning("%s: %d metadata row(s) name no sample of the events: %s", source, len(unmatched), unmatched[:5])
        return
    import difflib

    lines = activity_lines(source) if source and Path(source).is_file() else {}
    unmatched.sort(key=lambda a: lines.get(a, 0))
    shown = []
    for a in unmatched[:3]:
        close = difflib.get_close_matches(a, accessions, n=1, cutoff=0.8)
        where = f"line {lines[a]} " if a in lines else ""
        shown.append(f"{where}'{a}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    more = f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else ""
    rows = "row names" if len(unmatched) == 1 else "rows name"
    problem = (
        f"{len(unmatched)} activity {rows} no sample of the events: {', '.join(shown)}{more}; the events hold "
        f"{', '.join(accessions[:5])}{', ...' if len(accessions) > 5 else ''} ({len(accessions)} samples). "
        "Fix the sample names (--absent-as-zero fills only samples the file does not list)"
    )
    first = lines.get(unmatched[0])
    if source:
        raise InputFileError(source, problem, line=first)
    raise ConfigError(problem)


def align_activity(
    activity: pd.Series,
    accessions: list[str],
    *,
    absent_as_zero: bool = False,
    source: str | Path = "",
    known: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(positions in ``accessions`` with a value, their values); absent accessions count as 0 when asked.

    Only accessions missing from the activity file are filled: an empty cell (not measured) stays out. A row of
    the file naming no sample of the events (nor of ``known``) is an error (:func:`check_activity_names`), never a
    silent drop: ``--absent-as-zero`` is for samples the file leaves out, not for names it gets wrong.
    """
    check_activity_names(activity, accessions, known=known, source=source)
    values = activity.reindex(accessions)
    if absent_as_zero:
        values[~pd.Index(accessions).isin(activity.index)] = 0.0
    keep = np.flatnonzero(values.notna().to_numpy())
    if keep.size == 0:
        listed = ", ".join(map(str, activity.index[:3]))
        raise ConfigError(
            f"{source}: no accession of the events has a '{activity.name}' value (the file lists {listed}...; "
            f"the events hold {', '.join(accessions[:3])}...)"
        )
    return keep, values.to_numpy(dtype=np.float64)[keep]
