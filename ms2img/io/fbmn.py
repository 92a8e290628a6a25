"""MZmine / GNPS FBMN pair -> canonical events: a quantification CSV joined to an MGF by feature id.

Quant table: MZmine 3 full export (``id``, ``mz``, ``rt``, ``datafile:<file>:height``) or the GNPS-style
MZmine 2 export (``row ID``, ``row m/z``, ``row retention time``, ``<file> Peak height`` / ``Peak area``).
MGF: one MS2 spectrum per feature, ``FEATURE_ID`` (or ``SCANS``) equal to the table's id; read by pyteomics.
Empty heights mean not detected. All samples are type Sample unless a sample sheet says otherwise.

The join checks itself: the table's m/z and the MGF's ``PEPMASS`` must agree for every joined feature (an MGF of
another processing joins by id to different compounds), and the table's RT unit is read off the MGF's
``RTINSECONDS`` (or, without it, off the values). Precursor charge comes from the table's ``charge`` column, else
the MGF's ``CHARGE``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.errors import InputFileError
from ms2img.io.mgf import MgfSpectrum, read_mgf
from ms2img.io.result import ReadResult, aligned_table, flatten_spectra, make_manifest
from ms2img.io.sample_sheet import index_sheet, resolve, strip_raw_extension
from ms2img.io.schema import CHARGE_CELL, MAX_INTENSITY, charge_from_text
from ms2img.io.text import column_to_float, read_text_lines, refuse_other_separator

# Table m/z and MGF PEPMASS of one feature are written from the same feature list (equal to the 4 decimals
# written); 0.02 Da also lets through a PEPMASS taken from the MS2 scan's isolation m/z (<= 10 ppm at m/z 2000),
# while the MGF of another processing disagrees by whole Daltons (a different feature, or its 13C isotope).
MISSING_SPECTRA_SHARE = 0.1  # quant rows without an MGF spectrum beyond this share are reported
JOIN_MZ_TOL_DA = 0.02
RT_UNITS = ("auto", "minutes", "seconds")
# Without an MGF RT to compare with: a table RT above this cannot be minutes of an LC-MS run (2 h).
SHORTEST_RUN_S = 60.0  # table and MGF RT equal and all below this: minutes in both, not seconds
RT_SECONDS_ABOVE = 120.0

# (id, m/z, RT in minutes) column names and sample-column patterns, preferred first.
LAYOUTS = (
    (("id", "mz", "rt"), (re.compile(r"^datafile:(.+):height$"), re.compile(r"^datafile:(.+):area$"))),
    (
        ("row ID", "row m/z", "row retention time"),
        (re.compile(r"^(.+) Peak height$"), re.compile(r"^(.+) Peak area$")),
    ),
)
_EMPTY = np.empty(0, dtype=np.float64)


def is_quant_header(line: str) -> bool:
    """True when ``line`` looks like an MZmine quant table header (used to sniff files)."""
    first = next(csv.reader([line]), [""])
    return bool(first) and first[0].strip().lstrip("\ufeff") in ("id", "row ID")


@dataclass
class _Table:
    """An aligned feature table: what :func:`assemble` joins to the MGF."""

    source: Path
    ids: np.ndarray
    mz: np.ndarray
    rt: np.ndarray  # as written; assemble decides the unit
    names: list[str]
    heights: np.ndarray
    activity: pd.DataFrame | None = None
    charge: np.ndarray | None = None  # per feature, 0 = unknown
    lines: np.ndarray | None = None  # line of each feature (for the join error)
    rt_column: str = "rt"
    rt_unit: str = "auto"  # what the layout says: auto (decide), minutes or seconds


def read_fbmn(
    quant_csv: str | Path,
    mgf: str | Path,
    sample_sheet: pd.DataFrame | str | Path | None = None,
    *,
    join_mz_tol_da: float = JOIN_MZ_TOL_DA,
    rt_unit: str = "auto",
) -> ReadResult:
    """Read a quant table + MGF pair; features without a spectrum give no rows (counted).

    Bioactivity-guided tables (GNPS Bioactive Molecular Networking): data rows at the top whose id cell is a
    name (``BioactivityCHIKV``) with empty m/z and RT are activity rows, one value per sample column; they
    become ``ReadResult.activity`` (``sample`` + one column per assay, the ``Bioactivity`` prefix dropped).
    ``rt_unit``: ``auto`` (decided from the MGF's RT, else the values), ``minutes`` or ``seconds``.
    """
    quant_csv, mgf = Path(quant_csv), Path(mgf)
    table = _read_quant(quant_csv)
    if rt_unit != "auto":
        table.rt_unit = rt_unit
    return assemble(table, mgf, sample_sheet, join_mz_tol_da=join_mz_tol_da)


def assemble(
    quant: _Table,
    mgf: Path,
    sample_sheet: pd.DataFrame | str | Path | None,
    *,
    join_mz_tol_da: float = JOIN_MZ_TOL_DA,
) -> ReadResult:
    """An aligned feature table (features x samples) + its MGF -> ReadResult, after checking the join (m/z
    agreement) and deciding the table's RT unit."""
    if quant.rt_unit not in RT_UNITS:
        raise ValueError(f"rt_unit must be one of {RT_UNITS}, got {quant.rt_unit!r}")
    source, ids = quant.source, quant.ids
    spectra_by_id = read_mgf(mgf)
    joined = [spectra_by_id.get(fid) for fid in ids]
    if spectra_by_id and not any(s is not None for s in joined):
        whole = np.array([re.sub(r"^(\d+)\.0+$", r"\1", str(f)) for f in ids], dtype=object)  # 1.0: a table re-saved
        joined = [spectra_by_id.get(fid) for fid in whole]  # by pandas wrote its integer ids as floats
        if not any(s is not None for s in joined):
            raise InputFileError(source, f"none of its {len(ids)} feature ids (e.g. '{ids[0]}') is a FEATURE_ID or "
                                 f"SCANS of {mgf} (e.g. '{next(iter(spectra_by_id))}'): is that this table's MGF?",
                                 line=1)  # fmt: skip
        ids = whole
    _check_join_mz(quant, mgf, joined, join_mz_tol_da)
    rt_min, rt_said = _rt_minutes(quant, joined)
    spectra, polarity = [], []
    charge = np.zeros(len(ids), dtype=np.int64) if quant.charge is None else quant.charge.astype(np.int64)
    for k, spec in enumerate(joined):
        if spec is None:
            spectra.append((_EMPTY, _EMPTY))
            polarity.append("unknown")
            continue
        spectra.append((spec.mz, spec.intensity))
        polarity.append(spec.polarity)
        if charge[k] <= 0:
            charge[k] = spec.charge
    sheet_index = index_sheet(sample_sheet)
    manifest = [
        {**resolve(sheet_index, name, strip_raw_extension(name), "1", "Sample"), "source": str(source)}
        for name in quant.names
    ]
    feat, frag_mz, frag_int = flatten_spectra(spectra)
    table, sample_of_row = aligned_table(
        feature_id=ids,
        precursor_mz=quant.mz,
        rt_min=rt_min,
        polarity=np.array(polarity, dtype=object),
        fragment_feature=feat,
        fragment_mz=frag_mz,
        fragment_intensity=frag_int,
        heights=quant.heights,
        accessions=[m["accession"] for m in manifest],
        replicates=[m["replicate"] for m in manifest],
        charge=charge,
    )
    unmatched = len(set(spectra_by_id) - set(ids))
    warnings = {"MGF spectra without a quant-table row": unmatched} if unmatched else {}
    unchecked = sum(spec is not None and spec.pepmass is None for spec in joined)
    if unchecked:  # the join's m/z check needs PEPMASS: without it an MGF of another processing joins silently
        warnings[f"joined spectra without PEPMASS in {mgf.name} (m/z not checked against the table)"] = unchecked
    missing = sum(spec is None for spec in joined)
    if missing >= 10 and missing > MISSING_SPECTRA_SHARE * len(ids):  # a few without MS/MS are normal, many are not
        warnings[f"quant-table features with no spectrum in {mgf.name} (over {MISSING_SPECTRA_SHARE:.0%}: is it this "
                 "table's whole MGF?)"] = missing  # fmt: skip
    return ReadResult(
        events=table,
        samples=make_manifest(manifest),
        source=source,
        precursors_without_msms=int(sum(len(s[0]) == 0 for s in spectra)),
        undetected_cells=int(np.count_nonzero(~(quant.heights > 0))),
        warnings=warnings,
        sample_of_row=sample_of_row,
        activity=quant.activity,
        rt_unit=rt_said,
    )


def _check_join_mz(quant: _Table, mgf: Path, joined: list[MgfSpectrum | None], tol: float) -> None:
    """Every joined feature's table m/z must match its MGF PEPMASS within ``tol`` Da: one line naming the
    features, both values and the largest difference otherwise."""
    if not tol >= 0:
        raise ValueError(f"join m/z tolerance must be >= 0, got {tol}")
    k = np.array([i for i, s in enumerate(joined) if s is not None and s.pepmass is not None], dtype=np.int64)
    if not len(k):
        return
    pep = np.array([joined[i].pepmass for i in k], dtype=np.float64)
    diff = np.abs(pep - quant.mz[k])
    bad = np.flatnonzero(~(diff <= tol))
    if not len(bad):
        return
    shown = ", ".join(
        f"feature {quant.ids[k[b]]}: {quant.mz[k[b]]:.4f} vs PEPMASS {pep[b]:.4f} (MGF line {joined[k[b]].line})"
        for b in bad[:3]
    )
    first = int(k[bad[0]])
    line = int(quant.lines[first]) if quant.lines is not None else None
    raise InputFileError(
        quant.source,
        f"precursor m/z disagrees with {mgf} for {len(bad)} of {len(k)} joined features by more than {tol:g} Da "
        f"(ingest.join_mz_tol_da), up to {float(diff[bad].max()):.4g} Da: {shown}"
        f"{' ...' if len(bad) > 3 else ''}; is the MGF from another processing? Pair the table with the MGF "
        "exported with it",
        line=line,
    )


def _rt_minutes(quant: _Table, joined: list[MgfSpectrum | None]) -> tuple[np.ndarray, str]:
    """The table's RT in minutes, and how its unit was decided (for the ingest printout).

    ``auto``: the MGF's RT of the joined spectra says (table RT / MGF seconds near 1/60: minutes, near 1:
    seconds); without MGF RTs, values above ``RT_SECONDS_ABOVE`` are seconds.
    """
    rt, col = quant.rt, quant.rt_column
    top = float(rt.max()) if len(rt) else 0.0
    if quant.rt_unit == "minutes":
        return rt, f"minutes ('{col}', as the layout or ingest.rt_unit says)"
    if quant.rt_unit == "seconds":
        return rt / 60.0, f"seconds ('{col}', as the layout or ingest.rt_unit says), converted to minutes"
    pairs = [(rt[i], s.rt_s) for i, s in enumerate(joined) if s is not None and s.rt_s and s.rt_s > 0 and rt[i] > 0]
    if len(pairs) >= 3:
        ratio = float(np.median([a / b for a, b in pairs]))
        if 1 / 90 < ratio < 1 / 40:
            return rt, f"minutes ('{col}' = the MGF's RT in seconds / 60 for {len(pairs)} features)"
        if 0.67 < ratio < 1.5 and top < SHORTEST_RUN_S:  # 'RTINSECONDS' written in minutes: a run of seconds
            return rt, (
                f"minutes ('{col}' = the MGF's RTINSECONDS for {len(pairs)} features, but up to {top:.4g}: no LC-MS "
                f"run lasts under {SHORTEST_RUN_S:g} seconds, so both are minutes); set ingest.rt_unit if that is wrong"
            )
        if 0.67 < ratio < 1.5:
            return rt / 60.0, (
                f"seconds ('{col}' = the MGF's RT in seconds for {len(pairs)} features), converted to minutes"
            )
    if top > RT_SECONDS_ABOVE:
        return rt / 60.0, (
            f"seconds ('{col}' up to {top:.4g}: no LC-MS run lasts {RT_SECONDS_ABOVE:g}+ minutes), converted to "
            "minutes; set ingest.rt_unit if that is wrong"
        )
    return rt, f"minutes ('{col}' up to {top:.4g}); set ingest.rt_unit if that is wrong"


def assay_name(label: str) -> str:
    """``"BioactivityCHIKV"`` -> ``"CHIKV"``; other labels unchanged (stripped)."""
    label = label.strip()
    rest = re.sub(r"(?i)^bio[-_ ]?activity[-_ :]*", "", label)
    return rest or label


_NUMERIC_ID = re.compile(r"^[+-]?\d+(?:\.\d*)?$")


def _split_activity_rows(rows: list[list[str]], line_no: list[int], id_j: int, mz_j: int, rt_j: int):
    """Leading rows whose id is a name and whose m/z and RT are empty: (activity rows, their lines, the rest)."""
    k = 0
    while k < len(rows):
        r = rows[k]
        ident = r[id_j].strip()
        if ident and not _NUMERIC_ID.match(ident) and not r[mz_j].strip() and not r[rt_j].strip():
            k += 1
        else:
            break
    return rows[:k], line_no[:k], rows[k:], line_no[k:]


CHARGE_COLUMNS = ("charge", "row charge")


def _csv_header(path: Path) -> tuple[list[str], Any, list[str]]:
    """The file's lines, a CSV reader past the header, and the header's stripped names (BOM and trailing empty
    names dropped: MZmine 2 ends every line with a comma)."""
    lines = read_text_lines(path)
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise InputFileError(path, f"not a CSV header ({exc})", line=1) from None
    header[0] = header[0].lstrip("\ufeff")
    while header and header[-1] == "":
        header.pop()
    return lines, reader, header


def _read_quant(path: Path) -> _Table:
    """Ids, m/z, RT, charge, sample names, heights (features x samples) and activity rows of the quant CSV."""
    lines, reader, header = _csv_header(path)
    if len(header) == 1:
        refuse_other_separator(path, lines[0], 1)
    layout = next(((cols, pats) for cols, pats in LAYOUTS if cols[0] in header), None)
    if layout is None:
        raise InputFileError(path, "header lacks an 'id' (MZmine 3) or 'row ID' (MZmine 2) column", line=1)
    (id_col, mz_col, rt_col), patterns = layout
    for c in (mz_col, rt_col):
        if c not in header:
            raise InputFileError(path, f"header lacks the column '{c}'", line=1)
    for c in (c for c in (id_col, mz_col, rt_col, *CHARGE_COLUMNS) if header.count(c) > 1):  # which one is meant?
        where = [j + 1 for j, h in enumerate(header) if h == c]
        raise InputFileError(path, f"column '{c}' appears {len(where)} times in the header (columns {where})", 1)
    samples: list[tuple[int, str]] = []
    for pattern in patterns:
        samples = [(j, m.group(1)) for j, h in enumerate(header) if (m := pattern.match(h))]
        if samples:
            break
    if not samples:
        raise InputFileError(path, "no sample columns ('datafile:<file>:height' or '<file> Peak area')", line=1)
    names = [n for _, n in samples]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InputFileError(path, f"duplicate sample name(s) {dups}", line=1)

    rows, line_no = _body_rows(reader, header, path)
    pos = {h: j for j, h in reversed(list(enumerate(header)))}
    act_rows, act_lines, rows, line_no = _split_activity_rows(rows, line_no, pos[id_col], pos[mz_col], pos[rt_col])
    activity = None
    if act_rows:
        sample_cols = [header[j] for j, _ in samples]
        values = column_to_float(
            [[r[j] for j, _ in samples] for r in act_rows],
            path,
            np.repeat(np.array(act_lines, dtype=np.int64), len(samples)),
            np.tile(np.array(sample_cols, dtype=object), len(act_rows)),
            missing=np.nan,
        ).reshape(len(act_rows), len(samples))
        activity = pd.DataFrame({"sample": names})
        for r, v in zip(act_rows, values, strict=True):
            activity[assay_name(r[pos[id_col]])] = v
    if not rows:
        raise InputFileError(path, "no data rows below the header", line=1)
    lines_arr = np.array(line_no, dtype=np.int64)
    ids = np.array([r[pos[id_col]].strip() for r in rows], dtype=object)
    if (ids == "").any():
        raise InputFileError(path, "empty feature id", line=int(lines_arr[np.flatnonzero(ids == "")[0]]), column=id_col)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputFileError(path, f"duplicate feature id '{ids[i]}'", line=int(lines_arr[i]), column=id_col)
    mz = column_to_float([r[pos[mz_col]] for r in rows], path, lines_arr, mz_col, positive=True)
    rt = column_to_float([r[pos[rt_col]] for r in rows], path, lines_arr, rt_col, minimum=0.0)
    heights = column_to_float(
        [[r[j] for j, _ in samples] for r in rows],
        path,
        np.repeat(lines_arr, len(samples)),
        np.tile(np.array([header[j] for j, _ in samples], dtype=object), len(rows)),
        missing=0.0,
        minimum=0.0,
        maximum=MAX_INTENSITY,
    ).reshape(len(rows), len(samples))
    charge_col = next((c for c in CHARGE_COLUMNS if c in pos), None)
    charge = None
    if charge_col is not None:  # empty = MZmine could not tell (0: unknown)
        for r, ln in zip(rows, line_no, strict=True):
            cell = r[pos[charge_col]].strip()
            if cell and not re.fullmatch(CHARGE_CELL, cell):  # 'abc' read as unknown, '1.5' as 1: say so instead
                raise InputFileError(path, f"'{cell[:40]}' is not a charge", line=ln, column=charge_col)
        charge = np.array([charge_from_text(r[pos[charge_col]]) for r in rows], dtype=np.int64)
    return _Table(path, ids, mz, rt, names, heights, activity, charge, lines_arr, rt_col)


# ------------------------------------------------------------------------------------------- Optimus layout

OPTIMUS_SAMPLE = ("sample name", "sample", "sample_name", "filename")
# "270.279 1698 1 (ID: 9)": m/z, RT in seconds, charge, feature id
OPTIMUS_FEATURE = re.compile(
    r"^\s*([0-9.]+(?:[eE][+-]?\d+)?)\s+([0-9.]+(?:[eE][+-]?\d+)?)\s+([+-]?\d+)\s*\(ID:\s*([^)\s]+)\s*\)\s*$"
)


def is_optimus_header(line: str) -> bool:
    """True for an Optimus-style transposed table: first cell ``Sample name``, some ``m/z RT z (ID: n)`` cells."""
    first = next(csv.reader([line]), [""])
    return (
        bool(first)
        and first[0].strip().lstrip("\ufeff").lower() in OPTIMUS_SAMPLE
        and any(OPTIMUS_FEATURE.match(c) for c in first[1:])
    )


def read_optimus(
    table_csv: str | Path,
    mgf: str | Path,
    sample_sheet: pd.DataFrame | str | Path | None = None,
    *,
    join_mz_tol_da: float = JOIN_MZ_TOL_DA,
) -> ReadResult:
    """The "Optimus" transposed layout: one row per sample (``Sample name``, activity columns, then one column per
    feature named ``<m/z> <RT s> <charge> (ID: <id>)`` holding its height/area), joined to an MGF by FEATURE_ID.

    Columns between the sample name and the features that are not features are activity columns
    (``ReadResult.activity``); RT is converted to minutes; empty cells mean not detected.
    """
    path, mgf = Path(table_csv), Path(mgf)
    _, reader, header = _csv_header(path)
    features, act_cols = [], []
    for j, h in enumerate(header[1:], start=1):
        m = OPTIMUS_FEATURE.match(h)
        if m:
            features.append((j, m))
        elif "(id:" in h.lower():  # a feature header that does not parse would become an "assay" of its heights
            raise InputFileError(path, f"feature column '{h}' is not '<m/z> <RT s> <charge> (ID: <id>)' (decimal "
                                 "point, spaces between)", line=1, column=h)  # fmt: skip
        else:
            act_cols.append(j)
    if not features:
        raise InputFileError(path, "no feature columns named like '270.279 1698 1 (ID: 9)'", line=1)
    ids = np.array([m.group(4) for _, m in features], dtype=object)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise InputFileError(path, f"two feature columns with ID {ids[int(np.flatnonzero(dup)[0])]}", line=1)
    mz = np.array([float(m.group(1)) for _, m in features])
    rt = np.array([float(m.group(2)) for _, m in features])
    charge = np.array([abs(int(m.group(3))) for _, m in features], dtype=np.int64)
    if (mz <= 0).any():
        raise InputFileError(
            path, f"feature column m/z must be > 0: {header[features[int(np.flatnonzero(mz <= 0)[0])][0]]}", line=1
        )
    rows, line_no = _body_rows(reader, header, path)
    if not rows:
        raise InputFileError(path, "no sample rows below the header", line=1)
    names = [r[0].strip() for r in rows]
    lines_arr = np.array(line_no, dtype=np.int64)
    for i, n in enumerate(names):
        if not n:
            raise InputFileError(path, "empty sample name", line=int(lines_arr[i]), column=header[0])
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise InputFileError(path, f"duplicate sample name(s) {dups}", line=1)
    heights = (
        column_to_float(
            [[r[j] for j, _ in features] for r in rows],
            path,
            np.repeat(lines_arr, len(features)),
            np.tile(np.array([header[j] for j, _ in features], dtype=object), len(rows)),
            missing=0.0,
            minimum=0.0,
            maximum=MAX_INTENSITY,
        )
        .reshape(len(rows), len(features))
        .T.copy()
    )
    activity = None
    if act_cols:
        values = column_to_float(
            [[r[j] for j in act_cols] for r in rows],
            path,
            np.repeat(lines_arr, len(act_cols)),
            np.tile(np.array([header[j] for j in act_cols], dtype=object), len(rows)),
            missing=np.nan,
        ).reshape(len(rows), len(act_cols))
        activity = pd.DataFrame({"sample": names})
        for k, j in enumerate(act_cols):
            activity[assay_name(header[j])] = values[:, k]
    quant = _Table(path, ids, mz, rt, names, heights, activity, charge, np.ones(len(ids)), "header RT", "seconds")
    return assemble(quant, mgf, sample_sheet, join_mz_tol_da=join_mz_tol_da)


def _body_rows(reader: Any, header: list[str], path: Path) -> tuple[list[list[str]], list[int]]:
    """The non-blank rows below the header and their line numbers; a row with too few fields (or text past the
    header's columns) is one line naming file and line."""
    rows, line_no = [], []
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue
            if len(fields) < len(header) or any(f.strip() for f in fields[len(header) :]):
                raise InputFileError(
                    path,
                    f"has {len(fields)} fields, the header has {len(header)} (truncated line or wrong delimiter?)",
                    line=reader.line_num,
                )
            rows.append(fields)
            line_no.append(reader.line_num)
    except csv.Error as exc:
        raise InputFileError(path, f"malformed CSV ({exc})", line=reader.line_num) from None
    return rows, line_no
