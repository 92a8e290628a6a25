"""``ms2img ingest INPUT... --out DIR``: raw exports -> one events Parquet per accession + samples.csv.

What a lab has is taken as it comes: a ``sample_sheet.csv`` beside an input folder (``data/raw/sample_sheet.csv``
for ``data/raw/exports``) is used without a flag, and a folder holding a single MS-DIAL alignment export is split
into its sample columns (one export per accession only when the folder holds several). The printout says how
each file became accessions and hints when sample columns look like replicate injections of one extract.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ms2img.commands import add_params_args
from ms2img.errors import ConfigError
from ms2img.io.fbmn import JOIN_MZ_TOL_DA, RT_UNITS
from ms2img.io.ingest import ingest
from ms2img.io.inputs import folder_files, sniff
from ms2img.io.sample_sheet import (
    SHEET_NAME,
    describe_sources,
    mixed_class_warnings,
    read_manifest,
    replicate_hint,
    sheet_has_rows,
)
from ms2img.io.schema import SAMPLE_TYPES
from ms2img.params import DEFAULT_PARAMS_PATH, load_params

DEFAULTS = {
    "sample_types": ["Sample"],
    "blank_subtraction": False,
    "blank_fold": 5.0,
    "join_mz_tol_da": JOIN_MZ_TOL_DA,
    "rt_unit": "auto",
    "allow_mixed_polarity": False,
    "polarity": "auto",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``ingest`` subcommand."""
    p = subparsers.add_parser(
        "ingest",
        help="read MS-DIAL exports, MZmine quant CSV + MGF, or mzML/mzXML into the canonical events table",
        description=(
            "Read inputs (files or folders) and write OUT/<accession>.parquet for every training sample and "
            "OUT/samples.csv listing all samples (incl. blanks and QC). Several MS-DIAL exports (in a folder or "
            "named) are one export per accession; a single export (named, or alone in its folder) makes each sample "
            "column an accession unless a sample sheet maps it. A sample_sheet.csv beside an input folder is used "
            "unless --sample-sheet or --no-sample-sheet says otherwise. Blanks and QCs never train. OUT is built "
            "aside and swapped in as one step: nothing in it changes "
            "when an "
            "input is bad or the run is killed, and accessions it holds that the inputs do not are removed only "
            "with --replace."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="MS-DIAL .txt, quant .csv, .mzML, .mzXML, or a folder")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for the events Parquet files")
    p.add_argument(
        "--sample-sheet",
        metavar="CSV",
        help=f"CSV with sample, accession[, replicate, type, class] (default: {SHEET_NAME} beside an input folder, "
        "e.g. data/raw/sample_sheet.csv for data/raw/exports, when it lists samples)",
    )
    p.add_argument(
        "--no-sample-sheet",
        action="store_true",
        help=f"do not pick up a {SHEET_NAME} beside the input folder, nor a sample metadata table among the inputs",
    )
    p.add_argument("--mgf", metavar="MGF", help="MGF for the quant table (default: same stem as the table)")
    p.add_argument(
        "--sample-types",
        metavar="TYPES",
        help="comma-separated types that become training samples: Sample and/or QC (params: ingest.sample_types)",
    )
    p.add_argument(
        "--blank-subtraction",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop a feature from a sample when its height < fold x max blank height (params: ingest.*)",
    )
    p.add_argument("--blank-fold", type=float, metavar="X", help="fold for --blank-subtraction (params: 5.0)")
    p.add_argument(
        "--metadata",
        metavar="TABLE",
        help="GNPS/FBMN sample metadata (filename + ATTRIBUTE_* columns) or FERMO (sample_name, attribute), used "
        "like a sample sheet; numeric *activ* attributes become assays",
    )
    p.add_argument(
        "--assays-out",
        metavar="CSV",
        help="write accession + one column per assay from the activity rows/columns of bioactivity-guided layouts",
    )
    p.add_argument(
        "--join-mz-tol-da",
        type=float,
        metavar="DA",
        help=f"quant table m/z vs MGF PEPMASS: larger differences fail (params: ingest.join_mz_tol_da, "
        f"{JOIN_MZ_TOL_DA:g})",
    )
    p.add_argument(
        "--rt-unit",
        choices=RT_UNITS,
        help="quant table RT unit; auto decides from the MGF's RT, else the values (params: ingest.rt_unit)",
    )
    p.add_argument(
        "--allow-mixed-polarity",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ingest positive and negative ions together (refused by default; params: ingest.allow_mixed_polarity)",
    )
    p.add_argument(
        "--polarity",
        choices=("auto", "positive", "negative"),
        help="the ion mode, for inputs that do not say (MZmine quant tables): their ions take it, so serving can "
        "refuse requests of the other mode; auto: as the inputs say (params: ingest.polarity)",
    )
    p.add_argument(
        "--replace",
        action="store_true",
        help="let ingest remove accessions (and other files) that OUT holds and the inputs no longer do",
    )
    add_params_args(p)
    p.set_defaults(func=run)


def parse_types(text: str) -> tuple[str, ...]:
    """``"sample,qc"`` -> ``("Sample", "QC")``."""
    canonical = {t.lower(): t for t in SAMPLE_TYPES}
    out = []
    for part in (t.strip() for t in text.split(",")):
        if part.lower() not in canonical:
            raise ConfigError(f"--sample-types: unknown type '{part}' (choose from Sample, QC)")
        out.append(canonical[part.lower()])
    return tuple(dict.fromkeys(out))


def settings(args: argparse.Namespace) -> dict:
    """Command-line flags over params.yaml's ``ingest`` section over built-in defaults.

    A missing ./params.yaml is fine (ingest works outside a project); a missing ``--params FILE`` is an error.
    """
    params_path = Path(args.params)
    section = {}
    if params_path.exists() or params_path != DEFAULT_PARAMS_PATH:
        section = load_params(params_path).get("ingest") or {}
    flags = ("sample_types", "blank_subtraction", "blank_fold", "join_mz_tol_da", "rt_unit", "allow_mixed_polarity",
             "polarity")  # fmt: skip
    return ingest_options(section, **{k: getattr(args, k, None) for k in flags})


def ingest_options(section: Mapping[str, Any] | None, **flags: Any) -> dict:
    """``flags`` that are not None over params.yaml's ``ingest`` ``section`` over built-in defaults, checked: the
    options ``ms2img ingest`` (and ``ms2img validate`` on a lab export) reads with."""
    merged = {**DEFAULTS, **{k: v for k, v in (section or {}).items() if k in DEFAULTS}}
    merged.update({k: v for k, v in flags.items() if v is not None and k in DEFAULTS})
    types = merged["sample_types"]
    merged["sample_types"] = parse_types(types if isinstance(types, str) else ",".join(map(str, types)))
    merged["blank_fold"] = float(merged["blank_fold"])
    merged["blank_subtraction"] = bool(merged["blank_subtraction"])
    try:
        merged["join_mz_tol_da"] = float(merged["join_mz_tol_da"])
    except (TypeError, ValueError):
        raise ConfigError(f"ingest.join_mz_tol_da must be a number of Da, got {merged['join_mz_tol_da']!r}") from None
    merged["rt_unit"] = str(merged["rt_unit"])
    if not isinstance(merged["allow_mixed_polarity"], bool):
        raise ConfigError(f"ingest.allow_mixed_polarity must be true or false, got {merged['allow_mixed_polarity']!r}")
    return merged


def found_sample_sheet(inputs: list[str]) -> Path | None:
    """``sample_sheet.csv`` beside the first input folder that has one (``data/raw`` for ``data/raw/exports``)."""
    for item in inputs:
        p = Path(item)
        if p.is_dir() and (p.resolve().parent / SHEET_NAME).is_file():
            return p.parent / SHEET_NAME
    return None


def split_lone_exports(inputs: list[str]) -> list[str]:
    """A folder holding exactly one MS-DIAL export: that export named on its own, then the folder, whose other files
    are read or skipped as a folder's are (a side table beside the export is skipped, not refused). A lone named
    export's sample columns become accessions; several named exports (two such folders too) are one export per
    accession, as :func:`ms2img.io.inputs.plan` reads named exports; a folder of several stays one per accession."""
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if not p.is_dir():
            out.append(item)
            continue
        exports = [f for f in folder_files(p) if sniff(f) == "msdial"]
        if len(exports) == 1:
            out += [str(exports[0]), item]
        else:
            out.append(item)
    return out


def ingest_plan(
    inputs: list[str], sample_sheet: str | None = None, metadata: str | None = None, no_sample_sheet: bool = False
) -> tuple[list[str], str | None, list[str]]:
    """What ``ms2img ingest`` reads: ``(inputs, sample sheet, notes)``, lone MS-DIAL exports split into their sample
    columns (:func:`split_lone_exports`) and the sample sheet given, or found beside an input folder; ``notes`` are
    lines to print. ``ms2img validate`` on a lab export reads it the same way."""
    notes = []
    if sample_sheet is None and metadata is None and not no_sample_sheet:
        found = found_sample_sheet(inputs)
        if found is not None and sheet_has_rows(found):
            sample_sheet = str(found)
            notes.append(f"  sample sheet: {found}")
        elif found is not None:
            notes.append(f"  sample sheet: {found} lists no samples (header only); each sample column is an accession")
    return split_lone_exports(inputs), sample_sheet, notes


def source_lines(out_dir: str | Path, sample_types: tuple[str, ...]) -> list[str]:
    """How each input became accessions, a replicate hint and mixed-class warnings, read from OUT's manifest."""
    manifest = read_manifest(out_dir)
    if manifest is None:
        return []
    lines = [f"  {line}" for line in describe_sources(manifest, sample_types)]
    hint = replicate_hint(manifest, sample_types)
    lines += [f"  hint: {hint}"] if hint else []
    return lines + [f"  warning: {w}" for w in mixed_class_warnings(manifest, sample_types)]


def run(args: argparse.Namespace) -> int:
    """Ingest and print a short summary: how files became accessions, and a replicate hint when one applies."""
    inputs, sheet, notes = ingest_plan(args.inputs, args.sample_sheet, args.metadata, args.no_sample_sheet)
    options = settings(args)
    summary = ingest(
        inputs,
        args.out,
        sample_sheet=sheet,
        mgf=args.mgf,
        metadata=args.metadata,
        assays_out=args.assays_out,
        replace=args.replace,
        find_metadata=not args.no_sample_sheet,
        **options,
    )
    print(summary.format())
    for line in notes + source_lines(args.out, options["sample_types"]):
        print(line)
    return 0
