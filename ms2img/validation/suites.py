"""Great Expectations 1.x suites, built in code and run on an ephemeral context (nothing written to disk).

One context serves every suite of a validation run (:func:`gx_session`); each suite is evaluated by GX's own
``Validator`` on one batch, without the result store round trip and the batch fingerprint (see
:func:`run_checks`): the row suite of a 240-accession cohort (3.4M rows) takes ~0.8 s instead of ~2.6 s.

Three suites:

* ``events_files``: one row per events Parquet file (readable, canonical columns present and numeric, at least
  one row, one accession per file). Per-file schema checks run on this small inventory table instead of one GX
  validation per file, which costs ~0.14 s each (27 s for 200 files) on 2 cores.
* ``events_rows``: every fragment of every file that passed ``events_files``, concatenated once (RangeIndex),
  so GX's ``unexpected_index_list`` is a global row number that :mod:`ms2img.validation.runner` maps back to
  (file, row in file) with ``np.searchsorted``.
* ``assays``: assays.csv read as strings, indexed by the line number an editor shows.

GX 1.24 facts these suites rely on (checked on pandas 3.1):

* ``ExpectColumnValuesToBeBetween`` skips nulls (``missing_count``) and, with only ``min_value``, lets ``+inf``
  pass; intensities therefore also get ``max_value=float max`` so infinities are reported.
* ``ExpectColumnPairValuesAToBeGreaterThanB`` has no tolerance and, with its default
  ``ignore_row_if="both_values_are_missing"``, reports rows where only one m/z is NaN as "fragment above
  precursor" (a misleading second report of a null). The fragment check thus uses a derived column
  ``fragment_excess = fragment_mz - singly charged precursor m/z`` (the precursor m/z itself for charge 1) with
  ``max_value=tolerance``: NaN rows are left to the null checks and the unexpected value is the excess in Da.
* Results do not come back in suite order; each expectation carries ``meta={"check": i}`` to map it back.
* ``result_format="COMPLETE"`` returns every unexpected index; ``return_unexpected_index_query=False`` stops
  GX from also building a pandas query string of all of them. ``unexpected_index_column_names`` is avoided:
  GX fills it with one ``DataFrame.at`` per unexpected row (slow with many failures).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ms2img.io.assay_table import FINITE_NUMBER_REGEX, default_assay_columns

log = logging.getLogger(__name__)

# Largest finite float: a ``max_value`` that turns "finite" into a GX between-check (inf > FLOAT_MAX).
FLOAT_MAX = float(np.finfo(np.float64).max)
# Derived column for the fragment-vs-precursor check (see module docstring).
FRAGMENT_EXCESS = "fragment_excess"
MAX_CHARGE = 100  # precursor charges of small molecules are 1-3, of proteins up to ~60

RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 20,
    "return_unexpected_index_query": False,
}


@dataclass
class Check:
    """One expectation plus what a person reads in the report."""

    label: str  # e.g. "fragment_mz <= precursor_mz + 0.05 Da"
    expectation_type: str  # GX class name, e.g. "ExpectColumnValuesToBeBetween"
    kwargs: dict[str, Any]
    context_columns: tuple[str, ...] = ()  # extra columns shown next to an offending value
    severity: str = "critical"  # "critical" fails validation; "warning" is reported with its count only
    per_row: bool = True  # False: a cohort-level ``mostly`` check, judged per accession by its own suite

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


@dataclass
class Outcome:
    """The result of one check on one table, GX objects already turned into plain Python."""

    check: Check
    expectation: str  # snake_case GX type, e.g. "expect_column_values_to_be_between"
    success: bool
    element_count: int | None = None
    unexpected_count: int = 0
    index_list: list[Any] = field(default_factory=list)  # table index of each unexpected row
    values: list[Any] = field(default_factory=list)  # the offending values, aligned with index_list
    missing_values: list[Any] = field(default_factory=list)  # for "contain set" checks
    error: str | None = None  # GX raised while evaluating (e.g. a missing column)


def _gx():
    """Import GX lazily (2-3 s) so ``ms2img --help`` stays fast; no usage analytics from a validation run."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _context():
    """A fresh ephemeral context (nothing written to disk, no progress bars)."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


class _Session:
    """One ephemeral context shared by the suites of one validation run (events files, rows, accessions and
    assays): one context, one pandas data source, one asset per suite. Names are unique within the session,
    so nothing is re-added to a context (GX #10269)."""

    def __init__(self):
        self.source = None  # made on first use: opening a session costs nothing (and does not import GX)
        self.names: set[str] = set()

    def batch_definition(self, suite_name: str):
        if self.source is None:
            self.source = _context().data_sources.add_pandas(name="ms2img")
        name, k = suite_name, 1
        while name in self.names:
            k += 1
            name = f"{suite_name}_{k}"
        self.names.add(name)
        return self.source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("whole")


_SESSION: list[_Session] = []  # the innermost open gx_session()


@contextmanager
def gx_session():
    """Share one GX context among the :func:`run_checks` calls inside the block (nested blocks reuse the
    outer one). Outside a block each call gets its own context."""
    if _SESSION:
        yield _SESSION[-1]
        return
    _SESSION.append(_Session())
    try:
        yield _SESSION[-1]
    finally:
        _SESSION.clear()


@contextmanager
def _no_batch_fingerprint():
    """GX fingerprints every pandas batch under 1 GB with ``pd.util.hash_pandas_object`` (a batch marker in the
    result's meta, ~0.8 s for 3.4M events rows and read by nothing here); the expectations are evaluated the
    same without it."""
    from great_expectations.execution_engine import pandas_execution_engine as engine

    old = getattr(engine, "HASH_THRESHOLD", None)
    if old is None:
        yield
        return
    engine.HASH_THRESHOLD = 0
    try:
        yield
    finally:
        engine.HASH_THRESHOLD = old


def _exception_message(exception_info: dict | None) -> str | None:
    """GX nests exception info by metric id when a metric fails; flatten it to one message."""
    if not exception_info:
        return None
    if "raised_exception" in exception_info:
        return exception_info.get("exception_message") if exception_info.get("raised_exception") else None
    for info in exception_info.values():
        if isinstance(info, dict) and info.get("raised_exception"):
            return info.get("exception_message") or "expectation raised an exception"
    return None


def run_checks(suite_name: str, df: pd.DataFrame, checks: Sequence[Check]) -> list[Outcome]:
    """Validate ``df`` against ``checks`` in one GX run; outcomes come back in the order of ``checks``."""
    if not checks:
        return []
    gx = _gx()
    from great_expectations.validator.v1_validator import Validator

    with gx_session() as session, _no_batch_fingerprint():
        batch_def = session.batch_definition(suite_name)
        expectations = [
            getattr(gx.expectations, c.expectation_type)(**c.kwargs, meta={"check": i}, severity=c.severity)
            for i, c in enumerate(checks)
        ]
        suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
        # GX's own validator on the suite, as ValidationDefinition.run does, minus what that adds here: storing
        # suite, definition and results in the (ephemeral) stores, which serialises every unexpected index
        # and value (~1 s for the 96k fragments above their precursor in a 240-accession cohort). The batch
        # is built once (Batch.validate builds it twice).
        validator = Validator(
            batch_definition=batch_def, batch_parameters={"dataframe": df}, result_format=RESULT_FORMAT
        )
        result = validator.validate_expectation_suite(suite)

    outcomes: list[Outcome | None] = [None] * len(checks)
    for r in result.results:
        i = int(r.expectation_config.meta["check"])
        res = r.result or {}
        index_list = list(res.get("unexpected_index_list") or [])
        values = list(res.get("unexpected_list") or [])
        missing = list(res.get("partial_missing_list") or [])
        unexpected = res.get("unexpected_count")
        if unexpected is None:  # table-level / distinct-value expectations report other counts
            unexpected = int(res.get("missing_count") or 0) if missing else (0 if r.success else 1)
        outcomes[i] = Outcome(
            check=checks[i],
            expectation=r.expectation_config.type,
            success=bool(r.success),
            element_count=res.get("element_count"),
            unexpected_count=int(unexpected),
            index_list=index_list,
            values=values,
            missing_values=missing,
            error=_exception_message(r.exception_info),
        )
    missing_outcomes = [checks[i].label for i, o in enumerate(outcomes) if o is None]
    if missing_outcomes:  # should not happen; never report a check as passed that did not run
        raise RuntimeError(f"Great Expectations returned no result for {missing_outcomes}")
    return outcomes  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------- suites


def events_file_checks(one_accession_per_file: bool = True) -> list[Check]:
    """Checks on the per-file inventory (one row per Parquet file, or one for a DataFrame given directly)."""
    checks = [
        Check("file readable as Parquet", "ExpectColumnValuesToBeInSet", {"column": "read_error", "value_set": [""]}),
        Check(
            "canonical columns present",
            "ExpectColumnValuesToBeInSet",
            {"column": "missing_columns", "value_set": [""]},
        ),
        Check(
            "numeric columns have a numeric type",
            "ExpectColumnValuesToBeInSet",
            {"column": "non_numeric_columns", "value_set": [""]},
        ),
        Check("at least one row per accession", "ExpectColumnValuesToBeBetween", {"column": "rows", "min_value": 1}),
    ]
    if one_accession_per_file:
        checks.append(
            Check(
                "one accession per file",
                "ExpectColumnValuesToBeBetween",
                {"column": "accessions_in_file", "max_value": 1},
            )
        )
    return checks


def events_row_checks(
    event_columns: Sequence[str],
    polarities: Sequence[str],
    mz_range: tuple[float, float],
    fragment_tolerance_da: float,
    max_intensity: float = FLOAT_MAX,
    max_above_precursor_share: float = 0.0,
) -> list[Check]:
    """Row-level checks on the concatenated events table (which carries the derived ``fragment_excess``).

    What cannot be right fails (missing values, m/z out of range or negative, intensities negative, non-finite
    or above ``max_intensity``); what real instruments produce is a warning with a count (fragments of zero
    intensity). Fragments above their precursor (13C isotopes of the precursor, co-isolated ions) are physics:
    the cohort passes while at most ``max_above_precursor_share`` of its fragments are above (GX ``mostly``);
    :func:`accession_checks` applies the same share to each accession.
    """
    mz_min, mz_max = float(mz_range[0]), float(mz_range[1])
    checks = [Check(f"no missing values in {c}", "ExpectColumnValuesToNotBeNull", {"column": c}) for c in event_columns]
    for c in ("precursor_mz", "fragment_mz"):
        checks.append(
            Check(
                f"{c} within [{mz_min:g}, {mz_max:g}]",
                "ExpectColumnValuesToBeBetween",
                {"column": c, "min_value": mz_min, "max_value": mz_max},
            )
        )
    limit = min(float(max_intensity), FLOAT_MAX)
    for c in ("precursor_intensity", "fragment_intensity"):
        checks.append(
            Check(
                f"{c} >= 0, finite and <= {limit:g}",
                "ExpectColumnValuesToBeBetween",
                {"column": c, "min_value": 0.0, "max_value": limit},
            )
        )
    if "charge" in event_columns:
        checks.append(
            Check(
                f"charge within [1, {MAX_CHARGE}]",
                "ExpectColumnValuesToBeBetween",
                {"column": "charge", "min_value": 1, "max_value": MAX_CHARGE},
            )
        )
    checks.append(
        Check(
            "rt_min >= 0 and finite",
            "ExpectColumnValuesToBeBetween",
            {"column": "rt_min", "min_value": 0.0, "max_value": FLOAT_MAX},
        )
    )
    checks.append(
        Check(
            f"polarity in {{{', '.join(polarities)}}}",
            "ExpectColumnValuesToBeInSet",
            {"column": "polarity", "value_set": list(polarities)},
        )
    )
    checks.append(
        Check(
            "fragment_intensity > 0 (zero-intensity fragments carry no signal)",
            "ExpectColumnValuesToBeBetween",
            {"column": "fragment_intensity", "min_value": 0.0, "strict_min": True},
            severity="warning",
        )
    )
    share = float(max_above_precursor_share)
    checks.append(
        Check(
            f"fragment_mz <= singly charged precursor m/z + {float(fragment_tolerance_da):g} Da for at least "
            f"{100 * (1 - share):g}% of fragments",
            "ExpectColumnValuesToBeBetween",
            {"column": FRAGMENT_EXCESS, "max_value": float(fragment_tolerance_da), "mostly": 1.0 - share},
            context_columns=("precursor_mz", "fragment_mz"),
            per_row=False,
        )
    )
    return checks


ABOVE_SHARE = "above_precursor_share"


def accession_checks(max_above_precursor_share: float) -> list[Check]:
    """Per-accession judgement on the one-row-per-file summary: the share of fragments above the precursor
    (the row check's ``mostly``, applied to each accession)."""
    return [
        Check(
            f"share of fragments above the precursor <= {float(max_above_precursor_share):g} per accession",
            "ExpectColumnValuesToBeBetween",
            {"column": ABOVE_SHARE, "max_value": float(max_above_precursor_share)},
        )
    ]


def assays_checks(
    columns: Sequence[str],
    assays: Sequence[str] | None,
    accessions: Sequence[str] | None,
    accession_column: str = "accession",
) -> list[Check]:
    """Checks on assays.csv (all cells strings, empty cells None); only columns that exist get value checks."""
    present = set(columns)
    wanted = list(assays) if assays is not None else default_assay_columns(columns)
    checks = [Check(f"column '{c}' present", "ExpectColumnToExist", {"column": c}) for c in [accession_column, *wanted]]
    if accession_column in present:
        checks += [
            Check("accession not empty", "ExpectColumnValuesToNotBeNull", {"column": accession_column}),
            Check("accession unique", "ExpectColumnValuesToBeUnique", {"column": accession_column}),
        ]
        if accessions is not None:
            acc = sorted({str(a) for a in accessions})
            checks += [
                Check(
                    "accession has an events file",
                    "ExpectColumnValuesToBeInSet",
                    {"column": accession_column, "value_set": acc},
                ),
                Check(
                    "every events accession has assay values",
                    "ExpectColumnDistinctValuesToContainSet",
                    {"column": accession_column, "value_set": acc},
                ),
            ]
    for a in wanted:
        if a in present:
            checks += [
                # an empty cell is "not measured" (read_assays; training leaves that accession out of that assay):
                # a lab that has not run every assay on every extract is told how many, not stopped
                Check(
                    f"{a} measured (empty: not measured)",
                    "ExpectColumnValuesToNotBeNull",
                    {"column": a},
                    severity="warning",
                ),
                Check(
                    f"{a} a finite number",
                    "ExpectColumnValuesToMatchRegex",
                    {"column": a, "regex": FINITE_NUMBER_REGEX},
                ),
            ]
    return checks
