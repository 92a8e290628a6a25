"""The assays.csv checks: the file as written (``io.assay_table``: strings, editor line numbers) through the assay
suite."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.errors import InputFileError
from ms2img.io.assay_table import cell_numbers, default_assay_columns, read_csv_strings
from ms2img.io.metadata import side_table
from ms2img.validation import suites
from ms2img.validation.events import DEFAULT_MAX_INTENSITY, expectation_entry
from ms2img.validation.report import (
    MAX_LISTED,
    Failure,
    ValidationResult,
)

log = logging.getLogger(__name__)

# Largest assay value in magnitude: a cell like 1e308 (or 1e400, read as inf) is corrupt, not a measurement.
MAX_ASSAY_VALUE = DEFAULT_MAX_INTENSITY


def _missing_column(column: str, header: list[str], wanted: Sequence[str] | None = None) -> str:
    """Why a column is missing, in the words of the file: the header as read and the closest name (a misspelt
    header) among the columns no check wants (TFC is not a misspelt TPC). A header split by another separator
    never gets here: ``read_csv_strings`` refuses it."""
    import difflib

    said = f"no column '{column}' in the header {header[:8]}"
    spare = [h for h in header if h != "accession" and h not in (wanted or ())]
    close = difflib.get_close_matches(column, spare, n=1, cutoff=0.6)
    return f"{said} (did you mean '{close[0]}'?)" if close else said


def _pair_misspelt_accessions(failures: list[Failure]) -> None:
    """An assays.csv accession without events beside an events accession without a row, alike (``Hi9`` / ``Hi09``):
    the first failure says which one the row probably means, so the two lines read as one typo."""
    import difflib

    unknown = next((f for f in failures if f.expectation == "expect_column_values_to_be_in_set"), None)
    absent = next((f for f in failures if f.expectation == "expect_column_distinct_values_to_contain_set"), None)
    if unknown is None or absent is None or unknown.column != "accession":
        return
    pairs = [
        (v, difflib.get_close_matches(str(v), list(map(str, absent.values)), n=1, cutoff=0.6)) for v in unknown.values
    ]
    said = [f"'{v}' is probably '{close[0]}', which has events but no row" for v, close in pairs if close]
    unknown.hint = "; ".join(said[:3]) or None


def _hint_rows_to_add(failures: list[Failure], header: list[str]) -> None:
    """Events accessions without a row in assays.csv (new exports whose assays are not run yet): say the cure, a row
    with empty cells, which training reads as "not measured" and leaves out."""
    absent = next((f for f in failures if f.expectation == "expect_column_distinct_values_to_contain_set"), None)
    if absent is not None and absent.hint is None and absent.values:
        row = ",".join([str(absent.values[0]), *[""] * (len(header) - 1)])
        absent.hint = f"add a row for each; empty cells mean not measured (e.g. '{row}')"


def _assay_columns(df: pd.DataFrame, assays: Sequence[str] | None) -> list[str]:
    """The assay columns present (all but ``accession`` unless ``assays`` names them)."""
    wanted = list(assays) if assays is not None else default_assay_columns(df.columns)
    return [c for c in wanted if c in df.columns]


def _column_entry(
    check: str, expectation: str, column: str, kwargs: dict, *, element_count: int, unexpected_count: int
) -> dict:
    """The validation report's entry of one critical assays.csv column check (passes when nothing is unexpected)."""
    return {
        "suite": "assays",
        "check": check,
        "expectation": expectation,
        "column": column,
        "kwargs": kwargs,
        "success": not unexpected_count,
        "element_count": element_count,
        "unexpected_count": unexpected_count,
        "files_failed": int(bool(unexpected_count)),
        "error": None,
        "severity": "critical",
        "per_accession": False,
    }


def _constant_checks(df: pd.DataFrame, path: Path, assays: Sequence[str] | None):
    """Per assay column: at least two different values among its numbers, else no classifier can be trained on it
    (training would stop at labelling). Yields ``(failure or None, expectation entry)``; the failure names file,
    column and the value. Cells that are not finite numbers are left to the other checks (empty: "not measured",
    a warning; ``n/a`` the regex's, ``1e400`` the magnitude check's), and a column with fewer than two numbers is
    not called constant here."""
    for a in _assay_columns(df, assays):
        cells = df[a]
        values = cell_numbers(cells)
        finite = np.flatnonzero(np.isfinite(values))
        constant = len(finite) >= 2 and bool((values[finite] == values[finite[0]]).all())
        too_few = len(finite) < 2 <= len(cells) and not (cells.notna() & ~np.isfinite(values)).any()  # rest empty
        entry = _column_entry(
            f"{a} not constant",
            "expect_column_unique_value_count_to_be_between",
            a,
            {"min_value": 2},
            element_count=len(finite),
            unexpected_count=len(cells) if too_few else len(finite) if constant else 0,
        )
        if not (constant or too_few):
            yield None, entry
            continue
        value = str(cells.iloc[finite[0]]) if constant else None
        check = (
            f"{a} not constant (all {len(finite)} accessions have {value}: no classifier can be trained on it)"
            if constant
            else f"{a} measured on at least 2 accessions ({len(finite)} of {len(cells)}: nothing to train on)"
        )
        f = Failure(
            file=str(path),
            suite="assays",
            check=check,
            expectation="expect_column_unique_value_count_to_be_between",
            column=a,
            unexpected_count=entry["unexpected_count"],
            values=[value] if constant else [],
        )
        yield f, entry


