"""``ms2img synth --out DIR``: write the synthetic cohort (one MS-DIAL export per accession, assays, truth)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ms2img.commands import add_params_args, params_from_args
from ms2img.errors import ConfigError
from ms2img.params import DEFAULT_PARAMS_PATH


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``synth`` subcommand."""
    p = subparsers.add_parser(
        "synth",
        help="write a synthetic cohort: MS-DIAL exports built from real reference spectra + assays.csv",
        description=(
            "Write OUT/exports/ACC0001.txt ... (MS-DIAL v4 alignment exports: replicates, a blank and a QC "
            "column, injection batches of 40) and OUT/assays.csv (accession, DPPH, elastase, TFC, TPC) whose "
            "values depend on the chemistry of each accession, plus OUT/truth.csv (the planted actives per assay: "
            "assay, compound, precursor_mz, rt_min, weight, library_name), OUT/latent.csv (the chemistry per "
            "accession) and OUT/cohort.json. Deterministic from --seed. Defaults come from params.yaml's synth "
            "section; flags override them."
        ),
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--accessions", type=int, default=None, metavar="N", help="accessions to write (default 200)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    p.add_argument("--replicates", type=int, default=None, help="replicate injections per accession (default 3)")
    p.add_argument(
        "--polarity", choices=["negative", "positive"], default=None, help="ionisation mode (default negative)"
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="add N new accessions to an existing cohort in OUT (numbering continues, old files untouched)",
    )
    p.add_argument("--force", action="store_true", help="replace an earlier cohort in a non-empty OUT")
    add_params_args(p)
    p.set_defaults(func=run)


def _synth_params(args: argparse.Namespace) -> dict[str, Any]:
    """params.yaml's synth section when there is a params file; empty when the default path is absent."""
    if args.params == DEFAULT_PARAMS_PATH and not Path(args.params).exists():
        return {}
    return params_from_args(args).get("synth", {}) or {}


def run(args: argparse.Namespace) -> int:
    """Generate the cohort and print a summary (accessions, size, precursors, class counts)."""
    from ms2img.synth import make_cohort

    if args.append and args.force:
        raise ConfigError("--append and --force exclude each other")
    params = _synth_params(args)

    def pick(name: str, default: Any) -> Any:
        value = getattr(args, name)
        return value if value is not None else params.get(name, default)

    summary = make_cohort(
        args.out,
        accessions=pick("accessions", 200),
        replicates=pick("replicates", 3),
        seed=pick("seed", 42),
        append=args.append,
        polarity=pick("polarity", "negative"),
        force=args.force,
        progress=True,
    )
    print(summary.format())
    return 0
