"""The merged feature table for the baselines (RF, PCA, OPLS-DA): one column per compound-like feature.

The paper ("Feature Table Construction for Multivariate analysis and Random Forest") merges features in two
steps, first redundant features within each sample and then common features across samples, calling two
features the same when the mean of three similarities exceeds 0.8:

* MS1: ``exp(-0.5 * ((mz1 - mz2) / sigma_mz) ** 2)``
* RT:  ``exp(-0.5 * ((rt1 - rt2) / sigma_rt) ** 2)`` with ``sigma_rt`` = the RT tolerance (``rt_tol_min``)
* MS/MS: cosine (matchms' greedy cosine) or spectral entropy similarity (ms_entropy); one table per metric.

How the paper's vague parts are read here (all are parameters):

* ``sigma_mz`` is "the empirical SD of the observed MS1 values". We estimate, from the data, the SD of the
  m/z differences between two measurements of the same ion, in ppm (:func:`estimate_mz_sigma_ppm`: one random
  partner for (a sample of) the spectra from their ``mz_tol_ppm`` window, kept when from another injection and
  clearly the same compound, |dRT| <= ``rt_tol_min`` and MS/MS cosine >= 0.9; robust SD = 1.4826 x median
  |ppm difference|), and set ``sigma_mz = mz_sigma_factor x SD`` with **factor 2 by default**, i.e. the
  empirical ~95 % m/z tolerance, just as ``sigma_rt`` is the RT tolerance. Why not factor 1: with
  ``sigma = SD`` a true pair at 1.1 SD already scores MS1 < 0.55 and needs near-perfect RT and MS/MS to pass
  the mean > 0.8 rule, so about a quarter of the true matches split off into extra features (measured on the
  synthetic cohort of ``benchmarks/feature_merge.py``: 77-79 % of a compound's spectra landed in its main
  feature with factor 1, 92-97 % with factor 2, no impure features either way). ``mz_sigma_factor=1`` gives the
  literal reading, ``mz_sigma_ppm`` fixes sigma outright. Too few same-ion pairs (< 20) falls back to
  ``mz_tol_ppm / 2``; sigma is clamped to ``[mz_tol_ppm / 20, mz_tol_ppm]``. It is computed once per run and
  shared by both tables, so the MS/MS metric is the only thing that differs between them.
* "Within a sample" means within an accession: all its replicates' features are merged (replicate injections
  of one compound and redundant features of one injection alike). Within one replicate, redundant features
  are duplicates of one ion, so their intensities combine by **max** (a sum would double-count); an
  accession's value is then the mean over its replicates with absence counted as zero, as the renderer does.
* Across samples, a feature holds at most one (within-sample-merged) feature per accession.
* Ions of different polarity never merge.

The similarities and the clustering live in :mod:`ms2img.features.merge`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.atomic import atomic_path, write_text
from ms2img.errors import ConfigError, InputFileError
from ms2img.features.merge import (  # noqa: F401 - similarities re-exported: ms2img.features.table.cosine_similarity etc.
    DEFAULT_MS2_TOL_DA,
    METHODS,
    MergeParams,
    candidate_windows,
    cluster_groups,
    cosine_prepared,
    cosine_similarity,
    entropy_similarity,
    gaussian_similarity,
    ms1_similarity,
    ms2_scorer,
    rt_similarity,
    weighted_means,
)
from ms2img.render.scaling import replicate_mean

log = logging.getLogger(__name__)

DEFAULT_MZ_TOL_PPM = 10.0
DEFAULT_RT_TOL_MIN = 0.3
DEFAULT_THRESHOLD = 0.8
DEFAULT_MZ_SIGMA_FACTOR = 2.0
# sigma_mz estimation (see module docstring)
_SIGMA_MIN_PAIRS = 20
_SIGMA_MAX_SAMPLE = 20_000
_SIGMA_MS2_MIN = 0.9


# --------------------------------------------------------------------------------------------- spectra


@dataclass
class SpectrumSet:
    """One MS/MS spectrum per (accession, replicate, feature_id) of an events table, in sorted key order."""

    accession: np.ndarray  # str, per spectrum
    replicate: np.ndarray
    feature_id: np.ndarray
    polarity: np.ndarray
    mz: np.ndarray  # float64
    rt: np.ndarray
    intensity: np.ndarray
    peaks: list[np.ndarray]  # (k, 2) float64, m/z ascending
    n_replicates: dict[str, int]  # replicates present per accession (the renderer's denominator)

    def __len__(self) -> int:
        return len(self.mz)

    @property
    def accessions(self) -> list[str]:
        """Every accession, sorted."""
        return sorted(self.n_replicates)


def collapse_spectra(events: pd.DataFrame) -> SpectrumSet:
    """Turn the per-fragment events table into one spectrum per precursor (first value of per-precursor columns)."""
    if len(events) == 0:
        raise ConfigError("the events table is empty: nothing to merge into a feature table")
    keys = ["accession", "replicate", "feature_id"]
    missing = [c for c in keys + ["precursor_mz", "rt_min", "precursor_intensity", "fragment_mz"] if c not in events]
    if missing:
        raise ConfigError(f"the events table lacks columns {missing}")
    df = events.reset_index(drop=True)
    codes = df.groupby(keys, sort=True).ngroup().to_numpy()
    frag_mz = df["fragment_mz"].to_numpy(dtype=np.float64)
    frag_int = df["fragment_intensity"].to_numpy(dtype=np.float64)
    order = np.lexsort((frag_mz, codes))
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    first = order[starts]
    bounds = np.r_[starts, len(order)]
    peaks_all = np.column_stack([frag_mz[order], frag_int[order]])
    peaks = [peaks_all[bounds[k] : bounds[k + 1]] for k in range(len(starts))]
    acc = df["accession"].to_numpy().astype(str)[first]
    rep = df["replicate"].to_numpy().astype(str)[first]
    pol = (df["polarity"].to_numpy().astype(str) if "polarity" in df else np.full(len(df), "unknown"))[first]
    nrep = pd.Series(rep).groupby(acc).nunique()
    return SpectrumSet(
        accession=acc,
        replicate=rep,
        feature_id=df["feature_id"].to_numpy().astype(str)[first],
        polarity=pol,
        mz=df["precursor_mz"].to_numpy(dtype=np.float64)[first],
        rt=df["rt_min"].to_numpy(dtype=np.float64)[first],
        intensity=np.nan_to_num(df["precursor_intensity"].to_numpy(dtype=np.float64)[first]).clip(min=0.0),
        peaks=peaks,
        n_replicates={str(k): int(v) for k, v in nrep.items()},
    )


# --------------------------------------------------------------------------------------------- sigma_mz


def estimate_mz_sigma_ppm(
    spectra: SpectrumSet,
    mz_tol_ppm: float = DEFAULT_MZ_TOL_PPM,
    rt_tol_min: float = DEFAULT_RT_TOL_MIN,
    ms2_tol_da: float = DEFAULT_MS2_TOL_DA,
    seed: int = 0,
) -> tuple[float | None, int]:
    """The empirical SD (ppm) of m/z differences between two measurements of the same ion: (sd or None, n_pairs).

    ``None`` when fewer than 20 same-ion pairs were found. Linear cost: one random partner per sampled spectrum,
    drawn from its m/z window (an unbiased draw, unlike the nearest neighbour, whose distance shrinks as the
    cohort grows). See the module docstring.
    """
    n = len(spectra)
    if n < 2:
        return None, 0
    pol_code = pd.factorize(spectra.polarity, sort=True)[0].astype(np.float64)
    key = pol_code * 1e7 + spectra.mz  # m/z < 1e7, so polarities never share a window
    order = np.argsort(key, kind="stable")
    skey = key[order]
    smz = spectra.mz[order]
    lo = np.searchsorted(skey, skey - smz * mz_tol_ppm * 1e-6, side="left")
    hi = np.searchsorted(skey, skey + smz * mz_tol_ppm * 1e-6, side="right")
    rng = np.random.default_rng(seed)
    pos = np.arange(n)
    if n > _SIGMA_MAX_SAMPLE:
        pos = np.sort(rng.choice(n, _SIGMA_MAX_SAMPLE, replace=False))
    width = hi[pos] - lo[pos] - 1  # partners available, excluding itself
    pos, width = pos[width > 0], width[width > 0]
    j = lo[pos] + np.floor(rng.random(len(pos)) * width).astype(np.int64)
    j = np.where(j >= pos, j + 1, j)
    a, b = order[pos], order[j]
    same_injection = (spectra.accession[a] == spectra.accession[b]) & (spectra.replicate[a] == spectra.replicate[b])
    keep = (np.abs(spectra.rt[a] - spectra.rt[b]) <= rt_tol_min) & ~same_injection
    ppm = []
    for x, y in zip(a[keep], b[keep], strict=True):
        if cosine_prepared(spectra.peaks[x], spectra.peaks[y], ms2_tol_da) >= _SIGMA_MS2_MIN:
            ppm.append((spectra.mz[y] - spectra.mz[x]) / ((spectra.mz[x] + spectra.mz[y]) / 2.0) * 1e6)
    if len(ppm) < _SIGMA_MIN_PAIRS:
        return None, len(ppm)
    return 1.4826 * float(np.median(np.abs(ppm))), len(ppm)


def resolve_mz_sigma(
    spectra: SpectrumSet,
    mz_tol_ppm: float = DEFAULT_MZ_TOL_PPM,
    rt_tol_min: float = DEFAULT_RT_TOL_MIN,
    ms2_tol_da: float = DEFAULT_MS2_TOL_DA,
    mz_sigma_ppm: float | None = None,
    mz_sigma_factor: float = DEFAULT_MZ_SIGMA_FACTOR,
) -> tuple[float, dict]:
    """The MS1 sigma (ppm) to use and how it was obtained (recorded in the table's stats)."""
    if mz_sigma_ppm is not None:
        if not mz_sigma_ppm > 0:
            raise ConfigError(f"mz_sigma_ppm must be positive, got {mz_sigma_ppm}")
        return float(mz_sigma_ppm), {"mz_sigma_source": "fixed"}
    if not mz_sigma_factor > 0:
        raise ConfigError(f"mz_sigma_factor must be positive, got {mz_sigma_factor}")
    sd, n_pairs = estimate_mz_sigma_ppm(spectra, mz_tol_ppm, rt_tol_min, ms2_tol_da)
    info = {"mz_sigma_pairs": n_pairs, "mz_sigma_factor": float(mz_sigma_factor), "mz_diff_sd_ppm": sd}
    if sd is None:
        sigma = mz_tol_ppm / 2.0
        log.warning("only %d same-ion pairs to estimate the m/z sigma; using mz_tol_ppm / 2 = %g ppm", n_pairs, sigma)
        return sigma, {**info, "mz_sigma_source": "fallback"}
    raw = mz_sigma_factor * sd
    sigma = float(np.clip(raw, mz_tol_ppm / 20.0, mz_tol_ppm))
    bound = "" if sigma == raw else f", held to {'mz_tol_ppm / 20' if sigma > raw else 'mz_tol_ppm'}"
    log.info("m/z sigma %.3g ppm (%g x SD %.3g ppm from %d same-ion pairs%s)", sigma, mz_sigma_factor, sd, n_pairs,
             bound)  # fmt: skip
    return sigma, {**info, "mz_sigma_source": "estimated"}


# --------------------------------------------------------------------------------------------- the table


@dataclass
class FeatureTable:
    """A merged feature table for one MS/MS similarity method.

    ``values``: accessions x features (``F000001`` ...), float64 intensities (mean over replicates, 0 = absent).
    ``features``: one row per feature: ``feature_id, mz, rt, n_members, n_accessions, polarity`` and the
    representative spectrum's ``rep_accession, rep_replicate, rep_feature_id`` (for tracing back to the data).
    ``stats``: counts and timings of the merge (``n_input_spectra, n_features, candidate_pairs, merged_pairs,
    seconds`` and the parameters used, including the m/z sigma; ``candidate_pairs`` counts the (spectrum, cluster)
    pairs inside the m/z and RT windows, ``merged_pairs`` the spectra that joined a cluster).
    ``members``: which merged feature each input spectrum went to (``accession, replicate, source_feature_id,
    feature_id``), for tracing a feature back to the precursors it merged.
    """

    method: str
    values: pd.DataFrame
    features: pd.DataFrame
    stats: dict = field(default_factory=dict)
    members: pd.DataFrame | None = None

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``table_<method>.parquet``, ``features_<method>.parquet``, ``stats_<method>.json`` (and
        ``members_<method>.parquet``) atomically."""
        out_dir = Path(out_dir)
        paths = self.paths(out_dir, self.method)
        with atomic_path(paths["table"]) as tmp:
            self.values.to_parquet(tmp, index=True)
        with atomic_path(paths["features"]) as tmp:
            self.features.to_parquet(tmp, index=False)
        if self.members is not None:
            with atomic_path(paths["members"]) as tmp:
                self.members.to_parquet(tmp, index=False)
        write_text(paths["stats"], json.dumps({"method": self.method, **self.stats}, indent=2, sort_keys=True) + "\n")
        return paths

    @staticmethod
    def paths(out_dir: str | Path, method: str) -> dict[str, Path]:
        """Where :meth:`save` puts the three files of ``method``."""
        out_dir = Path(out_dir)
        return {
            "table": out_dir / f"table_{method}.parquet",
            "features": out_dir / f"features_{method}.parquet",
            "stats": out_dir / f"stats_{method}.json",
            "members": out_dir / f"members_{method}.parquet",
        }

    @classmethod
    def load(cls, out_dir: str | Path, method: str = "cosine") -> FeatureTable:
        """Read a table written by :meth:`save`."""
        import pyarrow as pa

        paths = cls.paths(out_dir, method)
        for key, path in paths.items():
            if key != "members" and not path.is_file():
                raise InputFileError(path, "feature table file not found (run `ms2img features` first)")
        try:
            values = pd.read_parquet(paths["table"])
            features = pd.read_parquet(paths["features"])
            stats = json.loads(paths["stats"].read_text(encoding="utf-8"))
            members = pd.read_parquet(paths["members"]) if paths["members"].is_file() else None
        except (OSError, ValueError, pa.ArrowException) as exc:  # name the directory, not a pyarrow traceback
            raise InputFileError(out_dir, f"unreadable feature table ({exc.__class__.__name__}: {exc})") from None
        stats.pop("method", None)
        return cls(method=method, values=values, features=features, stats=stats, members=members)


def _check_params(methods: Iterable[str], mz_tol_ppm: float, rt_tol_min: float, threshold: float, ms2_tol_da: float):
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"unknown MS/MS similarity method {m!r} (choose from {', '.join(METHODS)})")
    if not (mz_tol_ppm > 0 and rt_tol_min > 0 and ms2_tol_da > 0):
        raise ConfigError(
            f"tolerances must be positive (mz_tol_ppm={mz_tol_ppm}, rt_tol_min={rt_tol_min}, ms2_tol_da={ms2_tol_da})"
        )
    if not 0 < threshold < 1:
        raise ConfigError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")


def merge_features(
    events: pd.DataFrame | SpectrumSet,
    method: str = "cosine",
    mz_tol_ppm: float = DEFAULT_MZ_TOL_PPM,
    rt_tol_min: float = DEFAULT_RT_TOL_MIN,
    threshold: float = DEFAULT_THRESHOLD,
    mz_sigma_ppm: float | None = None,
    ms2_tol_da: float = DEFAULT_MS2_TOL_DA,
    mz_sigma_factor: float = DEFAULT_MZ_SIGMA_FACTOR,
    progress: bool | None = None,
) -> FeatureTable:
    """Merge the spectra of an events table within, then across accessions into a :class:`FeatureTable`.

    ``mz_sigma_ppm=None`` sets sigma_mz to ``mz_sigma_factor`` x the empirical SD of same-ion m/z differences
    (:func:`resolve_mz_sigma`). ``progress=None`` shows a tqdm bar only on a terminal.
    """
    t0 = time.perf_counter()
    _check_params([method], mz_tol_ppm, rt_tol_min, threshold, ms2_tol_da)
    spectra = events if isinstance(events, SpectrumSet) else collapse_spectra(events)
    if len(spectra) == 0:
        raise ConfigError("no spectra to merge into a feature table")
    mz_sigma_ppm, sigma_info = resolve_mz_sigma(
        spectra, mz_tol_ppm, rt_tol_min, ms2_tol_da, mz_sigma_ppm, mz_sigma_factor
    )
    mz_win, rt_win = candidate_windows(mz_tol_ppm, mz_sigma_ppm, rt_tol_min, threshold)
    p = MergeParams(mz_sigma_ppm, rt_tol_min, threshold, mz_win, rt_win)
    prepared, score = ms2_scorer(method, spectra.peaks, ms2_tol_da)
    n = len(spectra)
    disable = None if progress is None else not progress

    # step 1: within each accession (and polarity)
    within, rep1, cand1, merged1 = cluster_groups(
        [spectra.accession, spectra.polarity],
        spectra.mz,
        spectra.rt,
        spectra.intensity,
        prepared,
        score,
        p,
        desc=f"features/{method} within samples",
        disable=disable,
    )
    n1 = len(rep1)
    # accession-level items: per replicate max over redundant members, then the mean over the accession's replicates
    rep_code = pd.factorize(spectra.replicate)[0]
    key, key_inv = np.unique(within * (rep_code.max() + 1) + rep_code, return_inverse=True)
    per_rep_max = np.zeros(len(key))
    np.maximum.at(per_rep_max, key_inv, spectra.intensity)
    item_acc = spectra.accession[rep1]
    n_rep = np.array([spectra.n_replicates[a] for a in item_acc], dtype=np.float64)
    item_value = replicate_mean(per_rep_max, key // (rep_code.max() + 1), n1, n_rep)
    item_mz, item_rt = weighted_means(within, n1, spectra.intensity, spectra.mz, spectra.rt)
    item_peaks = [prepared[j] for j in rep1.tolist()]
    item_pol = spectra.polarity[rep1]

    # step 2: across accessions (per polarity), at most one item per accession in a feature
    across, rep2, cand2, merged2 = cluster_groups(
        [item_pol],
        item_mz,
        item_rt,
        item_value,
        item_peaks,
        score,
        p,
        block=item_acc.tolist(),
        desc=f"features/{method} across samples",
        disable=disable,
    )
    nf = len(rep2)

    # assemble: features sorted by (m/z, RT, polarity) get ids F000001...
    f_mz, f_rt = weighted_means(across, nf, item_value, item_mz, item_rt)
    rep_spec = rep1[rep2]
    feats = pd.DataFrame(
        {
            "mz": f_mz,
            "rt": f_rt,
            "n_members": np.bincount(across[within], minlength=nf),
            "n_accessions": np.bincount(across, minlength=nf),
            "polarity": item_pol[rep2],
            "rep_accession": spectra.accession[rep_spec],
            "rep_replicate": spectra.replicate[rep_spec],
            "rep_feature_id": spectra.feature_id[rep_spec],
        }
    )
    order = np.lexsort((feats["polarity"].to_numpy(), f_rt, f_mz))
    width = max(6, len(str(nf)))
    ids = np.array([f"F{k + 1:0{width}d}" for k in range(nf)], dtype=object)
    feats = feats.iloc[order].reset_index(drop=True)
    feats.insert(0, "feature_id", ids)
    col_of = np.empty(nf, dtype=np.int64)
    col_of[order] = np.arange(nf)

    accessions = spectra.accessions
    row_of = pd.Index(accessions).get_indexer(item_acc)
    mat = np.zeros((len(accessions), nf))
    mat[row_of, col_of[across]] = item_value  # one item per (accession, feature): the block rule
    values = pd.DataFrame(mat, index=pd.Index(accessions, name="accession"), columns=pd.Index(ids, name="feature_id"))
    members = pd.DataFrame(
        {
            "accession": spectra.accession,
            "replicate": spectra.replicate,
            "source_feature_id": spectra.feature_id,
            "feature_id": ids[col_of[across[within]]],
        }
    )

    stats = {
        "n_input_spectra": n,
        "n_accessions": len(accessions),
        "n_within_sample_features": n1,
        "n_features": nf,
        "candidate_pairs": cand1 + cand2,
        "merged_pairs": merged1 + merged2,
        "candidate_pairs_within": cand1,
        "merged_pairs_within": merged1,
        "candidate_pairs_across": cand2,
        "merged_pairs_across": merged2,
        "mz_sigma_ppm": float(mz_sigma_ppm),
        **sigma_info,
        "mz_window_ppm": float(mz_win),
        "rt_window_min": float(rt_win),
        "mz_tol_ppm": float(mz_tol_ppm),
        "rt_tol_min": float(rt_tol_min),
        "threshold": float(threshold),
        "ms2_tol_da": float(ms2_tol_da),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info(
        "%s: %d spectra -> %d within-sample -> %d features (%d candidate pairs, %.1f s)",
        method, n, n1, nf, stats["candidate_pairs"], stats["seconds"],
    )  # fmt: skip
    return FeatureTable(method=method, values=values, features=feats, stats=stats, members=members)


def build_feature_tables(
    events_dir: str | Path,
    out_dir: str | Path,
    methods: Sequence[str] = METHODS,
    mz_tol_ppm: float = DEFAULT_MZ_TOL_PPM,
    rt_tol_min: float = DEFAULT_RT_TOL_MIN,
    threshold: float = DEFAULT_THRESHOLD,
    mz_sigma_ppm: float | None = None,
    ms2_tol_da: float = DEFAULT_MS2_TOL_DA,
    mz_sigma_factor: float = DEFAULT_MZ_SIGMA_FACTOR,
    progress: bool | None = None,
) -> dict[str, FeatureTable]:
    """Read ``events_dir`` (``*.parquet`` events), build one table per method and save them under ``out_dir``.

    The spectra and the m/z sigma are computed once and shared by every method.
    """
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ConfigError("no MS/MS similarity method given (choose from cosine, entropy)")
    _check_params(methods, mz_tol_ppm, rt_tol_min, threshold, ms2_tol_da)
    from ms2img.io.schema import read_events

    if not Path(events_dir).exists():
        raise InputFileError(events_dir, "events folder not found (run `ms2img ingest` first)")
    events = read_events(events_dir)
    if len(events) == 0:
        raise InputFileError(events_dir, "the events files hold no rows: nothing to merge into a feature table")
    spectra = collapse_spectra(events)
    del events
    sigma, info = resolve_mz_sigma(spectra, mz_tol_ppm, rt_tol_min, ms2_tol_da, mz_sigma_ppm, mz_sigma_factor)
    tables = {}
    for method in methods:
        table = merge_features(spectra, method, mz_tol_ppm, rt_tol_min, threshold, sigma, ms2_tol_da, progress=progress)
        table.stats.update(info)  # how the shared sigma was obtained, not "fixed"
        table.save(out_dir)
        tables[method] = table
    return tables
