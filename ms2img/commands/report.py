"""``ms2img report``: one self-contained HTML report of every assay, family and stage output."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def _units(pairs: list[str] | None) -> dict[str, str]:
    from ms2img.errors import ConfigError

    out = {}
    for pair in pairs or []:
        assay, sep, units = pair.partition("=")
        if not sep or not assay:
            raise ConfigError(f"--units takes ASSAY=UNITS (e.g. 'DPPH=% scavenging'), got {pair!r}")
        out[assay.strip()] = units.strip()
    return out


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write the paper's tables and figures for every assay as one self-contained HTML report",
        description=(
            "Read metrics/<assay>.json, reports/<assay>/{oof,folds}.csv, selection.json, drivers.csv, plots/<assay>/, "
            "reports/drift.json, reports/validation.json, params.yaml and the DVC hash of data/raw, and write one "
            "HTML file with every figure embedded (Table 1, Table 2, Figures 3-5, drivers, drift, data version, "
            "validation, parameters). Missing pieces show a 'not run' note. The report is logged to MLflow when "
            "the tracking store is reachable (--no-track to skip)."
        ),
    )
    p.add_argument(
        "--out", type=Path, default=None,
        help="the HTML file to write (default: report/index.html, the pipeline's; not under reports/, which the "
        "report reads)",
    )  # fmt: skip
    p.add_argument("--root", type=Path, default=Path("."), help="project folder the stage outputs are under")
    p.add_argument("--assay", action="append", default=None, help="only these assays (repeatable; default: all)")
    p.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    p.add_argument("--reports-dir", type=Path, default=Path("reports"))
    p.add_argument("--plots-dir", type=Path, default=Path("plots"))
    p.add_argument(
        "--models-dir", type=Path, default=Path("models"), help="saved models (their cards give thresholds and counts)"
    )
    p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params.yaml shown in the report")
    p.add_argument(
        "--units", action="append", default=None, metavar="ASSAY=UNITS", help="axis units, e.g. 'DPPH=%% scavenging'"
    )
    p.add_argument("--pdf", action="store_true", help="also write the figures as a PDF next to the HTML")
    p.add_argument("--title", default="ms2img report")
    p.add_argument("--no-track", action="store_true", help="do not log the report to MLflow")
    p.add_argument("--experiment", default="ms2img-report", help="MLflow experiment for the report run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ms2img.errors import ConfigError
    from ms2img.report import REPORT_PATH, build_report, log_report
    from ms2img.report.collect import data_version

    result = build_report(
        args.root,
        args.out or REPORT_PATH,
        assays=args.assay,
        metrics_dir=args.metrics_dir,
        reports_dir=args.reports_dir,
        plots_dir=args.plots_dir,
        models_dir=args.models_dir,
        params_path=args.params,
        units=_units(args.units),
        pdf=args.pdf,
        title=args.title,
    )
    print(
        f"report: {result.path} ({len(result.assays)} assay(s), {len(result.families)} families, "
        f"{result.n_figures} figures)"
    )
    if result.pdf_path:
        print(f"pdf:    {result.pdf_path}")
    if result.missing:
        shown = ", ".join(str(m) for m in result.missing[:4]) + (", ..." if len(result.missing) > 4 else "")
        print(f"  {len(result.missing)} input(s) absent or unreadable, marked 'not run' in the report: {shown}")
    if not args.no_track:
        try:
            run_id = log_report(result, experiment=args.experiment, data_version=data_version(args.root)[0])
            print(f"  logged to MLflow run {run_id} (experiment {args.experiment})")
        except ConfigError as exc:  # an unreachable server: the report itself is written
            print(f"  not logged to MLflow: {exc}")
        except Exception as exc:  # noqa: BLE001 - a broken local store must not fail the report either
            log.warning("report not logged to MLflow: %s: %s", exc.__class__.__name__, exc)
            print(f"  not logged to MLflow ({exc.__class__.__name__}: {exc})")
    return 0
