"""Rendering speed: ms2img's direct binning against the paper's recipe (matplotlib scatter at 600 dpi + resize).

Quality bar (docs/architecture.md): at least 1000x faster than the paper's recipe on the same sample, measured in
one run, and cost linear in the number of fragments. Run: ``python benchmarks/render.py`` (prints numbers).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from ms2img.io.schema import coerce_events
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


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def ours(df: pd.DataFrame, config: RenderConfig, repeats: int) -> tuple[float, float]:
    """(render_events on the DataFrame, render_arrays on its columns) in ms."""
    cols = (
        df["feature_id"].to_numpy(),
        df["precursor_mz"].to_numpy(),
        df["precursor_intensity"].to_numpy(),
        df["fragment_mz"].to_numpy(),
        df["fragment_intensity"].to_numpy(),
    )
    precursor_index = pd.factorize(cols[0])[0]  # done once upstream (ingest / serving); not part of rendering
    events_ms = median_ms(lambda: render_events(df, config, progress=False), repeats)
    arrays_ms = median_ms(lambda: render_arrays(precursor_index, *cols[1:], config), repeats)
    return events_ms, arrays_ms


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
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average {load:.2f}")
    print(f"# numpy {np.__version__}, pandas {pd.__version__}, image {config.size} (W x H)")

    df = synthetic_sample(args.precursors, args.fragments)
    n = len(df)
    print(f"sample: {args.precursors:,} precursors x {args.fragments} fragments = {n:,} fragments")
    events_ms, arrays_ms = ours(df, config, args.repeats)
    print(f"ms2img render_events (DataFrame in):    {events_ms:9.2f} ms/sample (median of {args.repeats})")
    print(f"ms2img render_arrays (numpy arrays in): {arrays_ms:9.2f} ms/sample (median of {args.repeats})")

    paper_ms = median_ms(lambda: render_paper_recipe(df, config.width, config.height), args.paper_repeats)
    print(f"paper recipe (scatter, 600 dpi, resize): {paper_ms:9.1f} ms/sample (median of {args.paper_repeats})")
    print(f"speed-up render_events: {paper_ms / events_ms:8.0f}x   (goal >= 1000x)")
    print(f"speed-up render_arrays: {paper_ms / arrays_ms:8.0f}x   (goal >= 1000x)")
    paper = render_paper_recipe(df, config.width, config.height)
    mine = render_events(df, config, progress=False).images[0]
    print(f"pixel correlation paper vs ms2img: {np.corrcoef(paper.ravel(), mine.ravel())[0, 1]:.2f}")

    big = synthetic_sample(args.precursors, args.fragments * 10, seed=1)
    big_events_ms, big_arrays_ms = ours(big, config, max(5, args.repeats // 5))
    print(f"10x fragments: {len(big):,} fragments")
    for name, big_ms, small_ms in (("events", big_events_ms, events_ms), ("arrays", big_arrays_ms, arrays_ms)):
        ratio = big_ms / small_ms
        print(f"ms2img render_{name}: {big_ms:9.2f} ms/sample, time ratio {ratio:5.1f} (10 = linear)")


if __name__ == "__main__":
    main()
