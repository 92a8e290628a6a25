"""Data validation (Great Expectations 1.x suites, reports, fail | quarantine policy).

The implementation lives in :mod:`ms2img.validation` (suites, runner, report); this module is the stable name
the architecture uses. Great Expectations itself is imported only when a validation runs.
"""

from ms2img.validation import (
    POLICIES,
    Failure,
    ValidationReport,
    ValidationResult,
    options_from_params,
    quarantine_dir_for,
    read_csv_strings,
    render_html,
    run_validation,
    validate_assays,
    validate_events,
    write_reports,
)

__all__ = [
    "POLICIES",
    "Failure",
    "ValidationReport",
    "ValidationResult",
    "options_from_params",
    "quarantine_dir_for",
    "read_csv_strings",
    "render_html",
    "run_validation",
    "validate_assays",
    "validate_events",
    "write_reports",
]
