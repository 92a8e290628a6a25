"""The two intensity scalings of MS2toImg, and the replicate average.

* precursor intensity scaled to 0..1 within the image's sample (divided by the sample's largest precursor), after
  averaging each precursor over the accession's replicates (:func:`replicate_mean`);
* fragment intensity scaled to 0..1 within its precursor (divided by that precursor's largest fragment).

Arrays here are per row (one fragment) or per replicate precursor (``rp``, dense codes ``0..n_rp-1``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Rows of different replicates are one precursor when they share accession, ``feature_id`` and the precursor m/z
# rounded to this many decimals (aligned exports repeat the same m/z in every replicate).
MERGE_MZ_DECIMALS = 4


def replicate_mean(values: np.ndarray, item: np.ndarray, n_items: int, n_replicates: float | np.ndarray) -> np.ndarray:
    """The mean over an accession's replicates with absence counted as zero: per merged item (a precursor or a
    feature merged across replicates), the sum of its per-replicate values divided by the number of replicates of
    its accession.

    ``values``: one per (item, replicate) where the item is present; ``item``: the merged index of each value
    (``0..n_items-1``); ``n_replicates``: the accession's replicate count, one number or one per item. The count
    includes replicates without the item, so a precursor seen in one of three injections weighs a third. This is
    the one definition the renderer, the serving model and the feature tables share. ``values`` may be rows (one
    vector per injection, a feature family's served request): their mean per item, row by row.
    """
    item = np.asarray(item, dtype=np.intp)
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        return np.bincount(item, weights=values, minlength=n_items) / np.asarray(n_replicates, dtype=np.float64)
    total = np.zeros((n_items, *values.shape[1:]))
    np.add.at(total, item, values)
    return total / np.asarray(n_replicates, dtype=np.float64).reshape(-1, *([1] * (values.ndim - 1)))


def transform_intensities(values: np.ndarray, transform: str) -> np.ndarray:
    """Clean raw intensities (negative or NaN -> 0) and apply the intensity transform."""
    v = np.fmax(np.asarray(values, dtype=np.float64), 0.0)  # fmax maps NaN to 0
    if transform == "sqrt":
        np.sqrt(v, out=v)
    elif transform == "log1p":
        np.log1p(v, out=v)
    return v


def run_starts(rp: np.ndarray, n_rp: int) -> np.ndarray | None:
    """Row where each precursor's run starts when every precursor's rows are contiguous (the usual layout), else
    None. Contiguous rows let per-precursor maxima use ``reduceat`` instead of the slower ``maximum.at``."""
    if len(rp) == 0:
        return None
    change = rp[1:] != rp[:-1]
    if int(np.count_nonzero(change)) + 1 != n_rp:
        return None
    return np.flatnonzero(np.concatenate(([True], change)))


def per_precursor_max(values: np.ndarray, rp: np.ndarray, n_rp: int, starts: np.ndarray | None) -> np.ndarray:
    """Max of ``values`` per replicate precursor (0 where none); ``starts`` from :func:`run_starts` when known."""
    out = np.zeros(n_rp)
    if starts is not None:
        out[rp[starts]] = np.maximum.reduceat(values, starts)
    else:
        np.maximum.at(out, rp, values)
    return out


def scale_intensities(
    rp: np.ndarray,
    n_rp: int,
    precursor_intensity: np.ndarray,
    fragment_intensity: np.ndarray,
    transform: str,
    starts: np.ndarray | None,
    mp_of_rp: np.ndarray | None = None,
    n_mp: int = 0,
    n_reps: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two scalings, as per-precursor arrays: ``(precursor_scaled, fragment_max)`` per replicate precursor and
    the transformed fragment intensities per row; pixel value = ``precursor_scaled[rp] * fragment / fragment_max[rp]``.

    With ``mp_of_rp`` replicate precursors sharing a merged index have their intensities summed and divided by
    ``n_reps`` (the mean over replicates, absence counted as zero) before the scaling within the sample.
    """
    p_rp = transform_intensities(
        per_precursor_max(np.asarray(precursor_intensity, np.float64), rp, n_rp, starts), transform
    )
    f_t = transform_intensities(fragment_intensity, transform)
    f_max = per_precursor_max(f_t, rp, n_rp, starts)
    return scale_in_sample(p_rp, f_max, n_rp, mp_of_rp, n_mp, n_reps), f_max, f_t


def scale_in_sample(
    p_rp: np.ndarray, f_max: np.ndarray, n_rp: int, mp_of_rp: np.ndarray | None, n_mp: int, n_reps: float
) -> np.ndarray:
    """Precursor intensities (per replicate precursor, transformed) scaled within the sample, merged over replicates
    first when ``mp_of_rp`` is given; sets ``f_max`` to 1 where it is <= 0 (all fragments 0: values 0, not 0/0)."""
    f_max[f_max <= 0] = 1.0
    if mp_of_rp is not None:
        p_mp = replicate_mean(p_rp, mp_of_rp, n_mp, float(n_reps))
        top = p_mp.max() if n_mp else 0.0
        return p_mp[mp_of_rp] / top if top > 0 else np.zeros(n_rp)
    top = p_rp.max() if n_rp else 0.0
    return p_rp / top if top > 0 else np.zeros(n_rp)


def scaled_intensities(
    precursor_index: np.ndarray,
    precursor_intensity: np.ndarray,
    fragment_intensity: np.ndarray,
    transform: str = "none",
) -> tuple[np.ndarray, np.ndarray]:
    """Per fragment: precursor intensity scaled within the sample and fragment intensity scaled within its
    precursor (both 0..1). For pictures and the paper recipe; the renderer fuses this into the binning."""
    rp, n_rp = dense_index(precursor_index)
    p_scaled, f_max, f_t = scale_intensities(
        rp, n_rp, precursor_intensity, fragment_intensity, transform, run_starts(rp, n_rp)
    )
    return p_scaled[rp], f_t / f_max[rp]


def dense_index(index: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative int codes (``0..n-1``) for an arbitrary per-row precursor index."""
    idx = np.asarray(index)
    n = len(idx)
    if n and idx.dtype.kind in "iu" and idx.min() >= 0 and idx.max() <= 4 * n + 1024:
        return idx.astype(np.intp, copy=False), int(idx.max()) + 1
    codes, uniques = pd.factorize(idx)
    return codes.astype(np.intp, copy=False), len(uniques)


def repeated_spectra(
    rp: np.ndarray, n_rp: int, mp_of_rp: np.ndarray, n_mp: int, fragment_mz: np.ndarray, fragment: np.ndarray
) -> np.ndarray:
    """Boolean per replicate precursor: its spectrum repeats that of the first replicate precursor merged with it.

    Aligned exports carry one spectrum per feature and repeat it in every replicate; under ``sum`` it must count
    once. Spectra are compared by fingerprint (count, sums of m/z, m/z^2 and intensity), which is linear in rows.
    """
    count = np.bincount(rp, minlength=n_rp)
    prints = [np.bincount(rp, weights=w, minlength=n_rp) for w in (fragment_mz, fragment_mz * fragment_mz, fragment)]
    first = np.full(n_mp, n_rp, dtype=np.int64)
    np.minimum.at(first, mp_of_rp, np.arange(n_rp))
    ref = first[mp_of_rp]
    same = (ref != np.arange(n_rp)) & (count == count[ref])
    for fp in prints:
        same &= np.isclose(fp, fp[ref], rtol=1e-12, atol=0.0)
    return same
