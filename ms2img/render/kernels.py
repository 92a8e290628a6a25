"""The renderer's per-row loops: numba-compiled when numba is installed, else the numpy code in ``core``."""

from __future__ import annotations

import logging
import os
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from ms2img.errors import ConfigError

log = logging.getLogger(__name__)


# The two per-row passes (per-precursor maxima; scale, bin and aggregate) run as numba-compiled loops when numba is
# installed and the sample is large enough for it to matter, else as the vectorised numpy code in core._render_group.
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


def get_kernel() -> str:
    """The current per-row loop mode (see :func:`set_kernel`)."""
    return _kernel_mode


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


def kernels_for(n: int) -> SimpleNamespace | None:
    """The compiled loops to use for an image of ``n`` rows under the current mode, or None for numpy."""
    mode = _kernel_mode
    if mode == "numpy" or (mode == "auto" and n < NUMBA_MIN_ROWS):
        return None
    kernels = _numba_kernels()
    if kernels is None and mode == "numba":
        raise ConfigError("render kernel 'numba' requested but numba is not available")
    return kernels


def contiguous(values: np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    """C-contiguous, aligned, of ``dtype`` (no copy when it already is), as the compiled loops' signatures want."""
    return np.require(values, dtype=dtype, requirements="CA")
