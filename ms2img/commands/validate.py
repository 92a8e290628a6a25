"""``ms2img validate``: Great Expectations checks on the events folder and assays.csv, with reports."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ms2img.params import DEFAULT_PARAMS_PATH, load_params


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="validate the events table and assays.csv (Great Expectations); write HTML + JSON reports",
        description=(
            "Validate every events Parquet file in EVENTS_DIR and, with --assays, assays.csv. Failures name the "
            "file, the row (Parquet, 0-based) or line (CSV) and the expectation. Policy 'fail' exits non-zero on "
            "any failure; 'quarantine' moves failing accessions to EVENTS_DIR/../quarantine/ and goes on."
        ),
    )
    p.add_argument("events_dir", metavar="EVENTS_DIR", type=Path, help="folder of <accession>.parquet files")
    p.add_argument("--assays", type=Path, default=None, help="assays.csv (accession + one column per assay)")
    p.add_argument("--report-dir", type=Path, default=Path("reports"), help="where validation.{json,html} go")
    p.add_argument("--policy", choices=["fail", "quarantine"], default=None, help="overrides validate.policy")
    p.add_argument(
        "--params", type=Path, default=None, help="params.yaml (default: ./params.yaml when present, else defaults)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img.validation import options_from_params, run_validation

    if not getattr(args, "verbose", False):  # GX logs a line per ephemeral context at INFO
        logging.getLogger("great_expectations").setLevel(logging.WARNING)

    if args.params is not None or DEFAULT_PARAMS_PATH.exists():
        params = load_params(args.params or DEFAULT_PARAMS_PATH)
    else:
        params = {}
    opts = options_from_params(params)
    if args.policy:
        opts["policy"] = args.policy
    report = run_validation(args.events_dir, args.assays, args.report_dir, **opts)  # raises ValidationFailed
    s = report.summary()
    print(report.message)
    print(
        f"  {s['files']} file(s), {s['rows']:,} rows, {s['evaluated_expectations']} expectations, "
        f"{s['quarantined']} quarantined, {s['accessions_remaining']} accession(s) remaining"
    )
    print(f"  report: {report.html_path}")
    print(f"  json:   {report.json_path}")
    return 0
