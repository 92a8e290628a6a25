"""Great Expectations validation of the events table and assays.csv, with JSON + HTML reports."""

from ms2img.validation.report import Failure, ValidationReport, ValidationResult, render_html, write_reports
from ms2img.validation.runner import (
    POLICIES,
    options_from_params,
    quarantine_dir_for,
    read_csv_strings,
    run_validation,
    validate_assays,
    validate_events,
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