def _magnitude_checks(df: pd.DataFrame, path: Path, assays: Sequence[str] | None):
    """Per assay column: values that read as numbers must be finite and within +-``MAX_ASSAY_VALUE``.

    Yields ``(failure or None, expectation entry)``; cells not written as numbers (``inf``, ``n/a``) are the regex
    check's to report, so only overflowing (``1e400``) or absurd (``1e13``) numbers fail here.
    The failure names line, accession and value."""
    label = f"within +-{MAX_ASSAY_VALUE:g}"
    for a in _assay_columns(df, assays):
        cells = df[a]
        values = cell_numbers(cells)
        bad = np.flatnonzero(~np.isnan(values) & ~(np.abs(values) <= MAX_ASSAY_VALUE))
        entry = _column_entry(
            f"{a} {label}",
            "expect_column_values_to_be_between",
            a,
            {"min_value": -MAX_ASSAY_VALUE, "max_value": MAX_ASSAY_VALUE},
            element_count=int(cells.notna().sum()),
            unexpected_count=len(bad),
        )
        if not len(bad):
            yield None, entry
            continue
        acc = df["accession"] if "accession" in df.columns else pd.Series([None] * len(df), index=df.index)
        shown = bad[:MAX_LISTED]
        accs = [str(acc.iloc[i]) for i in shown]
        f = Failure(
            file=str(path),
            suite="assays",
            check=f"{a} {label} (accession {', '.join(repr(x) for x in accs[:5])})",
            expectation="expect_column_values_to_be_between",
            column=a,
            unexpected_count=len(bad),
            row_kind="line",
            rows=[int(df.index[i]) for i in shown],
            values=[str(cells.iloc[i]) for i in shown],
            context=[{"accession": x} for x in accs],
            accession=accs[0],
        )
        yield f, entry


def validate_assays(
    assays_csv: str | Path,
    accessions: Sequence[str] | None = None,
    assays: Sequence[str] | None = None,
) -> ValidationResult:
    """Validate assays.csv: unique non-empty accessions, finite numeric assay values, no constant assay column, the
    requested assay columns present, and (given ``accessions``, the ones with events files) the same accession
    set."""
    t0 = time.perf_counter()
    path = Path(assays_csv)
    df = read_csv_strings(path)
    side = side_table(",".join(map(str, df.columns)))
    if side is not None and "accession" not in df.columns:  # FERMO's activity or a metadata table given as assays
        raise InputFileError(path, f"{side[1]}; assays.csv is accession and one column per assay", line=1)
    checks = suites.assays_checks(list(df.columns), assays, accessions)
    failures: list[Failure] = []
    warnings: list[Failure] = []  # warning-severity checks (an assay not measured on an accession): counted only
    expectations: list[dict[str, Any]] = []
    for o in suites.run_checks("assays", df, checks):
        expectations.append(expectation_entry("assays", o, 0 if o.success else 1))
        if o.success:
            continue
        f = Failure(
            file=str(path),
            suite="assays",
            check=o.check.label,
            expectation=o.expectation,
            column=o.check.column,
            unexpected_count=max(o.unexpected_count, 1),
            error=o.error,
        )
        if o.expectation == "expect_column_to_exist":
            f.row_kind, f.rows, f.values = "line", [1], [o.check.column]
            f.error = _missing_column(o.check.column, list(map(str, df.columns)), assays)
        elif o.missing_values:
            f.values = sorted(map(str, o.missing_values))[:MAX_LISTED]
        elif o.index_list:
            f.row_kind = "line"
            f.rows = [int(i) for i in o.index_list[:MAX_LISTED]]
            f.values = list(o.values[:MAX_LISTED])
        (warnings if o.check.severity == "warning" else failures).append(f)
    _pair_misspelt_accessions(failures)
    _hint_rows_to_add(failures, list(map(str, df.columns)))
    for f, entry in chain(_magnitude_checks(df, path, assays), _constant_checks(df, path, assays)):
        expectations.append(entry)
        if f is not None:
            failures.append(f)
    n_ok = sum(e["success"] for e in expectations)
    acc = df["accession"].dropna().astype(str).unique().tolist() if "accession" in df.columns else []
    stats = {
        "rows": len(df),
        "columns": len(df.columns),
        "accessions": len(acc),
        "evaluated_expectations": len(expectations),
        "successful_expectations": n_ok,
        "unsuccessful_expectations": len(expectations) - n_ok,
        "success_percent": round(100.0 * n_ok / len(expectations), 2) if expectations else 100.0,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return ValidationResult(
        name="assays",
        source=str(path),
        success=not failures,
        expectations=expectations,
        failures=failures,
        warnings=warnings,
        statistics=stats,
        accessions=sorted(acc),
    )
