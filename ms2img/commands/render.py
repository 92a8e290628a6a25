"""``ms2img render EVENTS_DIR``: events Parquet files -> MS2toImg image tensors (``.npz``) and optional PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ms2img.commands import add_params_args, params_from_args
from ms2img.errors import ConfigError
from ms2img.params import DEFAULT_PARAMS_PATH
from ms2img.render import AGGREGATIONS, IMAGES_ROOT, PNG_GAMMA, TRANSFORMS, RenderConfig, images_path, parse_size


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``render`` subcommand."""
    p = subparsers.add_parser(
        "render",
        help="render the events into MS2toImg fingerprint images (precursor m/z x fragment m/z)",
        description=(
            "Bin every accession's MS/MS events into a W x H image (x: precursor m/z 100-1500, y: fragment m/z "
            "0-1500; pixel = precursor intensity scaled in the sample x fragment intensity scaled in its precursor; "
            "replicates averaged; pixels above the diagonal zero) and write the tensors with their bin edges to a "
            ".npz. Defaults come from params.yaml's render section; flags override them."
        ),
    )
    p.add_argument("events_dir", type=Path, metavar="EVENTS_DIR", help="folder of events Parquet files (ingest)")
    p.add_argument("--out", type=Path, default=None, help="output .npz (default: data/images/<WxH>.npz)")
    p.add_argument("--size", default=None, metavar="WxH", help="image size, e.g. 150x140 (default: render.size)")
    p.add_argument(
        "--sizes",
        nargs="?",
        const="params",
        default=None,
        metavar="WxH,...",
        help="render several sizes in one pass into --out-dir/<WxH>.npz, e.g. 75x70,150x140,300x280 "
        "(no value: render.sizes from params.yaml)",
    )
    p.add_argument("--out-dir", type=Path, default=None, help="output folder for --sizes (default: data/images)")
    p.add_argument("--aggregation", default=None, help=f"per-pixel aggregation: {' | '.join(AGGREGATIONS)}")
    p.add_argument("--transform", default=None, help=f"intensity transform before scaling: {' | '.join(TRANSFORMS)}")
    p.add_argument(
        "--per-replicate",
        action="store_true",
        default=None,
        help="one image per replicate instead of one per accession (replicates averaged)",
    )
    p.add_argument("--ppm-jitter", type=float, default=None, metavar="PPM", help="Gaussian m/z error (augmentation)")
    p.add_argument("--seed", type=int, default=None, help="seed for --ppm-jitter (default: base.seed)")
    p.add_argument(
        "--png-dir",
        type=Path,
        default=None,
        help="also write 8-bit grayscale PNGs here, for people to look at (high fragment m/z at the top; several "
        "sizes: one <WxH>/ folder each). Each run's PNGs replace the earlier ones of the same size",
    )
    p.add_argument("--png-limit", type=int, default=None, metavar="N", help="write at most N PNGs (default: all)")
    p.add_argument(
        "--png-gamma",
        type=float,
        default=PNG_GAMMA,
        metavar="G",
        help="display gamma for the PNGs (default: %(default)s): pixel = 255 * (value / image max) ** G. Below 1 it "
        "lifts the many faint fragments that a linear scale (G = 1) leaves almost black next to the brightest one. "
        "Only the PNGs change: the .npz tensors stay linear",
    )
    add_params_args(p)
    p.set_defaults(func=run)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    """params.yaml when there is one; built-in defaults when the default path is absent."""
    if args.params == DEFAULT_PARAMS_PATH and not Path(args.params).exists():
        print(f"no {DEFAULT_PARAMS_PATH} here: the renderer's built-in defaults (and the flags) apply")
        return {}
    return params_from_args(args)


def _parse_sizes(text: str | list[str]) -> list[tuple[int, int]]:
    items = text if isinstance(text, list) else [s for s in str(text).split(",") if s.strip()]
    if not items:
        raise ConfigError("--sizes: give at least one size, e.g. 75x70,150x140,300x280")
    return list(dict.fromkeys(parse_size(s) for s in items))


def run(args: argparse.Namespace) -> int:
    """Render, save, and print what was written.

    The image folder (``--sizes``) and the PNG folder are each built aside and swapped in as one step, so a run
    that fails or is killed leaves them as they were, and the next run removes what it left behind.
    """
    import numpy as np

    from ms2img.render import check_output_folder, render_files, write_image_folder, write_png_folder

    params = _params(args)
    render_params = params.get("render", {}) or {}
    if args.png_limit is not None and args.png_limit < 0:
        raise ConfigError(f"--png-limit must be >= 0, got {args.png_limit}")
    if not (np.isfinite(args.png_gamma) and args.png_gamma > 0):
        raise ConfigError(f"--png-gamma must be a number > 0 (1 = linear), got {args.png_gamma}")
    config = RenderConfig.from_params(
        render_params,
        size=args.size,
        aggregation=args.aggregation,
        transform=args.transform,
        per_replicate=args.per_replicate,
        ppm_jitter=args.ppm_jitter,
    )
    out_dir = None
    if args.sizes is not None:
        if args.out is not None:
            raise ConfigError("--out names one file; with --sizes use --out-dir")
        if args.size is not None:
            raise ConfigError("give either --size or --sizes, not both")
        if args.sizes == "params":
            sizes = _parse_sizes(list(render_params.get("sizes") or []))
        else:
            sizes = _parse_sizes(args.sizes)
        out_dir = check_output_folder(args.out_dir or IMAGES_ROOT, "images")
        configs = [config.with_size(s) for s in sizes]
    else:
        if args.out_dir is not None:
            raise ConfigError("--out-dir goes with --sizes; for one size use --out")
        configs = [config]
        out = args.out or images_path(config.size)
        if out.is_dir():
            raise ConfigError(f"--out {out}: is a folder; give the .npz file to write")
    if args.png_dir is not None:
        check_output_folder(args.png_dir, "pngs")
    seed = args.seed if args.seed is not None else (params.get("base", {}) or {}).get("seed", 42)
    rng = np.random.default_rng(seed) if config.ppm_jitter > 0 else None

    outside: dict[str, int] = {}
    sets = render_files(args.events_dir, configs, rng=rng, outside=outside)
    if out_dir is not None:
        outs = list(write_image_folder(sets, out_dir).values())
    else:
        outs = [sets[0].save(out)]
    for cfg, images, path in zip(configs, sets, outs, strict=True):
        unit = "replicate" if cfg.per_replicate else "accession"
        print(
            f"wrote {path}: {len(images)} images ({unit}s), {cfg.size} (W x H), aggregation={cfg.aggregation}, "
            f"transform={cfg.transform}"
        )
    (x_lo, x_hi), (y_lo, y_hi) = config.x_range, config.y_range
    if outside.get("precursor"):
        print(f"  left out: {outside['precursor']:,} fragment events of precursors outside m/z {x_lo:g}-{x_hi:g}")
    if outside.get("fragment"):
        print(f"  left out: {outside['fragment']:,} fragments outside m/z {y_lo:g}-{y_hi:g}")
    if args.png_dir is not None:
        written = write_png_folder(sets, args.png_dir, limit=args.png_limit, gamma=args.png_gamma)
        for folder, n in written.values():
            print(f"wrote {n} PNGs to {folder} (display gamma {args.png_gamma:g}; tensors stay linear)")
    return 0
