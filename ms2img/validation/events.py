"""The events checks: run the suites on every Parquet file of an events folder, map GX indices back to files."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ms2img.errors import ConfigError, InputFileError
from ms2img.io import schema
from ms2img.validation import suites
from ms2img.validation.report import (
    MAX_LISTED,
    Failure,
    ValidationResult,
    short_kwargs,
)

log = logging.getLogger(__name__)

# A sanity range, not the rendering range (render.x_range / y_range): Orbitraps scan to 6000-8000 and Q-TOFs to
# 10000+, and a fragment of a multiply charged precursor can pass the precursor's m/z (FERMO: 2482.87).
DEFAULT_MZ_RANGE = (0.0, 10000.0)
DEFAULT_FRAGMENT_TOLERANCE_DA = 0.05
DEFAULT_MAX_INTENSITY = schema.MAX_INTENSITY  # the events schema's limit (ms2img.io.schema), the default of validate
# Share of fragments above their (singly charged) precursor an accession may carry. MS-DIAL exports: 0-3%; real
# MZmine 3 data (the FERMO case study): 4-17% per sample, nearly all weak noise peaks far above; a quant table
# joined to the wrong spectra (ids shuffled): 24-45%. Wrong joins are also refused at ingest (m/z check).
DEFAULT_MAX_ABOVE_PRECURSOR_SHARE = 0.2
# Above the precursor by at most this: its 13C isotopes (+1.003 per 13C) and ions co-isolated in the window.
ISOTOPE_WINDOW_DA = 3.5
_STRINGS = [c for c, t in schema.EVENT_DTYPES.items() if t == "str"]
_NUMERIC = [c for c, t in schema.EVENT_DTYPES.items() if t == "float64"]
_CHARGE = schema.CHARGE  # optional: events written without it are charge 1


# ------------------------------------------------------------------------------------------------ events


@dataclass
class _Unit:
    """One events file (or the one DataFrame given) with what the inventory suite checks."""

    file: str
    accession: str | None
    frame: pd.DataFrame | None
    read_error: str = ""
    missing_columns: str = ""
    non_numeric_columns: str = ""
    rows: int = 0
    accessions_in_file: int = 0

    @property
    def usable(self) -> bool:
        return not (self.read_error or self.missing_columns or self.non_numeric_columns)


def _inspect(file: str, df: pd.DataFrame | None, fallback_accession: str | None, read_error: str = "") -> _Unit:
    unit = _Unit(file=file, accession=fallback_accession, frame=None, read_error=read_error)
    if df is None:
        return unit
    unit.rows = len(df)
    unit.missing_columns = ",".join(c for c in schema.EVENT_COLUMNS if c not in df.columns)
    unit.non_numeric_columns = ",".join(
        c
        for c in [*_NUMERIC, _CHARGE]
        if c in df.columns and (not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    )
    if "accession" in df.columns:
        values = df["accession"].dropna().astype(str).unique()
        unit.accessions_in_file = len(values)
        if len(values) == 1:
            unit.accession = str(values[0])
    if unit.usable:
        unit.frame = _canonical(df)
    return unit


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Like ``schema.coerce_events`` but converts only columns not already canonical (reading 200 files
    written by ``write_events`` then costs no copies); ``charge`` as float64, 1 where the table has none."""
    out = df[schema.EVENT_COLUMNS]
    for col, dtype in schema.EVENT_DTYPES.items():
        if str(out[col].dtype) != dtype:
            out = out.assign(**{col: out[col].astype(dtype)})
    charge = df[_CHARGE].astype("float64") if _CHARGE in df.columns else 1.0
    return out.assign(**{_CHARGE: charge})


