"""How feature merging for the baselines scales with the number of accessions (target: sub-quadratic).

Generates events directly with numpy (no other ms2img module involved): a shared pool of "compounds" (precursor
m/z, RT, a fragment pattern, a typical abundance; some isomers share an m/z), from which each accession samples
300-1000 (common compounds more often), with ppm / RT / fragment-intensity noise, dropped fragments and a few
within-sample duplicate features. Then times ``ms2img.features.table.merge_features`` (collapse into spectra, m/z sigma
estimate, within- and across-sample merging) and fits the log-log slope of seconds against spectra. "in main" is
the mean share of a true compound's spectra that ended up in its main merged feature (1 = no splits).

    python benchmarks/feature_merge.py                       # 50, 100, 200, 400 accessions, cosine
    python benchmarks/feature_merge.py --methods cosine,entropy --accessions 50,100
    python benchmarks/feature_merge.py --source synth        # ms2img.synth.make_cohort + ingest instead
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ms2img.features.table import cosine_similarity, entropy_similarity, merge_features


def make_pool(n_compounds: int, rng: np.random.Generator) -> dict:
    """Compounds: m/z, RT, abundance, popularity, and fragment patterns (CSR: offsets into flat arrays)."""
    mz = rng.uniform(100.0, 1200.0, n_compounds)
    n_iso = n_compounds // 10  # isomers: same m/z as another compound, different RT and fragments
    mz[-n_iso:] = mz[rng.integers(0, n_compounds - n_iso, n_iso)]
    rt = rng.uniform(0.5, 25.0, n_compounds)
    n_frag = rng.integers(4, 21, n_compounds)
    offsets = np.r_[0, np.cumsum(n_frag)]
    owner = np.repeat(np.arange(n_compounds), n_frag)
    frag_mz = rng.uniform(0.0, 1.0, offsets[-1]) * (mz[owner] - 50.0) + 50.0
    frag_int = rng.pareto(1.5, offsets[-1]) + 0.01
    popularity = 1.0 / np.sqrt(rng.permutation(n_compounds) + 1.0)
    return {
        "mz": mz,
        "rt": rt,
        "abundance": rng.lognormal(10.0, 1.5, n_compounds),
        "p": popularity / popularity.sum(),
        "offsets": offsets,
        "frag_mz": np.round(frag_mz, 4),
        "frag_int": frag_int,
    }


def synthetic_events(
    n_accessions: int,
    pool: dict,
    seed: int = 0,
    spectra_range: tuple[int, int] = (300, 1000),
    replicates: int = 1,
    ppm_sd: float = 2.0,
    rt_sd: float = 0.05,
    dup_frac: float = 0.02,
) -> pd.DataFrame:
    """A canonical events table for ``n_accessions`` accessions sampled from ``pool``."""
    rng = np.random.default_rng(seed)
    n_compounds = len(pool["mz"])
    offsets = pool["offsets"]
    parts = []
    for a in range(n_accessions):
        k = int(rng.integers(spectra_range[0], spectra_range[1] + 1))
        chosen = rng.choice(n_compounds, k, replace=False, p=pool["p"])
        dups = chosen[rng.random(k) < dup_frac]
        level = pool["abundance"][chosen] * rng.lognormal(0.0, 1.0, k)
        for r in range(replicates):
            comp = np.r_[chosen, dups]
            inten = np.r_[level, level[np.isin(chosen, dups)] * 0.3] * rng.lognormal(0.0, 0.2, len(comp))
            pmz = pool["mz"][comp] * (1.0 + rng.normal(0.0, ppm_sd * 1e-6, len(comp)))
            prt = pool["rt"][comp] + rng.normal(0.0, rt_sd, len(comp))
            # feature ids name the true compound ("C<compound>", duplicates "C<compound>d") for scoring the merge
            feature_ids = np.array([f"C{c}" for c in chosen] + [f"C{c}d" for c in dups])
            n_frag = offsets[comp + 1] - offsets[comp]
            owner = np.repeat(np.arange(len(comp)), n_frag)
            flat = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in comp])
            keep = rng.random(len(flat)) < 0.9
            keep[np.r_[0, np.cumsum(n_frag)[:-1]]] = True  # every spectrum keeps at least one fragment
            owner, flat = owner[keep], flat[keep]
            fmz = pool["frag_mz"][flat] + rng.normal(0.0, 0.002, len(flat))
            fint = pool["frag_int"][flat] * rng.lognormal(0.0, 0.3, len(flat))
            parts.append(
                pd.DataFrame(
                    {
                        "accession": f"ACC{a:04d}",
                        "replicate": f"ACC{a:04d}_r{r + 1}",
                        "feature_id": feature_ids[owner],
                        "precursor_mz": pmz[owner],
                        "rt_min": prt[owner],
                        "precursor_intensity": inten[owner],
                        "fragment_mz": fmz,
                        "fragment_intensity": fint,
                        "polarity": "positive",
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def main_feature_share(table) -> str:
    """Mean share of a true compound's spectra that landed in its main feature (numpy source only)."""
    mem = table.members
    if mem is None or not mem["source_feature_id"].str.fullmatch(r"C\d+d?").all():
        return "-"
    compound = mem["source_feature_id"].str.rstrip("d")
    share = mem.groupby(compound)["feature_id"].agg(lambda f: f.value_counts().iloc[0] / len(f))
    return f"{share.mean():.3f}"


