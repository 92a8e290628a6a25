"""MS2toImg rendering: LC-MS/MS fragmentation events -> grayscale "molecular fingerprint" images.

The paper draws a matplotlib scatter at 600 dpi and resizes it. We keep its semantics but bin directly (numpy, or
numba-compiled loops when numba is installed), so the cost is linear in the number of fragments and a sample of
150,000 fragments renders in about a millisecond:

* precursor intensity scaled to 0..1 within the image's sample (divided by the sample's largest precursor);
* fragment intensity scaled to 0..1 within its precursor (divided by that precursor's largest fragment);
* pixel value = product of the two, aggregated per pixel by ``max`` (default) or ``sum``;
* x = precursor m/z over ``x_range`` in ``width`` bins, y = fragment m/z over ``y_range`` in ``height`` bins
  (half-open ranges and bins, ``[lo, hi)``); events outside the ranges are dropped; pixels entirely above the
  diagonal (fragment > precursor, physically impossible) are set to zero after binning.

Row index = fragment bin ascending (row 0 = lowest fragment m/z), column = precursor bin ascending. Bin edges are
stored with the tensors (:class:`ImageSet`) so each pixel maps back to an m/z box.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ms2img.atomic import atomic_path
from ms2img.errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

AGGREGATIONS = ("max", "sum")
TRANSFORMS = ("none", "sqrt", "log1p")
PAPER_SIZES = ((75, 70), (150, 140), (300, 280))
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


# --------------------------------------------------------------------------------------------------- config
def parse_size(text: str | Sequence[int]) -> tuple[int, int]:
    """``"150x140"`` -> ``(150, 140)`` (W x H: W precursor bins on x, H fragment bins on y)."""
    if not isinstance(text, str):
        try:
            w, h = (int(v) for v in text)
        except (TypeError, ValueError):
            raise ConfigError(f"image size {text!r} is not a (width, height) pair") from None
    else:
        parts = text.strip().lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"image size '{text}' is not WIDTHxHEIGHT, e.g. '150x140' (precursor x fragment bins)")
        w, h = (int(p) for p in parts)
    if w < 1 or h < 1:
        raise ConfigError(f"image size {w}x{h} must have at least one bin in each direction")
    if w * h > 50_000_000:
        raise ConfigError(f"image size {w}x{h} is unreasonably large")
    return w, h


def format_size(width: int, height: int) -> str:
    """``(150, 140)`` -> ``"150x140"``."""
    return f"{width}x{height}"


def _parse_range(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"render {name} {value!r} is not a [low, high] m/z pair") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"render {name} [{lo}, {hi}] must be finite with low < high")
    return lo, hi


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """How events become an image; validated on construction (bad values raise :class:`ConfigError`)."""

    width: int = 150
    height: int = 140
    x_range: tuple[float, float] = (100.0, 1500.0)
    y_range: tuple[float, float] = (0.0, 1500.0)
    aggregation: str = "max"
    transform: str = "none"
    mask_diagonal: bool = True
    per_replicate: bool = False
    ppm_jitter: float = 0.0

    def __post_init__(self) -> None:
        w, h = parse_size((self.width, self.height))
        object.__setattr__(self, "width", w)
        object.__setattr__(self, "height", h)
        object.__setattr__(self, "x_range", _parse_range(self.x_range, "x_range"))
        object.__setattr__(self, "y_range", _parse_range(self.y_range, "y_range"))
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation '{self.aggregation}'; choose one of {', '.join(AGGREGATIONS)}")
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"unknown intensity transform '{self.transform}'; choose one of {', '.join(TRANSFORMS)}")
        try:
            ppm = float(self.ppm_jitter)
        except (TypeError, ValueError):
            raise ConfigError(f"ppm_jitter {self.ppm_jitter!r} is not a number") from None
        if not np.isfinite(ppm) or ppm < 0:
            raise ConfigError(f"ppm_jitter must be a finite number >= 0, got {self.ppm_jitter!r}")
        object.__setattr__(self, "ppm_jitter", ppm)
        object.__setattr__(self, "mask_diagonal", bool(self.mask_diagonal))
        object.__setattr__(self, "per_replicate", bool(self.per_replicate))

    @property
    def size(self) -> str:
        """``"WxH"``, e.g. ``"150x140"``."""
        return format_size(self.width, self.height)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Bin edges ``(x_edges (W+1), y_edges (H+1))`` in m/z."""
        return image_edges(self)

    def with_size(self, size: str | Sequence[int]) -> RenderConfig:
        """A copy at another resolution."""
        w, h = parse_size(size)
        return dataclasses.replace(self, width=w, height=h)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (stored in the ``.npz`` and logged as run parameters)."""
        d = dataclasses.asdict(self)
        d["x_range"] = list(self.x_range)
        d["y_range"] = list(self.y_range)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RenderConfig:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k.endswith("_range") else v) for k, v in d.items() if k in names})

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, **overrides: Any) -> RenderConfig:
        """Build from ``params.yaml``'s ``render`` section (``size: 150x140`` or ``width``/``height``).

        ``overrides`` (e.g. from CLI flags) win; ``None`` values in them are ignored.
        """
        params = dict(params or {})
        known = {f.name for f in dataclasses.fields(cls)} | {"size", "sizes"}
        unknown = sorted(set(params) - known)
        if unknown:
            log.warning("ignoring unknown render parameters %s (known: %s)", unknown, sorted(known))
        kw: dict[str, Any] = {}
        if "size" in params and params["size"] is not None:
            kw["width"], kw["height"] = parse_size(params["size"])
        for f in dataclasses.fields(cls):
            if f.name in params and params[f.name] is not None:
                kw[f.name] = params[f.name]
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "size" in overrides:
            kw["width"], kw["height"] = parse_size(overrides.pop("size"))
        bad = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if bad:
            raise ConfigError(f"unknown render options {bad}")
        kw.update(overrides)
        for key in ("x_range", "y_range"):
            if key in kw:
                kw[key] = _parse_range(kw[key], key)
        return cls(**kw)


def image_edges(config: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges ``(x_edges (W+1), y_edges (H+1))`` for ``config``."""
    x_edges = np.linspace(config.x_range[0], config.x_range[1], config.width + 1)
    y_edges = np.linspace(config.y_range[0], config.y_range[1], config.height + 1)
    return x_edges, y_edges