def _inspect_arrow(file: str, table: pa.Table, fallback_accession: str | None) -> _Unit:
    """:func:`_inspect` on an Arrow table; keeps it Arrow (strings dictionary-encoded) for one cheap concat."""
    unit = _Unit(file=file, accession=fallback_accession, frame=None)
    unit.rows = table.num_rows
    names = set(table.column_names)
    unit.missing_columns = ",".join(c for c in schema.EVENT_COLUMNS if c not in names)
    unit.non_numeric_columns = ",".join(
        c
        for c in [*_NUMERIC, _CHARGE]
        if c in names
        and not (pa.types.is_floating(table.schema.field(c).type) or pa.types.is_integer(table.schema.field(c).type))
    )
    if "accession" in names:
        col = table.column("accession")
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if pa.types.is_dictionary(col.type):  # the values its codes use (pc.unique would unify dictionaries)
            values = col.dictionary.take(pc.unique(col.indices.drop_null()))
        else:
            values = pc.unique(col)
        values = list(dict.fromkeys(values.drop_null().to_pylist()))
        unit.accessions_in_file = len(set(map(str, values)))
        if len(values) == 1:
            unit.accession = str(values[0])
    if unit.usable:
        cols = []
        for c in schema.EVENT_COLUMNS:
            col = table.column(c)
            if c in _STRINGS:
                if not pa.types.is_dictionary(col.type):
                    col = pc.dictionary_encode(col.cast(pa.string()))
                elif col.type.value_type != pa.string() or col.type.index_type != pa.int32():
                    col = col.cast(pa.dictionary(pa.int32(), pa.string()))
            elif col.type != pa.float64():
                col = col.cast(pa.float64())
            cols.append(col)
        if _CHARGE in names:
            cols.append(table.column(_CHARGE).cast(pa.float64()))
        else:
            cols.append(pa.array(np.ones(table.num_rows)))
        unit.frame = pa.table(cols, names=[*schema.EVENT_COLUMNS, _CHARGE])
    return unit


def _load_units(events: str | Path | pd.DataFrame, source: str | None) -> tuple[str, list[_Unit]]:
    if isinstance(events, pd.DataFrame):
        name = source or "<dataframe>"
        return name, [_inspect(name, events, None)]
    path = Path(events)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else ([path] if path.is_file() else [])
    if not files:
        raise InputFileError(path, "no events Parquet files found (run `ms2img ingest` first)")
    units = []
    for f in tqdm(files, desc="reading events", unit="file", disable=None, leave=False):
        try:
            with pq.ParquetFile(f) as pf:  # one file: no dataset discovery (read_table's ~1 ms per file)
                table = pf.read()
        except Exception as exc:  # noqa: BLE001  # pyarrow raises many types; the report names the file
            units.append(_inspect(str(f), None, f.stem, read_error=f"{exc.__class__.__name__}: {exc}"[:300]))
            continue
        units.append(_inspect_arrow(str(f), table, f.stem))
    return str(source or path), units


def _stack(frames: list) -> pd.DataFrame:
    """One pandas table from the usable units: Arrow tables are concatenated with unified dictionaries (string
    columns become categoricals: no per-row Python strings), pandas frames with ``pd.concat``."""
    if not frames:
        return schema.empty_events()
    if all(isinstance(f, pa.Table) for f in frames):
        table = pa.concat_tables(frames).unify_dictionaries().combine_chunks()
        return table.to_pandas()
    frames = [f.to_pandas() if isinstance(f, pa.Table) else f for f in frames]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)


def expectation_entry(suite: str, o: suites.Outcome, files_failed: int) -> dict[str, Any]:
    return {
        "suite": suite,
        "check": o.check.label,
        "expectation": o.expectation,
        "column": o.check.column,
        "kwargs": short_kwargs({k: v for k, v in o.check.kwargs.items() if k != "column"}),
        "success": o.success,
        "element_count": o.element_count,
        "unexpected_count": o.unexpected_count,
        "files_failed": files_failed,
        "error": o.error,
        "severity": o.check.severity,
        "per_accession": not o.check.per_row,
    }


def validate_events(
    events: str | Path | pd.DataFrame,
    mz_range: tuple[float, float] = DEFAULT_MZ_RANGE,
    fragment_tolerance_da: float = DEFAULT_FRAGMENT_TOLERANCE_DA,
    *,
    source: str | None = None,
    max_intensity: float = DEFAULT_MAX_INTENSITY,
    max_above_precursor_share: float = DEFAULT_MAX_ABOVE_PRECURSOR_SHARE,
) -> ValidationResult:
    """Validate an events folder (one Parquet file per accession) or one events DataFrame.

    Per-file schema checks run on a one-row-per-file inventory; row checks run once on all usable files
    concatenated, and each unexpected row is mapped back to its file and 0-based row position. Fragments above
    their precursor are counted per accession (``result.physics``) and fail an accession only when their share
    passes ``max_above_precursor_share``; warning-level checks land in ``result.warnings``, not ``failures``.
    """
    t0 = time.perf_counter()
    mz_range = (float(mz_range[0]), float(mz_range[1]))
    if not mz_range[0] < mz_range[1]:
        raise ConfigError(f"validate m/z range must have min < max, got {mz_range}")
    if not fragment_tolerance_da >= 0:
        raise ConfigError(f"validate fragment_tolerance_da must be >= 0, got {fragment_tolerance_da}")
    if not 0 <= max_above_precursor_share <= 1:
        raise ConfigError(f"validate.max_above_precursor_share must be in [0, 1], got {max_above_precursor_share}")
    if not max_intensity > 0:
        raise ConfigError(f"validate.max_intensity must be > 0, got {max_intensity}")
    with suites.gx_session():  # one GX context for the three suites
        return _validate_events(
            events, mz_range, fragment_tolerance_da, source, max_intensity, max_above_precursor_share, t0
        )


