"""``ms2img features EVENTS_DIR``: events -> merged feature tables (one per MS/MS similarity) for the baselines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ms2img.commands import add_params_args, params_from_args
from ms2img.errors import ConfigError
from ms2img.params import DEFAULT_PARAMS_PATH


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``features`` subcommand."""
    p = subparsers.add_parser(
        "features",
        help="merge features within and across accessions into feature tables (cosine / entropy) for the baselines",
        description=(
            "Collapse the events into one MS/MS spectrum per precursor, merge redundant features within each "
            "accession, then common features across accessions when the mean of the MS1, RT and MS/MS "
            "similarities exceeds the threshold (the paper's recipe), and write table_<method>.parquet "
            "(accessions x features, replicate means, 0 = absent), features_<method>.parquet, "
            "members_<method>.parquet and stats_<method>.json per method. Defaults come from params.yaml's "
            "features section; flags override them."
        ),
    )
    p.add_argument("events_dir", type=Path, metavar="EVENTS_DIR", help="folder of events Parquet files (ingest)")
    p.add_argument("--out", type=Path, default=Path("data/features"), help="output folder (default: data/features)")
    p.add_argument(
        "--methods", default=None, metavar="M,...", help="MS/MS similarities: cosine,entropy (default: both)"
    )
    p.add_argument("--mz-tol-ppm", type=float, default=None, metavar="PPM", help="m/z search tolerance (default 10)")
    p.add_argument(
        "--rt-tol", type=float, default=None, metavar="MIN", help="RT sigma / tolerance in min (default 0.3)"
    )
    p.add_argument("--threshold", type=float, default=None, help="merge when the mean score exceeds this (default 0.8)")
    p.add_argument(
        "--mz-sigma-ppm",
        type=float,
        default=None,
        metavar="PPM",
        help="fix the MS1 sigma (default: estimated, mz-sigma-factor x the empirical SD of same-ion m/z differences)",
    )
    p.add_argument(
        "--mz-sigma-factor", type=float, default=None, help="MS1 sigma = factor x empirical SD (default 2; 1 = literal)"
    )
    p.add_argument("--ms2-tol-da", type=float, default=None, metavar="DA", help="fragment match tolerance (0.02)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_params_args(p)
    p.set_defaults(func=run)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """params.yaml's features section when there is one; built-in defaults when the default path is absent."""
    if args.params == DEFAULT_PARAMS_PATH and not Path(args.params).exists():
        return {}
    return params_from_args(args).get("features", {}) or {}


def _pick(flag: Any, params: dict[str, Any], key: str, default: Any) -> Any:
    return flag if flag is not None else params.get(key, default)


def run(args: argparse.Namespace) -> int:
    """Build and save the tables, and print one line per method."""
    from ms2img.features import table as F

    fp = _params(args)
    if args.methods is not None:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    else:
        similarity = fp.get("similarity", list(F.METHODS))
        methods = [similarity] if isinstance(similarity, str) else list(similarity)
    if not methods:
        raise ConfigError("--methods: give at least one of cosine, entropy")
    try:
        kwargs = {
            "mz_tol_ppm": float(_pick(args.mz_tol_ppm, fp, "mz_tol_ppm", F.DEFAULT_MZ_TOL_PPM)),
            "rt_tol_min": float(_pick(args.rt_tol, fp, "rt_tol_min", F.DEFAULT_RT_TOL_MIN)),
            "threshold": float(_pick(args.threshold, fp, "threshold", F.DEFAULT_THRESHOLD)),
            "ms2_tol_da": float(_pick(args.ms2_tol_da, fp, "ms2_tol_da", F.DEFAULT_MS2_TOL_DA)),
            "mz_sigma_factor": float(_pick(args.mz_sigma_factor, fp, "mz_sigma_factor", F.DEFAULT_MZ_SIGMA_FACTOR)),
        }
        sigma = _pick(args.mz_sigma_ppm, fp, "mz_sigma_ppm", None)
        kwargs["mz_sigma_ppm"] = None if sigma is None else float(sigma)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params.yaml features section: not a number ({exc})") from None
    tables = F.build_feature_tables(
        args.events_dir, args.out, methods=methods, progress=False if args.no_progress else None, **kwargs
    )
    for method, table in tables.items():
        st = table.stats
        print(
            f"wrote {F.FeatureTable.paths(args.out, method)['table']}: {st['n_accessions']} accessions x "
            f"{st['n_features']} features from {st['n_input_spectra']} spectra "
            f"({st['candidate_pairs']} candidate pairs, m/z sigma {st['mz_sigma_ppm']:.2f} ppm "
            f"{st['mz_sigma_source']}, {st['seconds']:.1f} s)"
        )
    return 0
