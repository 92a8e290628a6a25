"""Rendering speed: ms2img's direct binning against the paper's recipe (matplotlib scatter at 600 dpi + resize).

Quality bar (docs/architecture.md): at least 1000x faster than the paper's recipe on the same sample, measured in
one run, and cost linear in the number of fragments. Run: ``python benchmarks/render.py`` (prints numbers).

The paper's recipe is timed two ways: faithful (figure saved at 600 dpi as PNG into memory, decoded, resized, as
the paper's image files were, minus the disk) and drawing only (raw Agg canvas, no PNG), so the ratio can be read
against either.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.io.schema import coerce_events, write_events
from ms2img.render import RenderConfig, render_arrays, render_events, render_paper_recipe


def synthetic_sample(n_precursors: int, n_fragments: int, seed: int = 0) -> pd.DataFrame:
    """One sample in the canonical events layout: log-normal intensities, fragments below their precursor."""
    rng = np.random.default_rng(seed)
    pmz = rng.uniform(100, 1500, n_precursors)
    pint = rng.lognormal(10, 2, n_precursors)
    fmz = (rng.uniform(0.05, 1.0, (n_precursors, n_fragments)) * pmz[:, None]).ravel()
    fint = rng.lognormal(5, 1, n_precursors * n_fragments)
    idx = np.repeat(np.arange(n_precursors), n_fragments)
    return coerce_events(
        pd.DataFrame(
            {
                "accession": "BENCH",
                "replicate": "r1",
                "feature_id": np.char.add("f", idx.astype(str)),
                "precursor_mz": pmz[idx],
                "rt_min": 1.0,
                "precursor_intensity": pint[idx],
                "fragment_mz": fmz,
                "fragment_intensity": fint,
                "polarity": "positive",
            }
        )
    )


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median (wall ms, CPU ms) of ``fn()`` over ``repeats`` calls after one warm-up call.

    CPU time (``time.process_time``: all threads of this process) is the primary figure: on a shared machine wall
    time mostly measures the neighbours. Both renderers are single-threaded, so the comparison is like for like.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return float(np.median(wall)) * 1e3, float(np.median(cpu)) * 1e3


def ours(df: pd.DataFrame, parquet: Path, config: RenderConfig, repeats: int) -> dict[str, tuple[float, float]]:
    """Our renderer three ways: DataFrame in (string columns), the DataFrame as ``render_dir`` reads the Parquet
    file (dictionary-encoded strings), and plain numpy arrays (``render_arrays``, what serving calls)."""
    from ms2img.render import _read_render_columns

    as_read = _read_render_columns(parquet)
    precursor_index = pd.factorize(df["feature_id"])[0]  # done once upstream; not part of rendering
    cols = [df[c].to_numpy() for c in ("precursor_mz", "precursor_intensity", "fragment_mz", "fragment_intensity")]
    return {
        "render_events, DataFrame (str columns)": timed(lambda: render_events(df, config, progress=False), repeats),
        "render_events, as read from Parquet": timed(lambda: render_events(as_read, config, progress=False), repeats),
        "render_arrays, numpy arrays": timed(lambda: render_arrays(precursor_index, *cols, config), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precursors", type=int, default=5000)
    parser.add_argument("--fragments", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=50, help="repeats for ms2img (median)")
    parser.add_argument("--paper-repeats", type=int, default=3, help="repeats for the paper recipe (median)")
    parser.add_argument("--size", default="150x140")
    args = parser.parse_args()

    config = RenderConfig().with_size(args.size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.2f} (wall times suffer from load)")
    print(f"# numpy {np.__version__}, pandas {pd.__version__}, image {config.size} (W x H); times are medians")

    with tempfile.TemporaryDirectory() as tmp:
        df = synthetic_sample(args.precursors, args.fragments)
        small_pq = write_events(df, Path(tmp) / "small.parquet")
        big = synthetic_sample(args.precursors, args.fragments * 10, seed=1)
        big_pq = write_events(big, Path(tmp) / "big.parquet")

        print(f"\nsample: {args.precursors:,} precursors x {args.fragments} fragments = {len(df):,} fragments")
        small = ours(df, small_pq, config, args.repeats)
        for name, (wall, cpu) in small.items():
            print(f"  ms2img {name:40s} {cpu:8.2f} ms CPU {wall:8.2f} ms wall")
        papers = {
            "PNG in memory (faithful)": timed(
                lambda: render_paper_recipe(df, config.width, config.height), args.paper_repeats
            ),
            "raw canvas (drawing only)": timed(
                lambda: render_paper_recipe(df, config.width, config.height, png=False), args.paper_repeats
            ),
        }
        for name, (wall, cpu) in papers.items():
            print(f"  paper recipe, {name:33s} {cpu:8.0f} ms CPU {wall:8.0f} ms wall")
        print("speed-up over the paper recipe, CPU time (wall time in brackets); goal >= 1000x:")
        print(f"  {'':40s} " + " ".join(f"{name.split(' (')[0]:>22s}" for name in papers))
        for name, (wall, cpu) in small.items():
            cells = [f"{p_cpu / cpu:8.0f}x ({p_wall / wall:6.0f}x)" for p_wall, p_cpu in papers.values()]
            print(f"  {name:40s} " + " ".join(f"{c:>22s}" for c in cells))
        paper = render_paper_recipe(df, config.width, config.height)
        mine = render_events(df, config, progress=False).images[0]
        print(f"pixel correlation paper recipe vs ms2img: {np.corrcoef(paper.ravel(), mine.ravel())[0, 1]:.2f}")

        print(f"\n10x fragments: {args.precursors:,} x {args.fragments * 10} = {len(big):,} fragments")
        large = ours(big, big_pq, config, max(5, args.repeats // 5))
        for name, (wall, cpu) in large.items():
            ratio = cpu / small[name][1]
            print(f"  ms2img {name:40s} {cpu:8.2f} ms CPU {wall:8.2f} ms wall; CPU ratio {ratio:4.1f} (10 = linear)")


if __name__ == "__main__":
    main()
