"""Binning: per-fragment arrays (or the canonical events table) -> one float32 image per sample.

Cost is linear in the number of fragments. Pixel value = precursor intensity scaled within the sample x fragment
intensity scaled within its precursor (:mod:`ms2img.render.scaling`), aggregated per pixel by ``max`` or ``sum``;
x = precursor m/z over ``x_range`` in ``width`` bins, y = fragment m/z over ``y_range`` in ``height`` bins
(half-open ranges and bins); events outside the ranges are dropped; pixels above the diagonal are zeroed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ms2img.errors import InputFileError
from ms2img.render.arrow import factorize, single_value
from ms2img.render.config import RenderConfig, cached_mask, image_edges
from ms2img.render.imageset import ImageSet
from ms2img.render.kernels import contiguous, kernels_for
from ms2img.render.scaling import (
    MERGE_MZ_DECIMALS,
    dense_index,
    repeated_spectra,
    run_starts,
    scale_in_sample,
    scale_intensities,
    transform_intensities,
)

# Columns the renderer reads from the canonical events table.
RENDER_COLUMNS = [
    "accession",
    "replicate",
    "feature_id",
    "precursor_mz",
    "precursor_intensity",
    "fragment_mz",
    "fragment_intensity",
]


_CHUNK = 32_768  # rows per block in the binning loop: temporaries stay in cache and off the page-fault path


def _pixel_index(x: np.ndarray, y: np.ndarray, config: RenderConfig, out: np.ndarray) -> np.ndarray:
    """Write each event's flat pixel index (``row * W + col``, int32) into ``out``; return the in-range mask.

    Ranges are half-open, ``[x_lo, x_hi)`` and ``[y_lo, y_hi)``; events outside them (or with a NaN m/z) get index
    0 and must be given value 0 by the caller (a zero never changes a max or a sum).
    """
    w, h = config.width, config.height
    (x0, x1), (y0, y1) = config.x_range, config.y_range
    cx = x - x0
    cx *= w / (x1 - x0)
    cy = y - y0
    cy *= h / (y1 - y0)
    inside = cx >= 0
    inside &= cx < w
    inside &= cy >= 0
    inside &= cy < h  # NaN fails every comparison
    with np.errstate(invalid="ignore"):  # NaN/inf -> int is garbage, zeroed below
        col = cx.astype(np.int32)  # truncation = floor for the kept (non-negative) values
        np.multiply(cy.astype(np.int32), w, out=out)
    out += col
    out *= inside
    return inside


def _render_group(
    rp: np.ndarray,
    n_rp: int,
    precursor_mz: np.ndarray,
    precursor_intensity: np.ndarray,
    fragment_mz: np.ndarray,
    fragment_intensity: np.ndarray,
    config: RenderConfig,
    rng: np.random.Generator | None,
    mp_of_rp: np.ndarray | None = None,
    n_mp: int = 0,
    n_reps: float = 1.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Render one image from per-fragment arrays; ``rp`` = per-row replicate-precursor index in ``0..n_rp-1``.

    Cost is linear in the number of rows: either two compiled passes over the rows (per-precursor maxima; scale,
    bin and aggregate) or, with numpy, a few vectorised passes (per-precursor maxima by ``reduceat`` or
    ``maximum.at``), blocked binning, and one unbuffered ``maximum.at`` (or ``bincount``) into the image.
    """
    w, h = config.width, config.height
    n = len(rp)
    kernels = kernels_for(n)
    transform = config.transform
    in_loop = kernels is not None and transform in ("none", "sqrt")  # the compiled loops apply the transform
    if kernels is None:
        starts = run_starts(rp, n_rp)
        p_scaled, f_max, f_t = scale_intensities(
            rp, n_rp, precursor_intensity, fragment_intensity, transform, starts, mp_of_rp, n_mp, n_reps
        )
    else:
        rp = contiguous(rp, np.intp)
        # The loops clean raw fragment intensities (negative, NaN -> 0) and take square roots on the fly (sqrt is
        # correctly rounded, hence monotone: the root of the max is the max of the roots); log1p, whose rounding
        # is the C library's, is applied by numpy first, and what the loops see then is clean already.
        f_t = contiguous(fragment_intensity) if in_loop else transform_intensities(fragment_intensity, transform)
        p_max, f_max = np.zeros(n_rp), np.zeros(n_rp)
        kernels.maxima(rp, contiguous(precursor_intensity), f_t, p_max, f_max)
        if transform == "sqrt":
            np.sqrt(f_max, out=f_max)
        p_scaled = scale_in_sample(transform_intensities(p_max, transform), f_max, n_rp, mp_of_rp, n_mp, n_reps)
    factor = p_scaled / f_max  # pixel value = factor[rp] * fragment intensity
    x = np.asarray(precursor_mz, dtype=np.float64)
    y = np.asarray(fragment_mz, dtype=np.float64)
    merged = mp_of_rp is not None and n_mp < n_rp
    if merged and config.aggregation == "sum":
        f_clean = transform_intensities(fragment_intensity, transform) if in_loop else f_t
        factor[repeated_spectra(rp, n_rp, mp_of_rp, n_mp, y, f_clean)] = 0.0
    z_prec = z_frag = None
    if config.ppm_jitter > 0:
        if rng is None:
            rng = np.random.default_rng()
        # one precursor m/z error per (merged) precursor, one per fragment
        z_prec = rng.standard_normal(n_mp)[mp_of_rp] if merged else rng.standard_normal(n_rp)
        z_prec *= config.ppm_jitter * 1e-6
        z_frag = rng.standard_normal(n)
        z_frag *= config.ppm_jitter * 1e-6

    if kernels is not None:
        if z_prec is not None:
            x = x * (1.0 + z_prec[rp])
            y = y * (1.0 + z_frag)
        (x0, x1), (y0, y1) = config.x_range, config.y_range
        root = in_loop and transform == "sqrt"  # else f_t is raw ("none") or transformed already ("log1p")
        args = (rp, factor, f_t, root, contiguous(x), contiguous(y), x0, w / (x1 - x0), y0, h / (y1 - y0), w, h)
        if config.aggregation == "max":
            acc = np.zeros(h * w, dtype=np.float32)
            kernels.bin_max(*args, acc)
        else:
            acc = np.zeros(h * w)
            kernels.bin_sum(*args, acc)
    else:
        flat = np.empty(n, dtype=np.int32)
        values = np.empty(n, dtype=np.float32 if config.aggregation == "max" else np.float64)
        for a in range(0, n, _CHUNK):
            b = min(a + _CHUNK, n)
            r = rp[a:b]
            xc, yc = x[a:b], y[a:b]
            if z_prec is not None:
                xc = xc * (1.0 + z_prec[r])
                yc = yc * (1.0 + z_frag[a:b])
            inside = _pixel_index(xc, yc, config, flat[a:b])
            v = values[a:b]
            np.multiply(factor[r], f_t[a:b], out=v, casting="same_kind")
            v *= inside
        if config.aggregation == "max":
            acc = np.zeros(h * w, dtype=np.float32)
            np.maximum.at(acc, flat, values)
        else:
            acc = np.bincount(flat, weights=values, minlength=h * w)
    if out is None:
        out = np.zeros((h, w), dtype=np.float32)
    img = out.reshape(h, w)
    img += acc.reshape(h, w)
    if config.mask_diagonal:
        img[cached_mask(config)] = 0.0
    return img


