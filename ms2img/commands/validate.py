"""``ms2img validate``: Great Expectations checks on the events folder and assays.csv, with reports."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ms2img.params import DEFAULT_PARAMS_PATH, load_params

EXPORT_REPORTS = Path("validation")  # reports of lab exports checked before ingest: outside the pipeline's reports/


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "validate",
        help="validate the events table and assays.csv (Great Expectations); write HTML + JSON reports",
        description=(
            "Validate every events Parquet file in EVENTS_DIR and, with --assays, assays.csv. Failures name the "
            "file, the row (Parquet, 0-based) or line (CSV) and the expectation. Policy 'fail' exits non-zero on "
            "any failure; 'quarantine' moves failing accessions to EVENTS_DIR/../quarantine/ and goes on. A lab export "
            "(an MS-DIAL / MZmine / FBMN file or a folder of them) is read as `ms2img ingest` reads it (a "
            "sample_sheet.csv beside the folder, --sample-sheet, --mgf, params.yaml's ingest options) into the "
            "events folder beside its report (validation/<export name>/events/) first, so it can be checked before it "
            "enters a project and every failure names a file that can be opened."
        ),
    )
    p.add_argument(
        "events_dir", metavar="EVENTS_DIR", type=Path, help="folder of <accession>.parquet files, or a lab export"
    )
    p.add_argument("--assays", type=Path, default=None, help="assays.csv (accession + one column per assay)")
    p.add_argument(
        "--sample-sheet", default=None, metavar="CSV",
        help="lab export only: as `ms2img ingest --sample-sheet` (default: sample_sheet.csv beside an export folder)",
    )  # fmt: skip
    p.add_argument("--mgf", default=None, metavar="MGF", help="lab export only: the quant table's MGF, as ingest's")
    p.add_argument(
        "--report-dir", type=Path, default=None,
        help="where validation.{json,html} go (default: reports/ for an events folder, the pipeline's; "
        f"{EXPORT_REPORTS}/<export name>/ for a lab export, so checking one never overwrites a project's report)",
    )  # fmt: skip
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
    if _is_events_folder(args.events_dir):
        report_dir = args.report_dir or Path("reports")
        report = run_validation(args.events_dir, args.assays, report_dir, **opts)  # raises ValidationFailed
    else:
        report = _validate_export(args, params, opts)
    s = report.summary()
    print(report.message)
    print(
        f"  {s['files']} file(s), {s['rows']:,} rows, {s['evaluated_expectations']} expectations, "
        f"{s['quarantined']} quarantined, {s['accessions_remaining']} accession(s) remaining"
    )
    print(f"  report: {report.html_path}")
    print(f"  json:   {report.json_path}")
    return 0


def _is_events_folder(path: Path) -> bool:
    """A folder holding events Parquet files (what ``ms2img ingest`` writes), as opposed to a lab's raw export."""
    return path.is_dir() and any(path.glob("*.parquet"))


def _validate_export(args: argparse.Namespace, params: dict, opts: dict):
    """Ingest the lab export ``args.events_dir`` (a file or folder) exactly as ``ms2img ingest`` would (the same sample
    sheet discovery, lone-export splitting and params.yaml ``ingest`` options) into the events folder beside its
    report, and validate that."""
    from ms2img.commands.ingest import ingest_options, ingest_plan, source_lines
    from ms2img.errors import ConfigError, Ms2ImgError
    from ms2img.io.ingest import ingest
    from ms2img.validation import run_validation
    from ms2img.validation.report import write_read_failure

    export = args.events_dir
    if opts.get("policy") == "quarantine":
        raise ConfigError(f"{export}: --policy quarantine moves files of an events folder; ingest the export first")
    inputs, sheet, notes = ingest_plan([str(export)], args.sample_sheet)
    options = ingest_options(params.get("ingest"))
    report_dir = args.report_dir or EXPORT_REPORTS / (Path(export).resolve().name or "export")
    # the events go beside the report, not into a temporary folder: every failure names an events file and its
    # rows, and a deleted /tmp/ms2img-validate-*/events/X.parquet cannot be opened to see them
    events = Path(report_dir) / "events"
    folder = Path(export).resolve()
    if folder.is_dir() and events.resolve().is_relative_to(folder):  # ingest would refuse, naming an '--out'
        raise ConfigError(
            f"{export}: its report and events would go to {report_dir}, inside the export folder itself; run "
            "`ms2img validate` from outside the folder, or pass --report-dir DIR outside it"
        )
    try:
        summary = ingest(inputs, events, sample_sheet=sheet, mgf=args.mgf, replace=True, **options)
    except Ms2ImgError as exc:  # the last report must not go on saying 'passed' about an export that no longer reads
        if Path(export).exists() or Path(report_dir).exists():  # a mistyped path gets no report folder of its own
            write_read_failure(exc, export, report_dir, opts.get("policy", "fail"))
        raise
    print(f"{export}: a lab export, read as `ms2img ingest` would ({summary.files} file(s), "
          f"{summary.accessions} accession(s), {summary.events:,} events) into {events}; validating them")  # fmt: skip
    lines = notes + summary.fact_lines() + summary.found_lines() + source_lines(events, options["sample_types"])
    lines += summary.warning_lines()
    for line in lines:
        print(line)
    return run_validation(events, args.assays, report_dir, **opts)
