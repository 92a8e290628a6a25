"""How two spectra are called one feature, and the leader clustering that merges them (for
:mod:`ms2img.features.table`).

This is training's definition of "the same compound across accessions": MS1, RT *and* MS/MS, at most one feature
per accession, because a feature-table column holds one value per accession and must not mix isomers. Explaining
has a second, looser one by name, :func:`ms2img.explain.drivers.group_by_precursor` (precursor m/z then RT, no
MS/MS), whose docstring says why it differs.

Similarities: the paper's Gaussian MS1 / RT terms and the MS/MS cosine (matchms' greedy cosine) or spectral entropy
similarity (ms_entropy), on m/z-sorted float64 peaks.

Clustering is greedy leader clustering against consensus features, which is deterministic and cannot chain
far: items are visited from the most to the least intense (ties by m/z, then input order); each one is scored
against the existing clusters whose centre (intensity-weighted mean m/z and RT of the members so far) lies within
the m/z and RT windows, using the centre for MS1 and RT and the cluster's *representative* spectrum (its first,
most intense member) for MS/MS; it joins the best-scoring cluster with a mean score > ``threshold``, otherwise it
starts a new cluster and becomes its representative. Clusters are kept in a list sorted by m/z, so each item only
sees its m/z neighbours (bisection), and the work per item is bounded by the number of distinct features near its
m/z rather than by the number of spectra: the cost grows about linearly with the number of accessions
(``benchmarks/feature_merge.py``), where all-pairs would be quadratic. Scoring against the centre rather than one
noisy member also halves the m/z variance of true matches.

The windows are exact prunings of the rule, not extra approximations beyond ``mz_tol_ppm``: a pair can only
have a mean score > ``threshold`` if each Gaussian term exceeds ``3 * threshold - 2`` (the other two are at
most 1), i.e. if ``|d| < sigma * sqrt(-2 ln(3 * threshold - 2))``. The m/z window is the smaller of that bound
and ``mz_tol_ppm`` (a hard search tolerance); the RT window is that bound (or ``3 * rt_tol_min`` when
``threshold <= 2/3`` gives no bound).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
from tqdm import tqdm

from ms2img.errors import ConfigError

METHODS = ("cosine", "entropy")
DEFAULT_MS2_TOL_DA = 0.02


# --------------------------------------------------------------------------------------------- similarities


def gaussian_similarity(a: float | np.ndarray, b: float | np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """The paper's MS1 / RT similarity ``exp(-0.5 ((a - b) / sigma) ** 2)``: 1 for equal values, -> 0 far apart."""
    d = (np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) / np.asarray(sigma, dtype=float)
    return np.exp(-0.5 * d * d)


def ms1_similarity(mz1: float | np.ndarray, mz2: float | np.ndarray, sigma_ppm: float) -> np.ndarray:
    """MS1 similarity with sigma given in ppm of the pair's mean m/z (mass errors scale with m/z)."""
    mz1 = np.asarray(mz1, dtype=float)
    mz2 = np.asarray(mz2, dtype=float)
    return gaussian_similarity(mz1, mz2, sigma_ppm * 1e-6 * (mz1 + mz2) / 2.0)


def rt_similarity(rt1: float | np.ndarray, rt2: float | np.ndarray, rt_tol_min: float) -> np.ndarray:
    """RT similarity with sigma = the RT search tolerance, as in the paper."""
    return gaussian_similarity(rt1, rt2, rt_tol_min)