def render_arrays(
    precursor_index: np.ndarray,
    precursor_mz: np.ndarray,
    precursor_intensity: np.ndarray,
    fragment_mz: np.ndarray,
    fragment_intensity: np.ndarray,
    config: RenderConfig | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Render one sample from per-fragment arrays; the fast path (no pandas). Returns float32 ``(H, W)``.

    ``precursor_index`` (one per fragment; ints, or any hashable values) says which fragments share a precursor;
    ``precursor_mz`` and ``precursor_intensity`` are given per fragment (repeated along each precursor).
    """
    config = config or RenderConfig()
    n = len(precursor_index)
    if not (len(precursor_mz) == len(precursor_intensity) == len(fragment_mz) == len(fragment_intensity) == n):
        raise ValueError("render_arrays: all arrays must have one entry per fragment")
    if n == 0:
        return np.zeros((config.height, config.width), dtype=np.float32)
    rp, n_rp = dense_index(precursor_index)
    return _render_group(rp, n_rp, precursor_mz, precursor_intensity, fragment_mz, fragment_intensity, config, rng)


def _dense_sorted(key: np.ndarray) -> np.ndarray:
    """Dense codes for non-negative int keys, in key order (so a key whose major part is the image keeps each
    image's codes contiguous)."""
    n = len(key)
    top = int(key.max()) + 1 if n else 0
    if top <= max(4 * n, 1 << 20):
        present = np.zeros(top, dtype=bool)
        present[key] = True
        relabel = np.cumsum(present, dtype=np.int64) - 1
        return relabel[key]
    return np.unique(key, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _render_one_sample(
    events: pd.DataFrame, accession: Any, replicate: Any, config: RenderConfig, rng: np.random.Generator | None
) -> ImageSet:
    """:func:`render_events` for a frame of one accession and one replicate (per-file rendering, serving): no
    accession/replicate codes, no sorting; the same image, precursor codes and random draws as the general path."""
    feat, _ = factorize(events["feature_id"], want_uniques=False)
    images = np.zeros((1, config.height, config.width), dtype=np.float32)
    names = ("precursor_mz", "precursor_intensity", "fragment_mz", "fragment_intensity")
    cols = (events[c].to_numpy(dtype=np.float64) for c in names)
    _render_group(feat, int(feat.max()) + 1, *cols, config, rng, out=images[0])
    ids = np.array([accession], dtype=object).astype(str)
    reps = np.array([replicate], dtype=object).astype(str) if config.per_replicate else None
    return ImageSet(images, ids, *image_edges(config), config.to_dict(), reps)


def render_events(
    events: pd.DataFrame,
    config: RenderConfig | None = None,
    rng: np.random.Generator | None = None,
    progress: bool = True,
) -> ImageSet:
    """Render the canonical events table: one image per accession (replicates averaged) or per replicate.

    Averaging: each replicate's precursor intensities are pooled and divided by the accession's number of
    replicates (the mean with absence counted as zero; the count itself cancels in the scaling within the sample, so
    replicates without any MS/MS rows need no special care). Rows of different replicates are one precursor when
    they share ``feature_id`` and ``precursor_mz`` (aligned exports), otherwise distinct precursors; fragments stay
    scaled within their own replicate's precursor.
    Images are ordered by accession (then replicate). ``rng`` drives the ppm jitter (when configured).
    """
    config = config or RenderConfig()
    missing = [c for c in RENDER_COLUMNS if c not in events.columns]
    if missing:
        raise InputFileError("<events>", f"events table lacks columns {missing}")
    x_edges, y_edges = image_edges(config)
    cfg = config.to_dict()
    h, w = config.height, config.width
    if len(events) == 0:
        reps = np.array([], dtype=str) if config.per_replicate else None
        return ImageSet(np.zeros((0, h, w), np.float32), np.array([], dtype=str), x_edges, y_edges, cfg, reps)

    one_acc, acc_name = single_value(events["accession"])
    one_rep, rep_name = single_value(events["replicate"]) if one_acc else (False, None)
    if one_acc and one_rep:
        return _render_one_sample(events, acc_name, rep_name, config, rng)

    acc, acc_names = factorize(events["accession"], sort=True)
    rep, rep_names = factorize(events["replicate"], sort=True)
    feat, _ = factorize(events["feature_id"], want_uniques=False)
    n_acc, n_rep, n_feat = len(acc_names), len(rep_names), int(feat.max()) + 1
    # Rows sorted by image (accession[, replicate]) so each image's rows are one contiguous slice.
    group = acc * np.int64(n_rep) + rep if config.per_replicate else acc
    order = None if np.all(group[1:] >= group[:-1]) else np.argsort(group, kind="stable")
    if order is not None:
        acc, rep, feat, group = acc[order], rep[order], feat[order], group[order]

    def col(name: str) -> np.ndarray:
        v = events[name].to_numpy(dtype=np.float64)
        return v if order is None else v[order]

    p_mz, p_int, f_mz, f_int = (
        col(c) for c in ("precursor_mz", "precursor_intensity", "fragment_mz", "fragment_intensity")
    )
    # Replicate precursor ids, image-major so each image's ids are one contiguous range.
    if n_acc * n_rep == 1:
        rp = feat  # one sample: feature codes are already dense
    elif config.per_replicate:
        rp = _dense_sorted(group * np.int64(n_feat) + feat)
    else:
        rp = _dense_sorted((acc * np.int64(n_feat) + feat) * np.int64(n_rep) + rep)
    n_rp_all = int(rp.max()) + 1
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    rp_lo = np.append(np.minimum.reduceat(rp, starts) if len(starts) > 1 else [0], n_rp_all)
    ids = acc_names[acc[starts]].astype(str)
    reps = rep_names[rep[starts]].astype(str) if config.per_replicate else None

    merge = not config.per_replicate and n_rep > 1
    if merge:
        # Merged precursor = (accession, feature_id, precursor m/z) across replicates; computed per precursor.
        rp_acc = np.empty(n_rp_all, np.int64)
        rp_acc[rp] = acc
        rp_feat = np.empty(n_rp_all, np.int64)
        rp_feat[rp] = feat
        rp_rep = np.empty(n_rp_all, np.int64)
        rp_rep[rp] = rep
        rp_mz = np.empty(n_rp_all)
        rp_mz[rp] = p_mz
        mz_code, mz_names = pd.factorize(np.round(rp_mz, MERGE_MZ_DECIMALS))
        mp_of_rp = pd.factorize((rp_acc * np.int64(n_feat) + rp_feat) * np.int64(len(mz_names)) + mz_code)[0]
        n_reps_acc = np.bincount(np.unique(rp_acc * np.int64(n_rep) + rp_rep) // max(n_rep, 1), minlength=n_acc)

    ends = np.append(starts[1:], len(group))
    images = np.zeros((len(starts), h, w), dtype=np.float32)
    bar = tqdm(range(len(starts)), desc=f"render {config.size}", unit="img", disable=None if progress else True)
    for i in bar:
        s, e = starts[i], ends[i]
        lo, hi = rp_lo[i], rp_lo[i + 1]
        kw: dict[str, Any] = {}
        if merge:
            m = mp_of_rp[lo:hi]
            m0 = m.min()
            kw = {"mp_of_rp": m - m0, "n_mp": int(m.max() - m0) + 1, "n_reps": float(n_reps_acc[acc[s]])}
        _render_group(
            rp[s:e] - lo if lo else rp[s:e],
            int(hi - lo),
            p_mz[s:e],
            p_int[s:e],
            f_mz[s:e],
            f_int[s:e],
            config,
            rng,
            out=images[i],
            **kw,
        )
    return ImageSet(images, ids, x_edges, y_edges, cfg, reps)