def diagonal_mask(x_edges: np.ndarray, y_edges: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)``: True where a pixel lies entirely above the diagonal (fragment m/z > precursor m/z).

    A pixel is above the diagonal when its lowest fragment m/z exceeds its highest precursor m/z; those pixels
    cannot hold a real fragment and are set to zero.
    """
    x_edges = np.asarray(x_edges, dtype=np.float64)
    y_edges = np.asarray(y_edges, dtype=np.float64)
    return y_edges[:-1, None] > x_edges[None, 1:]


# --------------------------------------------------------------------------------------------------- ImageSet
@dataclasses.dataclass
class ImageSet:
    """Rendered images plus what is needed to interpret them.

    ``images`` float32 ``(N, H, W)``; ``ids`` accession per image; ``replicates`` replicate per image (only in
    per-replicate mode, else None); ``x_edges`` ``(W+1)`` precursor m/z and ``y_edges`` ``(H+1)`` fragment m/z bin
    edges; ``config`` the :class:`RenderConfig` as a dict.
    """

    images: np.ndarray
    ids: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray
    config: dict[str, Any]
    replicates: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        self.ids = np.asarray(self.ids).astype(str)
        self.x_edges = np.asarray(self.x_edges, dtype=np.float64)
        self.y_edges = np.asarray(self.y_edges, dtype=np.float64)
        if self.replicates is not None:
            self.replicates = np.asarray(self.replicates).astype(str)
        if self.images.ndim != 3:
            raise ValueError(f"images must be (N, H, W), got shape {self.images.shape}")
        n, h, w = self.images.shape
        if len(self.ids) != n or (self.replicates is not None and len(self.replicates) != n):
            raise ValueError("ids/replicates must have one entry per image")
        if len(self.x_edges) != w + 1 or len(self.y_edges) != h + 1:
            raise ValueError(f"edges ({len(self.x_edges)}, {len(self.y_edges)}) do not match images {w}x{h} (+1)")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of one image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def size(self) -> str:
        """``"WxH"``."""
        return format_size(self.shape[1], self.shape[0])

    def render_config(self) -> RenderConfig:
        """The :class:`RenderConfig` these images were made with."""
        return RenderConfig.from_dict(self.config)

    def pixel_box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """The m/z box ``(x_lo, x_hi, y_lo, y_hi)`` (precursor, fragment) covered by pixel ``[row, col]``."""
        h, w = self.shape
        if not (0 <= row < h and 0 <= col < w):
            raise IndexError(f"pixel ({row}, {col}) outside a {h}x{w} (H x W) image")
        return (
            float(self.x_edges[col]),
            float(self.x_edges[col + 1]),
            float(self.y_edges[row]),
            float(self.y_edges[row + 1]),
        )

    def index_of(self, accession: str) -> np.ndarray:
        """Indices of the images of ``accession`` (one, or one per replicate)."""
        return np.flatnonzero(self.ids == str(accession))

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz`` atomically, at exactly ``path``."""
        arrays: dict[str, np.ndarray] = {
            "images": self.images,
            "ids": self.ids.astype(np.str_),
            "x_edges": self.x_edges,
            "y_edges": self.y_edges,
            "config": np.array(json.dumps(self.config, sort_keys=True)),
        }
        if self.replicates is not None:
            arrays["replicates"] = self.replicates.astype(np.str_)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy adds no ".npz" suffix
            np.savez_compressed(fh, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ImageSet:
        """Read an :class:`ImageSet` written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "image file not found (run `ms2img render` first)")
        try:
            with np.load(path, allow_pickle=False) as z:
                reps = z["replicates"] if "replicates" in z.files else None
                return cls(
                    images=z["images"],
                    ids=z["ids"],
                    x_edges=z["x_edges"],
                    y_edges=z["y_edges"],
                    config=json.loads(str(z["config"])),
                    replicates=reps,
                )
        except (OSError, ValueError, KeyError) as exc:
            raise InputFileError(path, f"not an ms2img image set ({exc.__class__.__name__}: {exc})") from None


def concat_imagesets(sets: Sequence[ImageSet]) -> ImageSet:
    """Stack image sets made with the same config (same edges)."""
    if not sets:
        raise ValueError("nothing to concatenate")
    first = sets[0]
    for s in sets[1:]:
        if not (np.array_equal(s.x_edges, first.x_edges) and np.array_equal(s.y_edges, first.y_edges)):
            raise ValueError("image sets have different bin edges")
    reps = None if first.replicates is None else np.concatenate([s.replicates for s in sets])
    return ImageSet(
        images=np.concatenate([s.images for s in sets]),
        ids=np.concatenate([s.ids for s in sets]),
        x_edges=first.x_edges,
        y_edges=first.y_edges,
        config=first.config,
        replicates=reps,
    )


# --------------------------------------------------------------------------------------------------- core
def _transform(values: np.ndarray, transform: str) -> np.ndarray:
    """Clean raw intensities (negative or NaN -> 0) and apply the intensity transform."""
    v = np.fmax(np.asarray(values, dtype=np.float64), 0.0)  # fmax maps NaN to 0
    if transform == "sqrt":
        np.sqrt(v, out=v)
    elif transform == "log1p":
        np.log1p(v, out=v)
    return v


def _run_starts(rp: np.ndarray, n_rp: int) -> np.ndarray | None:
    """Row where each precursor's run starts when every precursor's rows are contiguous (the usual layout), else
    None. Contiguous rows let per-precursor maxima use ``reduceat`` instead of the slower ``maximum.at``."""
    if len(rp) == 0:
        return None
    change = rp[1:] != rp[:-1]
    if int(np.count_nonzero(change)) + 1 != n_rp:
        return None
    return np.flatnonzero(np.concatenate(([True], change)))


def _per_precursor_max(values: np.ndarray, rp: np.ndarray, n_rp: int, starts: np.ndarray | None) -> np.ndarray:
    out = np.zeros(n_rp)
    if starts is not None:
        out[rp[starts]] = np.maximum.reduceat(values, starts)
    else:
        np.maximum.at(out, rp, values)
    return out


def _scale(
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
    p_rp = _transform(_per_precursor_max(np.asarray(precursor_intensity, np.float64), rp, n_rp, starts), transform)
    f_t = _transform(fragment_intensity, transform)
    f_max = _per_precursor_max(f_t, rp, n_rp, starts)
    return _scale_in_sample(p_rp, f_max, n_rp, mp_of_rp, n_mp, n_reps), f_max, f_t


def _scale_in_sample(
    p_rp: np.ndarray, f_max: np.ndarray, n_rp: int, mp_of_rp: np.ndarray | None, n_mp: int, n_reps: float
) -> np.ndarray:
    """Precursor intensities (per replicate precursor, transformed) scaled within the sample, merged over replicates
    first when ``mp_of_rp`` is given; sets ``f_max`` to 1 where it is <= 0 (all fragments 0: values 0, not 0/0)."""
    f_max[f_max <= 0] = 1.0
    if mp_of_rp is not None:
        p_mp = np.bincount(mp_of_rp, weights=p_rp, minlength=n_mp) / float(n_reps)
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
    rp, n_rp = _dense_index(precursor_index)
    p_scaled, f_max, f_t = _scale(rp, n_rp, precursor_intensity, fragment_intensity, transform, _run_starts(rp, n_rp))
    return p_scaled[rp], f_t / f_max[rp]


def _dense_index(index: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative int codes (``0..n-1``) for an arbitrary per-row precursor index."""
    idx = np.asarray(index)
    n = len(idx)
    if n and idx.dtype.kind in "iu" and idx.min() >= 0 and idx.max() <= 4 * n + 1024:
        return idx.astype(np.intp, copy=False), int(idx.max()) + 1
    codes, uniques = pd.factorize(idx)
    return codes.astype(np.intp, copy=False), len(uniques)


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


_MASKS: dict[tuple, np.ndarray] = {}


def _cached_mask(config: RenderConfig) -> np.ndarray:
    key = (config.width, config.height, config.x_range, config.y_range)
    mask = _MASKS.get(key)
    if mask is None:
        mask = diagonal_mask(*image_edges(config))
        _MASKS[key] = mask
    return mask


def _repeated_spectra(
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


# --------------------------------------------------------------------------------------------------- kernels
# The two per-row passes (per-precursor maxima; scale, bin and aggregate) run as numba-compiled loops when numba is
# installed and the sample is large enough for it to matter, else as the vectorised numpy code in _render_group.
# Both do the same float operations in the same order, so the images are bit-identical (tests check it). The loops
# are compiled once per machine (``cache=True``: ~2 s) and loaded from numba's cache after that; each process still
# pays numba's import and start-up once (~0.5-1 s on 2 shared cores; benchmarks/render.py prints it), so a server
# should call :func:`warm_up` when it loads its model rather than on its first request.
KERNELS = ("auto", "numba", "numpy")
NUMBA_MIN_ROWS = 20_000  # "auto" uses numba from this many rows of one image on (below, numpy costs microseconds)
_kernel_mode = os.environ.get("MS2IMG_RENDER_KERNEL", "auto")
_numba_state: dict[str, Any] = {}
_numba_lock = threading.Lock()


def set_kernel(mode: str) -> str:
    """Pick the per-row loops: ``"auto"`` (default; numba for images of :data:`NUMBA_MIN_ROWS`+ rows when it is
    installed), ``"numba"`` (always; an error without numba) or ``"numpy"``. Returns the previous mode. The
    ``MS2IMG_RENDER_KERNEL`` environment variable sets the initial mode."""
    global _kernel_mode
    if mode not in KERNELS:
        raise ConfigError(f"unknown render kernel '{mode}'; choose one of {', '.join(KERNELS)}")
    previous, _kernel_mode = _kernel_mode, mode
    return previous


def _maxima_loop(rp, precursor_intensity, fragment, p_max, f_max):  # pragma: no cover - compiled by numba
    """Per replicate precursor: the raw precursor intensity's max (NaN propagates, like ``np.maximum``) and the
    max of the cleaned fragment intensities (``f_max`` starts at 0, so negatives and NaN never win). The running
    maxima stay in registers along a precursor's run of rows; selects, not branches, keep the loop predictable."""
    n = rp.shape[0]
    if n == 0:
        return
    cur = rp[0]
    pm = p_max[cur]
    fm = f_max[cur]
    for i in range(n):
        r = rp[i]
        if r != cur:
            p_max[cur] = pm
            f_max[cur] = fm
            cur = r
            pm = p_max[r]
            fm = f_max[r]
        v = precursor_intensity[i]
        pm = v if (v > pm) | np.isnan(v) else pm
        v = fragment[i]
        fm = v if v > fm else fm  # noqa: FURB136 - spelled out: NaN must lose, whatever max() does
    p_max[cur] = pm
    f_max[cur] = fm


def _bin_max_loop(rp, factor, fragment, root, x, y, x0, sx, y0, sy, w, h, acc):  # pragma: no cover - numba
    """Max-aggregate ``float32(factor[rp] * clean(fragment))`` into the flat float32 image ``acc`` (H*W); with
    ``root`` the cleaned intensity's square root (correctly rounded, as ``np.sqrt``) instead.

    Out-of-range rows go, as in the numpy path, as ``value * 0`` into pixel 0 (a no-op unless the value is NaN)."""
    zero = np.float32(0.0)
    for i in range(rp.shape[0]):
        f = fragment[i]
        f = f if f > 0.0 else 0.0  # noqa: FURB136 - negative or NaN -> 0, as np.fmax(f, 0)
        if root:
            f = np.sqrt(f)
        v = np.float32(factor[rp[i]] * f)
        cx = (x[i] - x0) * sx
        cy = (y[i] - y0) * sy
        inside = (cx >= 0.0) & (cx < w) & (cy >= 0.0) & (cy < h)
        k = np.int64(cy) * w + np.int64(cx) if inside else 0
        v = v if inside else v * zero
        a = acc[k]
        acc[k] = v if (v > a) | np.isnan(v) else a  # np.maximum: NaN propagates


def _bin_sum_loop(rp, factor, fragment, root, x, y, x0, sx, y0, sy, w, h, acc):  # pragma: no cover - numba
    """Sum-aggregate ``factor[rp] * clean(fragment)`` (float64, in row order, as ``np.bincount``) into ``acc``."""
    for i in range(rp.shape[0]):
        f = fragment[i]
        f = f if f > 0.0 else 0.0  # noqa: FURB136 - as above
        if root:
            f = np.sqrt(f)
        v = factor[rp[i]] * f
        cx = (x[i] - x0) * sx
        cy = (y[i] - y0) * sy
        inside = (cx >= 0.0) & (cx < w) & (cy >= 0.0) & (cy < h)
        k = np.int64(cy) * w + np.int64(cx) if inside else 0
        acc[k] += v if inside else v * 0.0


def _compile_kernels() -> SimpleNamespace | None:
    try:
        import numba
        from numba import types
    except ImportError:
        log.debug("numba is not installed; rendering with numpy")
        return None
    idx = types.Array(types.intp, 1, "C", readonly=True)
    ro = types.Array(types.float64, 1, "C", readonly=True)
    rw = types.Array(types.float64, 1, "C")
    f64, i64, flag = types.float64, types.int64, types.boolean
    bins = (idx, ro, ro, flag, ro, ro, f64, f64, f64, f64, i64, i64)
    sigs = {
        "maxima": (_maxima_loop, types.void(idx, ro, ro, rw, rw)),
        "bin_max": (_bin_max_loop, types.void(*bins, types.Array(types.float32, 1, "C"))),
        "bin_sum": (_bin_sum_loop, types.void(*bins, rw)),
    }
    for cache in (True, False):  # no writable cache folder (read-only install, no home): compile every process
        try:
            return SimpleNamespace(
                **{name: numba.njit(sig, cache=cache, nogil=True)(fn) for name, (fn, sig) in sigs.items()}
            )
        except Exception as exc:  # noqa: BLE001 - numba raises many types; numpy is always there
            log.warning("numba render kernels unavailable (%s: %s)", exc.__class__.__name__, exc)
    return None


def _numba_kernels() -> SimpleNamespace | None:
    """The compiled loops (compiled, or loaded from numba's cache, on first use; None without numba)."""
    if "kernels" not in _numba_state:
        with _numba_lock:
            if "kernels" not in _numba_state:
                t0 = time.perf_counter()
                _numba_state["kernels"] = _compile_kernels()
                _numba_state["seconds"] = time.perf_counter() - t0
    return _numba_state["kernels"]


def warm_up() -> float:
    """Import numba and compile (or load from its cache) the render loops now, e.g. when a server loads its model,
    so the first request does not pay for it; returns the seconds the first preparation took (0.0 without numba).
    """
    _numba_kernels()
    return float(_numba_state.get("seconds", 0.0)) if _numba_state.get("kernels") is not None else 0.0


def _kernels_for(n: int) -> SimpleNamespace | None:
    mode = _kernel_mode
    if mode == "numpy" or (mode == "auto" and n < NUMBA_MIN_ROWS):
        return None
    kernels = _numba_kernels()
    if kernels is None and mode == "numba":
        raise ConfigError("render kernel 'numba' requested but numba is not available")
    return kernels


def _c(values: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    """C-contiguous, aligned, of ``dtype`` (no copy when it already is), as the compiled loops' signatures want."""
    return np.require(values, dtype=dtype, requirements="CA")


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
    kernels = _kernels_for(n)
    transform = config.transform
    in_loop = kernels is not None and transform in ("none", "sqrt")  # the compiled loops apply the transform
    if kernels is None:
        starts = _run_starts(rp, n_rp)
        p_scaled, f_max, f_t = _scale(
            rp, n_rp, precursor_intensity, fragment_intensity, transform, starts, mp_of_rp, n_mp, n_reps
        )
    else:
        rp = _c(rp, np.intp)
        # The loops clean raw fragment intensities (negative, NaN -> 0) and take square roots on the fly (sqrt is
        # correctly rounded, hence monotone: the root of the max is the max of the roots); log1p, whose rounding
        # is the C library's, is applied by numpy first, and what the loops see then is clean already.
        f_t = _c(fragment_intensity) if in_loop else _transform(fragment_intensity, transform)
        p_max, f_max = np.zeros(n_rp), np.zeros(n_rp)
        kernels.maxima(rp, _c(precursor_intensity), f_t, p_max, f_max)
        if transform == "sqrt":
            np.sqrt(f_max, out=f_max)
        p_scaled = _scale_in_sample(_transform(p_max, transform), f_max, n_rp, mp_of_rp, n_mp, n_reps)
    factor = p_scaled / f_max  # pixel value = factor[rp] * fragment intensity
    x = np.asarray(precursor_mz, dtype=np.float64)
    y = np.asarray(fragment_mz, dtype=np.float64)
    merged = mp_of_rp is not None and n_mp < n_rp
    if merged and config.aggregation == "sum":
        f_clean = _transform(fragment_intensity, transform) if in_loop else f_t
        factor[_repeated_spectra(rp, n_rp, mp_of_rp, n_mp, y, f_clean)] = 0.0
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
        args = (rp, factor, f_t, root, _c(x), _c(y), x0, w / (x1 - x0), y0, h / (y1 - y0), w, h)
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
        img[_cached_mask(config)] = 0.0
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
    rp, n_rp = _dense_index(precursor_index)
    return _render_group(rp, n_rp, precursor_mz, precursor_intensity, fragment_mz, fragment_intensity, config, rng)


def _factorize(
    values: pd.Series, sort: bool = False, want_uniques: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Dense int64 codes and the unique values (sorted when ``sort``; None when not ``want_uniques``).

    Fast for Arrow-backed strings (pandas' default) laid out in runs (one accession per file, a precursor's
    fragments together): one vectorised comparison finds the runs and only the run heads are hashed.
    """
    n = len(values)
    arr = None
    if isinstance(values.dtype, pd.CategoricalDtype):  # as render_dir reads Parquet: codes come for free
        codes = values.array.codes.astype(np.int64)
        if n == 0 or codes.min() >= 0:
            if not (want_uniques or sort):
                return codes, None
            cats = np.asarray(values.cat.categories, dtype=object)
            if sort:
                order = np.argsort(cats.astype(str), kind="stable")
                rank = np.empty(len(order), dtype=np.int64)
                rank[order] = np.arange(len(order))
                codes, cats = rank[codes], cats[order]
            return codes, cats
    else:
        arr = _arrow_strings(values)
    if arr is None or n < 2:
        codes, uniques = pd.factorize(values, sort=sort, use_na_sentinel=False)
        return codes.astype(np.int64, copy=False), np.asarray(uniques)
    change = pc.not_equal(arr.slice(1), arr.slice(0, n - 1))
    n_change = pc.sum(change).as_py() or 0
    if n_change == 0:  # one value (one accession, one replicate)
        return np.zeros(n, dtype=np.int64), np.array([arr[0].as_py()], dtype=object)
    runs = n_change < n // 4
    if runs:
        starts = np.empty(n_change + 1, dtype=np.int64)
        starts[0] = 0
        starts[1:] = pc.indices_nonzero(change).to_numpy()
        starts[1:] += 1
        heads = arr.take(pa.array(starts))
    else:
        heads = arr
    encoded = pc.dictionary_encode(heads)
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    if not want_uniques and not sort:
        return (np.repeat(codes, np.diff(np.append(starts, n))) if runs else codes), None
    uniques = np.array(encoded.dictionary.to_pylist(), dtype=object)
    if sort:
        order = np.argsort(uniques.astype(str), kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes, uniques = rank[codes], uniques[order]
    if runs:
        codes = np.repeat(codes, np.diff(np.append(starts, n)))
    return codes, uniques


def _arrow_strings(values: pd.Series) -> pa.Array | None:
    """The column as one Arrow (large_)string array without nulls (zero-copy for Arrow-backed strings), or None."""
    if not isinstance(values.dtype, pd.StringDtype | pd.ArrowDtype):
        return None
    try:
        arr = pa.array(values)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    return arr


def _single_value(values: pd.Series) -> tuple[bool, Any]:
    """``(True, value)`` when every row holds the same non-null value, else ``(False, None)``, without hashing; for
    categoricals (as ``render_dir`` reads Parquet and the serving model builds its frame) and Arrow strings (as
    ``coerce_events`` leaves them); other dtypes answer False and take the general path.

    Arrow strings are one value when every offset step is the first string's length and the character buffer
    repeats with that period: two vectorised comparisons, no per-row Python objects.
    """
    n = len(values)
    if n == 0:
        return False, None
    if isinstance(values.dtype, pd.CategoricalDtype):
        # exactly one category (as a one-accession Parquet file or a serving request has): the general path would
        # count unused categories as accessions/replicates, which changes nothing but the jitter's random draws
        cat = values.array
        if len(cat.categories) == 1 and not cat.codes.any():
            return True, cat.categories[0]
        return False, None
    arr = _arrow_strings(values)
    if arr is None:
        return False, None
    _, offsets_buf, data_buf = arr.buffers()
    itemsize = 8 if pa.types.is_large_string(arr.type) else 4
    offsets = np.frombuffer(offsets_buf, dtype=f"<i{itemsize}", count=n + 1, offset=arr.offset * itemsize)
    size = int(offsets[1] - offsets[0])
    if int(offsets[-1] - offsets[0]) != size * n or (n > 1 and not (np.diff(offsets) == size).all()):
        return False, None
    if size:
        chars = np.frombuffer(data_buf, dtype=np.uint8, count=size * n, offset=int(offsets[0]))
        if not np.array_equal(chars[size:], chars[:-size]):
            return False, None
    return True, arr[0].as_py()


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
    feat, _ = _factorize(events["feature_id"], want_uniques=False)
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

    one_acc, acc_name = _single_value(events["accession"])
    one_rep, rep_name = _single_value(events["replicate"]) if one_acc else (False, None)
    if one_acc and one_rep:
        return _render_one_sample(events, acc_name, rep_name, config, rng)

    acc, acc_names = _factorize(events["accession"], sort=True)
    rep, rep_names = _factorize(events["replicate"], sort=True)
    feat, _ = _factorize(events["feature_id"], want_uniques=False)
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
        mz_code, mz_names = pd.factorize(np.round(rp_mz, 4))
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


# --------------------------------------------------------------------------------------------------- files
def _event_files(events_dir: str | Path) -> list[Path]:
    events_dir = Path(events_dir)
    if events_dir.is_file() and events_dir.suffix == ".parquet":
        return [events_dir]
    if not events_dir.is_dir():
        raise ConfigError(f"events folder '{events_dir}' does not exist (run `ms2img ingest` first)")
    files = sorted(events_dir.glob("*.parquet"))
    if not files:
        raise ConfigError(f"events folder '{events_dir}' holds no *.parquet files (run `ms2img ingest` first)")
    return files


def _read_render_columns(path: Path) -> pd.DataFrame:
    """The columns the renderer needs, string columns dictionary-encoded (read as categoricals: no hashing)."""
    try:
        schema = pq.read_schema(path)
        missing = [c for c in RENDER_COLUMNS if c not in schema.names]
        if missing:
            raise InputFileError(path, f"events file lacks columns {missing}")
        table = pq.read_table(path, columns=RENDER_COLUMNS, read_dictionary=["accession", "replicate", "feature_id"])
        return table.to_pandas()
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; the user needs the file name
        raise InputFileError(path, f"not a readable Parquet events file ({exc.__class__.__name__}: {exc})") from None


def render_files(
    events_dir: str | Path,
    configs: Sequence[RenderConfig],
    rng: np.random.Generator | None = None,
    progress: bool = True,
) -> list[ImageSet]:
    """Render every ``*.parquet`` in ``events_dir`` (read one at a time) at each config; one ImageSet per config."""
    files = _event_files(events_dir)
    parts: list[list[ImageSet]] = [[] for _ in configs]
    sources: dict[tuple[str, str], Path] = {}
    for f in tqdm(files, desc="render", unit="file", disable=None if progress else True):
        df = _read_render_columns(f)
        for k, cfg in enumerate(configs):
            s = render_events(df, cfg, rng=rng, progress=False)
            parts[k].append(s)
            if k == 0:
                keys = zip(s.ids, s.replicates if s.replicates is not None else [""] * len(s), strict=True)
                for key in keys:
                    if key in sources:
                        raise InputFileError(
                            f,
                            f"accession '{key[0]}' also appears in {sources[key]}; render expects each accession's "
                            "events in one file (as `ms2img ingest` writes them)",
                        )
                    sources[key] = f
    if not sources:
        raise InputFileError(events_dir, "no MS/MS events in any events file; nothing to render")
    out = []
    for k, cfg in enumerate(configs):
        s = concat_imagesets(parts[k])
        reps = s.replicates if s.replicates is not None else np.full(len(s), "")
        order = np.lexsort((reps, s.ids))
        out.append(
            ImageSet(
                s.images[order],
                s.ids[order],
                s.x_edges,
                s.y_edges,
                cfg.to_dict(),
                None if s.replicates is None else s.replicates[order],
            )
        )
    return out


def render_dir(
    events_dir: str | Path,
    out_path: str | Path,
    config: RenderConfig | None = None,
    rng: np.random.Generator | None = None,
    progress: bool = True,
) -> ImageSet:
    """Render an events folder (one Parquet file at a time, to bound memory) and save the ``.npz`` at ``out_path``."""
    config = config or RenderConfig()
    (images,) = render_files(events_dir, [config], rng=rng, progress=progress)
    images.save(out_path)
    log.info("wrote %d images (%s) to %s", len(images), config.size, out_path)
    return images


def render_dir_sizes(
    events_dir: str | Path,
    out_dir: str | Path,
    config: RenderConfig,
    sizes: Iterable[str | Sequence[int]],
    rng: np.random.Generator | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Render several resolutions in one pass over the events; writes ``out_dir/<W>x<H>.npz`` for each."""
    configs = [config.with_size(s) for s in sizes]
    sets = render_files(events_dir, configs, rng=rng, progress=progress)
    written = {}
    for cfg, s in zip(configs, sets, strict=True):
        written[cfg.size] = s.save(Path(out_dir) / f"{cfg.size}.npz")
        log.info("wrote %d images (%s) to %s", len(s), cfg.size, written[cfg.size])
    return written


# --------------------------------------------------------------------------------------------------- pictures
# Display gamma the CLI uses for PNGs. Pixel values span orders of magnitude (a product of two scaled intensities),
# so a linear 8-bit picture is nearly black apart from a few bright pixels; value ** 0.4 shows the faint fragments
# while keeping the order of intensities. Pictures only: tensors and models always see linear values.
PNG_GAMMA = 0.4


def to_uint8(image: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Scale an image to 0..255 (divided by its max, then raised to ``gamma``; 1 = linear, < 1 brightens faint
    pixels), flipped so high fragment m/z is at the top."""
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a number > 0, got {gamma!r}")
    img = np.asarray(image, dtype=np.float64)
    top = img.max() if img.size else 0.0
    v = img / top if top > 0 else np.zeros_like(img)
    if gamma != 1.0:
        v = v**gamma
    return np.round(np.clip(v, 0, 1) * 255).astype(np.uint8)[::-1]


def save_png(image: np.ndarray, path: str | Path, gamma: float = 1.0) -> Path:
    """Write one image as an 8-bit grayscale PNG for people (high fragment m/z at the top), atomically; ``gamma``
    as in :func:`to_uint8` (the CLI uses :data:`PNG_GAMMA`)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(to_uint8(image, gamma)), mode="L").save(tmp, format="PNG")
    return Path(path)


def save_pngs(imageset: ImageSet, out_dir: str | Path, limit: int | None = None, gamma: float = 1.0) -> list[Path]:
    """Write up to ``limit`` images of ``imageset`` as ``out_dir/<accession>[_<replicate>].png``."""
    from ms2img.io.schema import accession_filename

    n = len(imageset) if limit is None else min(int(limit), len(imageset))
    paths = []
    for i in range(n):
        name = imageset.ids[i] if imageset.replicates is None else f"{imageset.ids[i]}_{imageset.replicates[i]}"
        stem = accession_filename(name).removesuffix(".parquet")
        paths.append(save_png(imageset.images[i], Path(out_dir) / f"{stem}.png", gamma))
    return paths


def render_paper_recipe(events_of_one_sample: pd.DataFrame, width: int = 150, height: int = 140, **kwargs: Any):
    """The paper's matplotlib recipe (scatter at 600 dpi, then resize); comparison only. See ms2img.render_paper."""
    from ms2img.render_paper import render_paper_recipe as _paper

    return _paper(events_of_one_sample, width, height, **kwargs)