def _as_peaks(peaks: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    arr = np.asarray(peaks, dtype=np.float64).reshape(-1, 2)
    if arr.shape[0] > 1 and np.any(np.diff(arr[:, 0]) < 0):
        arr = arr[np.argsort(arr[:, 0], kind="stable")]
    return np.ascontiguousarray(arr)


@functools.cache
def _kernels() -> SimpleNamespace:
    """The maintained similarity kernels, imported on first use (matchms is slow to import). matchms' greedy-cosine
    kernels are compiled again from their own Python source with numba's on-disk cache: matchms compiles them in
    every process (~2 s each, paid by every features, train, promote and explain run); cached, ~0.01 s."""
    import numba
    from matchms.similarity import spectrum_similarity_functions as matchms_kernels
    from ms_entropy import calculate_entropy_similarity, clean_spectrum

    return SimpleNamespace(
        collect_peak_pairs=numba.njit(cache=True)(matchms_kernels.collect_peak_pairs.py_func),
        score_best_matches=numba.njit(cache=True, fastmath=True)(matchms_kernels.score_best_matches.py_func),
        calculate_entropy_similarity=calculate_entropy_similarity,
        clean_spectrum=clean_spectrum,
    )


def cosine_prepared(spec1: np.ndarray, spec2: np.ndarray, tolerance: float) -> float:
    """matchms' greedy cosine (``CosineGreedy.pair`` without the Spectrum wrapper) on m/z-sorted float64 peaks."""
    k = _kernels()
    pairs = k.collect_peak_pairs(spec1, spec2, tolerance, 0.0, 0.0, 1.0)
    if pairs is None:
        return 0.0
    pairs = pairs[np.argsort(pairs[:, 2], kind="mergesort")[::-1], :]
    score = float(k.score_best_matches(pairs, spec1, spec2, 0.0, 1.0)[0])
    return score if math.isfinite(score) else 0.0  # all-zero intensities: matchms divides by 0


def cosine_similarity(peaks_a: np.ndarray, peaks_b: np.ndarray, tolerance: float = DEFAULT_MS2_TOL_DA) -> float:
    """Greedy cosine similarity of two spectra ((n, 2) arrays of m/z, intensity) via matchms, in [0, 1]."""
    return cosine_prepared(_as_peaks(peaks_a), _as_peaks(peaks_b), tolerance)


def entropy_clean(peaks: np.ndarray, tolerance: float) -> np.ndarray:
    """ms_entropy's standard cleaning (centroid within 2 x tolerance, 1 % noise floor, sum to 1), done once."""
    return _kernels().clean_spectrum(
        np.asarray(peaks, dtype=np.float32).reshape(-1, 2), min_ms2_difference_in_da=2 * tolerance
    )


def entropy_prepared(clean_a: np.ndarray, clean_b: np.ndarray, tolerance: float) -> float:
    if clean_a.shape[0] == 0 or clean_b.shape[0] == 0:
        return 0.0
    return float(
        _kernels().calculate_entropy_similarity(clean_a, clean_b, ms2_tolerance_in_da=tolerance, clean_spectra=False)
    )


def entropy_similarity(peaks_a: np.ndarray, peaks_b: np.ndarray, tolerance: float = DEFAULT_MS2_TOL_DA) -> float:
    """Spectral entropy similarity (Li et al. 2021) of two spectra via ms_entropy, in [0, 1]."""
    return entropy_prepared(entropy_clean(peaks_a, tolerance), entropy_clean(peaks_b, tolerance), tolerance)


def ms2_scorer(method: str, peaks: list[np.ndarray], tolerance: float) -> tuple[list[np.ndarray], Callable]:
    """Per-method prepared spectra and a scoring function on two of them."""
    if method == "cosine":
        return peaks, lambda a, b: cosine_prepared(a, b, tolerance)
    if method == "entropy":
        return [entropy_clean(p, tolerance) for p in peaks], lambda a, b: entropy_prepared(a, b, tolerance)
    raise ConfigError(f"unknown MS/MS similarity method {method!r} (choose from {', '.join(METHODS)})")


# --------------------------------------------------------------------------------------------- clustering


@dataclass
class MergeParams:
    sigma_ppm: float
    rt_tol_min: float
    threshold: float
    mz_win_ppm: float
    rt_win_min: float


def candidate_windows(mz_tol_ppm: float, sigma_ppm: float, rt_tol_min: float, threshold: float) -> tuple[float, float]:
    """The m/z (ppm) and RT (min) windows outside which no pair can reach a mean score above ``threshold``."""
    floor = 3.0 * threshold - 2.0
    if floor <= 0:
        return mz_tol_ppm, 3.0 * rt_tol_min
    k = math.sqrt(-2.0 * math.log(floor)) if floor < 1 else 0.0
    return min(mz_tol_ppm, k * sigma_ppm), k * rt_tol_min


def _leader_cluster(
    idx: np.ndarray,
    mz: np.ndarray,
    rt: np.ndarray,
    weight: np.ndarray,
    peaks: list[np.ndarray],
    score_ms2: Callable[[np.ndarray, np.ndarray], float],
    p: MergeParams,
    block: Sequence | None = None,
    bar: tqdm | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Greedy leader clustering of the items ``idx`` (see module docstring).

    Returns ``(ordered, label, reps, candidates, merges)``: the items in visiting order, the cluster (0, 1, ... in
    order of creation) of each, the representative item of each cluster. With ``block``, a cluster takes at most
    one item per block value (one feature per accession across samples).
    """
    idx = np.asarray(idx, dtype=np.int64)
    # most intense first; ties by m/z then index, so the order (and the result) is deterministic
    ordered = idx[np.lexsort((idx, mz[idx], -weight[idx]))]
    # local copies as Python lists: scalar access is much faster than on numpy arrays
    mz_l = mz[ordered].tolist()
    rt_l = rt[ordered].tolist()
    pk = [peaks[i] for i in ordered.tolist()]
    bl = [block[i] for i in ordered.tolist()] if block is not None else None
    w_l = np.maximum(weight[ordered], 0.0).tolist()
    keys: list[float] = []  # representative m/z, ascending (fixed: the lookup key)
    cids: list[int] = []  # cluster id at the same position
    reps: list[int] = []  # cluster id -> representative (position in ``ordered``)
    blocks: list[set] = []
    # cluster centres: intensity-weighted mean m/z and RT of the members so far (plain means while all weights are 0)
    c_mz: list[float] = []
    c_rt: list[float] = []
    c_w: list[float] = []
    c_n: list[int] = []
    drift = 0.0  # largest |centre - representative| m/z so far: widens the lookup so no centre is missed
    label = np.empty(len(ordered), dtype=np.int64)
    thr = p.threshold
    inv_rt = 1.0 / p.rt_tol_min
    rt_win = p.rt_win_min
    win = p.mz_win_ppm * 1e-6
    sig = p.sigma_ppm * 1e-6
    candidates = merges = 0
    exp = math.exp
    for i in range(len(ordered)):
        m, r = mz_l[i], rt_l[i]
        dwin = m * win
        lo = bisect.bisect_left(keys, m - dwin - drift)
        hi = bisect.bisect_right(keys, m + dwin + drift)
        best, best_s = -1, thr
        bi = bl[i] if bl is not None else None
        for k in range(lo, hi):
            c = cids[k]
            mc = c_mz[c]
            dm = m - mc
            if dm > dwin or dm < -dwin:
                continue
            drt = r - c_rt[c]
            if drt > rt_win or drt < -rt_win:
                continue
            if bi is not None and bi in blocks[c]:
                continue
            candidates += 1
            dm /= sig * (m + mc) / 2.0
            drt *= inv_rt
            partial = exp(-0.5 * dm * dm) + exp(-0.5 * drt * drt)
            if (partial + 1.0) / 3.0 <= best_s:
                continue  # cannot beat the best so far even with a perfect MS/MS match
            s = (partial + score_ms2(pk[i], pk[reps[c]])) / 3.0
            if s > best_s:
                best, best_s = c, s
        if best >= 0:
            label[i] = best
            if bi is not None:
                blocks[best].add(bi)
            merges += 1
            # update the centre (weighted running mean; plain running mean while the weights are all 0)
            wi, wc, n_c = w_l[i], c_w[best], c_n[best]
            if wc + wi > 0:
                f = wi / (wc + wi) if wc > 0 else 1.0
            else:
                f = 1.0 / (n_c + 1)
            c_mz[best] += f * (m - c_mz[best])
            c_rt[best] += f * (r - c_rt[best])
            c_w[best] = wc + wi
            c_n[best] = n_c + 1
            d = abs(c_mz[best] - mz_l[reps[best]])
            drift = max(drift, d)
        else:
            pos = bisect.bisect_right(keys, m)
            keys.insert(pos, m)
            cids.insert(pos, len(reps))
            label[i] = len(reps)
            reps.append(i)
            blocks.append({bi} if bi is not None else set())
            c_mz.append(m)
            c_rt.append(r)
            c_w.append(w_l[i])
            c_n.append(1)
        if bar is not None and i % 1000 == 999:
            bar.update(1000)
    if bar is not None:
        bar.update(len(ordered) % 1000)
    return ordered, label, ordered[np.asarray(reps, dtype=np.int64)], candidates, merges


def cluster_groups(
    group_keys: Sequence[np.ndarray], *args, desc: str, disable: bool | None, **kwargs
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Leader clustering separately within each group (sorted group keys); returns global labels and reps."""
    n = len(group_keys[0])
    labels = np.empty(n, dtype=np.int64)
    reps: list[np.ndarray] = []
    candidates = merges = n_clusters = 0
    groups = pd.Series(np.arange(n)).groupby(list(group_keys), sort=True).indices
    with tqdm(total=n, desc=desc, unit="spectra", disable=disable) as bar:
        for key in sorted(groups):
            ordered, label, rep, c, m = _leader_cluster(groups[key], *args, bar=bar, **kwargs)
            labels[ordered] = label + n_clusters
            reps.append(rep)
            n_clusters += len(rep)
            candidates += c
            merges += m
    return labels, np.concatenate(reps), candidates, merges


def weighted_means(label: np.ndarray, n: int, weight: np.ndarray, *values: np.ndarray) -> list[np.ndarray]:
    """Per-cluster means of ``values`` weighted by ``weight`` (plain means where a cluster's weights are all 0)."""
    total = np.bincount(label, weight, minlength=n)
    count = np.bincount(label, minlength=n)
    out = []
    for v in values:
        weighted = np.bincount(label, weight * v, minlength=n)
        plain = np.bincount(label, v, minlength=n) / np.maximum(count, 1)
        out.append(np.where(total > 0, weighted / np.where(total > 0, total, 1.0), plain))
    return out