def _validate_events(
    events, mz_range, fragment_tolerance_da, source, max_intensity, max_above_precursor_share, t0
) -> ValidationResult:
    warnings: list[Failure] = []
    name, units = _load_units(events, source)
    df_mode = isinstance(events, pd.DataFrame)

    failures: list[Failure] = []
    expectations: list[dict[str, Any]] = []
    failed_units: set[int] = set()

    # 1. file-level suite on the inventory (index = position in `units`)
    inventory = pd.DataFrame(
        {
            "file": [u.file for u in units],
            "read_error": [u.read_error for u in units],
            "missing_columns": [u.missing_columns for u in units],
            "non_numeric_columns": [u.non_numeric_columns for u in units],
            # unreadable files get no row count (NaN: GX skips it) so they are reported once, as unreadable
            "rows": [np.nan if u.read_error else float(u.rows) for u in units],
            "accessions_in_file": [u.accessions_in_file for u in units],
        },
        dtype=object,
    ).astype({"rows": "float64", "accessions_in_file": "int64"})
    for o in suites.run_checks("events_files", inventory, suites.events_file_checks(not df_mode)):
        bad = [int(i) for i in o.index_list]
        expectations.append(expectation_entry("events_files", o, len(set(bad))))
        if o.success:
            continue
        if o.error and not bad:
            failures.append(_error_failure(name, "events_files", o))
        for i, value in zip(bad, o.values, strict=False):
            failed_units.add(i)
            failures.append(
                Failure(
                    file=units[i].file,
                    accession=units[i].accession,
                    suite="events_files",
                    check=o.check.label,
                    expectation=o.expectation,
                    column=o.check.column,
                    unexpected_count=1,
                    values=[int(value) if isinstance(value, float) and value.is_integer() else value],
                )
            )

    # 2. row-level suite on all usable files at once (RangeIndex; `starts` maps rows back to files)
    usable = [i for i, u in enumerate(units) if u.usable and u.rows > 0]
    frames = [units[i].frame for i in usable]
    for u in units:
        u.frame = None  # the concatenated table below is the only copy kept
    table = _stack(frames)
    del frames
    if _CHARGE not in table.columns:  # no usable file
        table[_CHARGE] = np.ones(len(table))
    negative = (table["polarity"] == "negative").to_numpy(dtype=bool)
    charge = table[_CHARGE].to_numpy(dtype=np.float64, na_value=np.nan)
    single = schema.singly_charged_mz(table["precursor_mz"].to_numpy(np.float64, na_value=np.nan), charge, negative)
    table[suites.FRAGMENT_EXCESS] = table["fragment_mz"].to_numpy(np.float64, na_value=np.nan) - single
    sizes = np.array([units[i].rows for i in usable], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else np.zeros(0, dtype=np.int64)
    row_checks = suites.events_row_checks(
        [*schema.EVENT_COLUMNS, _CHARGE],
        schema.POLARITIES,
        mz_range,
        fragment_tolerance_da,
        max_intensity=max_intensity,
        max_above_precursor_share=max_above_precursor_share,
    )
    df_failed_accessions: set[str] = set()
    for o in suites.run_checks("events_rows", table, row_checks):
        idx = np.asarray(o.index_list, dtype=np.int64)
        pos = np.searchsorted(starts, idx, side="right") - 1 if len(idx) else idx
        n_files = len(np.unique(pos))
        expectations.append(expectation_entry("events_rows", o, n_files))
        if o.success or not o.check.per_row:
            continue  # the mostly-check is judged per accession below
        critical = o.check.severity != "warning"
        sink = failures if critical else warnings
        if o.error and not len(idx):
            sink.append(_error_failure(name, "events_rows", o))
            continue
        if df_mode and critical:
            df_failed_accessions.update(table["accession"].iloc[idx].dropna().astype(str).unique())
        # GX lists unexpected rows in index order, so each file's rows form one contiguous run
        uniq, first, counts = np.unique(pos, return_index=True, return_counts=True)
        for p, f0, n in zip(uniq, first, counts, strict=True):
            unit_i = usable[int(p)]
            take = slice(int(f0), int(f0) + min(int(n), MAX_LISTED))
            rows_global = idx[take]
            context = []
            if o.check.context_columns:
                context = table.loc[rows_global, list(o.check.context_columns)].to_dict(orient="records")
            if critical:
                failed_units.add(unit_i)
            sink.append(
                Failure(
                    file=units[unit_i].file,
                    accession=units[unit_i].accession,
                    suite="events_rows",
                    check=o.check.label,
                    expectation=o.expectation,
                    column=o.check.column,
                    unexpected_count=int(n),
                    row_kind="row",
                    rows=(rows_global - starts[p]).tolist(),
                    values=list(o.values[take]),
                    context=context,
                )
            )

    # 3. fragments above the precursor: counted per accession, judged per accession with the same share
    physics = _above_precursor(table, units, usable, starts, fragment_tolerance_da)
    if physics["per_accession"]:
        acc_table = pd.DataFrame(
            {
                "accession": [r["accession"] for r in physics["per_accession"]],
                suites.ABOVE_SHARE: [r[suites.ABOVE_SHARE] for r in physics["per_accession"]],
            }
        )
        for o in suites.run_checks("events_accessions", acc_table, suites.accession_checks(max_above_precursor_share)):
            bad = [int(i) for i in o.index_list]
            expectations.append(expectation_entry("events_accessions", o, len(set(bad))))
            for i, value in zip(bad, o.values, strict=False):
                rec = physics["per_accession"][i]
                unit_i = rec.pop("_unit")
                failed_units.add(unit_i)
                if df_mode:
                    df_failed_accessions.add(rec["accession"])
                failures.append(
                    Failure(
                        file=units[unit_i].file,
                        accession=rec["accession"],
                        suite="events_accessions",
                        check=o.check.label,
                        expectation=o.expectation,
                        column=suites.ABOVE_SHARE,
                        unexpected_count=int(rec["above_precursor"]),
                        row_kind="row",
                        rows=rec["first_rows"],
                        values=[round(float(value), 6)],
                        context=rec["first_pairs"],
                    )
                )
        for rec in physics["per_accession"]:
            rec.pop("_unit", None)

    if df_mode:
        accessions = sorted(table["accession"].dropna().astype(str).unique().tolist())
        failed_accessions = sorted(df_failed_accessions)
        failed_files = [name] if failures else []
    else:
        accessions = sorted({u.accession for u in units if u.accession is not None})
        failed_accessions = sorted({units[i].accession for i in failed_units if units[i].accession is not None})
        failed_files = [units[i].file for i in sorted(failed_units)]
    n_ok = sum(e["success"] for e in expectations)
    stats = {
        "files": 0 if df_mode else len(units),
        "files_failed": len(failed_files),
        "accessions": len(accessions),
        "rows": len(table),
        "evaluated_expectations": len(expectations),
        "successful_expectations": n_ok,
        "unsuccessful_expectations": len(expectations) - n_ok,
        "success_percent": round(100.0 * n_ok / len(expectations), 2) if expectations else 100.0,
        "fragments_above_precursor": physics["total_above"],
        "fragments_above_precursor_near": physics["total_near"],
        "fragments_above_precursor_mz_of_multiply_charged": physics["total_explained_by_charge"],
        "above_precursor_share": physics["share"],
        "accessions_with_fragments_above_precursor": sum(1 for r in physics["per_accession"] if r["above_precursor"]),
        "max_above_precursor_share": physics["max_share"],
        "warnings": int(sum(w.unexpected_count for w in warnings)),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    log.info(
        "validated %d events rows in %d file(s): %d/%d expectations passed (%.1f s)",
        stats["rows"], stats["files"], n_ok, len(expectations), stats["seconds"],
    )  # fmt: skip
    blocking = [e for e in expectations if not e["success"] and e.get("severity", "critical") != "warning"]
    blocking = [e for e in blocking if not (e["suite"] == "events_rows" and e.get("per_accession"))]
    return ValidationResult(
        name="events",
        source=name,
        success=not failures and not blocking,
        warnings=warnings,
        physics=physics,
        expectations=expectations,
        failures=failures,
        statistics=stats,
        accessions=accessions,
        failed_accessions=failed_accessions,
        files={u.file: u.accession or "" for u in units},
        failed_files=failed_files,
    )


def _above_precursor(table: pd.DataFrame, units, usable, starts: np.ndarray, tolerance: float) -> dict[str, Any]:
    """Fragments above their precursor (+ tolerance) per accession: counts, shares, first rows.

    "Above" is judged against the singly charged mass of the precursor (``fragment_excess``): a fragment of an
    [M+2H]2+ ion that kept one charge lies above the precursor m/z by physics; those are counted apart
    (``explained_by_charge``). 13C isotopes of the precursor (+1.003 Da) and ions co-isolated in the isolation
    window (``near``: within ``ISOTOPE_WINDOW_DA``) land above in every real DDA export, and weak noise peaks
    far above in some; the renderer masks that region (the paper's diagonal), so they are reported, not fatal.
    """
    n = len(table)
    out: dict[str, Any] = {
        "tolerance_da": float(tolerance),
        "isotope_window_da": ISOTOPE_WINDOW_DA,
        "total_fragments": int(n),
        "total_above": 0,
        "total_near": 0,
        "total_explained_by_charge": 0,
        "share": 0.0,
        "max_share": 0.0,
        "per_accession": [],
    }
    if n == 0:
        return out
    excess = table[suites.FRAGMENT_EXCESS].to_numpy(dtype=np.float64, na_value=np.nan)
    above = excess > tolerance  # NaN rows are the null checks' business
    near = above & (excess <= ISOTOPE_WINDOW_DA)
    pmz = table["precursor_mz"].to_numpy(dtype=np.float64, na_value=np.nan)
    fmz = table["fragment_mz"].to_numpy(dtype=np.float64, na_value=np.nan)
    by_charge = (fmz - pmz > tolerance) & ~above & ~np.isnan(excess)
    codes, uniques = pd.factorize(table["accession"], use_na_sentinel=True)
    valid = codes >= 0
    k = len(uniques)
    sizes = np.bincount(codes[valid], minlength=k)
    counts = np.bincount(codes[valid], weights=above[valid], minlength=k).astype(np.int64)
    near_counts = np.bincount(codes[valid], weights=near[valid], minlength=k).astype(np.int64)
    charge_counts = np.bincount(codes[valid], weights=by_charge[valid], minlength=k).astype(np.int64)
    first_row = np.full(k, -1, dtype=np.int64)
    seen = np.flatnonzero(valid)
    first_row[codes[seen[::-1]]] = seen[::-1]  # first row of each accession
    above_idx = np.flatnonzero(above & valid)
    above_codes = codes[above_idx]
    charge = table[schema.CHARGE].to_numpy(dtype=np.float64, na_value=np.nan)
    # rows of each accession's above-precursor fragments, without a scan of all of them per accession
    order = np.argsort(above_codes, kind="stable")
    bounds = np.searchsorted(above_codes[order], np.arange(k + 1))
    out["total_above"] = int(above.sum())
    out["total_near"] = int(near.sum())
    out["total_explained_by_charge"] = int(by_charge.sum())
    out["share"] = round(float(above.sum()) / n, 6)
    for a in range(k):
        share = float(counts[a]) / float(sizes[a]) if sizes[a] else 0.0
        p = int(np.searchsorted(starts, first_row[a], side="right") - 1) if len(starts) else 0
        rows = above_idx[order[bounds[a] : bounds[a + 1]][:MAX_LISTED]]
        unit_start = int(starts[p]) if len(starts) else 0
        out["per_accession"].append(
            {
                "accession": str(uniques[a]),
                "file": units[usable[p]].file if usable else "",
                "fragments": int(sizes[a]),
                "above_precursor": int(counts[a]),
                "near_precursor": int(near_counts[a]),
                "explained_by_charge": int(charge_counts[a]),
                suites.ABOVE_SHARE: round(share, 6),
                "first_rows": (rows - unit_start).tolist(),
                "first_pairs": [
                    {"precursor_mz": float(pmz[r]), "charge": int(charge[r]), "fragment_mz": float(fmz[r])}
                    for r in rows[:5]
                ],
                "_unit": usable[p] if usable else 0,
            }
        )
    out["max_share"] = max(r[suites.ABOVE_SHARE] for r in out["per_accession"])
    return out


def _error_failure(file: str, suite: str, o: suites.Outcome) -> Failure:
    return Failure(
        file=file,
        suite=suite,
        check=o.check.label,
        expectation=o.expectation,
        column=o.check.column,
        unexpected_count=o.unexpected_count,
        error=o.error,
    )