def synth_cohort_events(n_accessions: int, seed: int) -> pd.DataFrame:
    """Events from the project's synthetic cohort generator (needs ms2img.synth and ms2img.io.ingest)."""
    from ms2img.io.ingest import ingest
    from ms2img.io.schema import read_events
    from ms2img.synth import make_cohort

    with tempfile.TemporaryDirectory() as tmp:
        make_cohort(Path(tmp) / "cohort", accessions=n_accessions, seed=seed)
        ingest([Path(tmp) / "cohort" / "exports"], Path(tmp) / "events")
        return read_events(Path(tmp) / "events")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accessions", default="50,100,200,400", help="comma-separated cohort sizes")
    ap.add_argument("--methods", default="cosine", help="comma-separated: cosine, entropy")
    ap.add_argument("--compounds", type=int, default=5000, help="size of the shared compound pool")
    ap.add_argument("--replicates", type=int, default=1)
    ap.add_argument("--source", choices=["numpy", "synth"], default="numpy")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.accessions.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    pool = make_pool(args.compounds, np.random.default_rng(args.seed))

    header = ("method", "accessions", "spectra", "features", "cand. pairs", "seconds", "cpu s", "s/spectrum", "in main")
    print("{:8} {:>10} {:>9} {:>9} {:>12} {:>8} {:>8} {:>11} {:>8}".format(*header))
    # compile matchms' numba kernels before timing (a one-off cost of ~5-15 s per process)
    peaks = np.array([[50.0, 1.0], [60.0, 2.0]])
    cosine_similarity(peaks, peaks)
    entropy_similarity(peaks, peaks)
    results: dict[str, list[tuple[int, int, float, float]]] = {m: [] for m in methods}
    for n_acc in sizes:
        if args.source == "synth":
            events = synth_cohort_events(n_acc, args.seed)
        else:
            events = synthetic_events(n_acc, pool, seed=args.seed + n_acc, replicates=args.replicates)
        for method in methods:
            t0, c0 = time.perf_counter(), time.process_time()
            table = merge_features(events, method=method, progress=False)
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
            st = table.stats
            n = st["n_input_spectra"]
            results[method].append((n_acc, n, secs, cpu))
            print(
                f"{method:8} {n_acc:>10} {n:>9} {st['n_features']:>9} {st['candidate_pairs']:>12} "
                f"{secs:>8.2f} {cpu:>8.2f} {secs / n:>11.2e} {main_feature_share(table):>8}",
                flush=True,
            )
    for method, rows in results.items():
        if len(rows) >= 2:
            acc, spec, secs, cpu = (np.log(np.array(col, dtype=float)) for col in zip(*rows, strict=True))
            print(
                f"{method}: log-log slope of seconds vs spectra = {np.polyfit(spec, secs, 1)[0]:.2f} "
                f"(CPU seconds: {np.polyfit(spec, cpu, 1)[0]:.2f}), vs accessions = {np.polyfit(acc, secs, 1)[0]:.2f} "
                "(1 = linear, 2 = quadratic)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
