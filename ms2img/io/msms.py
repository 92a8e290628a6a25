"""MS-DIAL-style MS/MS strings (``"mz:int mz:int ..."``), shared by the MS-DIAL reader and the serving model."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ms2img.errors import InputFileError

# Values MS-DIAL (and people) write for "no spectrum".
EMPTY_MSMS = frozenset({"", "null", "na", "nan", "none"})
_SEPARATORS = re.compile(r"[\s;]+")
_EMPTY = np.empty(0, dtype=np.float64)


def is_empty_msms(text: object) -> bool:
    """True for a missing MS/MS cell (NaN, None, empty, ``null``, ``NA``)."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return True
    return str(text).strip().lower() in EMPTY_MSMS


def parse_msms(
    text: object, path: str | Path | None = None, line: int | None = None, column: str | None = "MS/MS spectrum"
) -> tuple[np.ndarray, np.ndarray]:
    """Parse ``"mz:int mz:int"`` (pairs separated by spaces or ``;``) into float64 m/z and intensity arrays.

    An empty cell gives two empty arrays. Anything else that is not pairs of finite numbers with m/z > 0 and
    intensity >= 0 raises ``InputFileError`` naming ``path`` and ``line``.
    """
    if is_empty_msms(text):
        return _EMPTY, _EMPTY
    tokens = _SEPARATORS.split(str(text).strip())
    try:
        pairs = np.array([t.split(":") for t in tokens], dtype=np.float64)
        ok = pairs.ndim == 2 and pairs.shape[1] == 2
    except ValueError:
        ok = False
    if not ok:
        bad = next((t for t in tokens if not _is_pair(t)), tokens[0])
        raise _error(path, line, column, f"MS/MS peak '{_short(bad)}' is not 'mz:intensity'")
    mz, intensity = pairs[:, 0], pairs[:, 1]
    if not (np.isfinite(mz).all() and np.isfinite(intensity).all()):
        i = int(np.flatnonzero(~(np.isfinite(mz) & np.isfinite(intensity)))[0])
        raise _error(path, line, column, f"MS/MS peak '{_short(tokens[i])}' is not a finite number")
    if (mz <= 0).any():
        i = int(np.flatnonzero(mz <= 0)[0])
        raise _error(path, line, column, f"MS/MS peak '{_short(tokens[i])}' has m/z <= 0")
    if (intensity < 0).any():
        i = int(np.flatnonzero(intensity < 0)[0])
        raise _error(path, line, column, f"MS/MS peak '{_short(tokens[i])}' has a negative intensity")
    return np.ascontiguousarray(mz), np.ascontiguousarray(intensity)


def format_msms(mz: np.ndarray, intensity: np.ndarray, decimals: int = 5) -> str:
    """The inverse of :func:`parse_msms`: ``"mz:int mz:int"`` (used by the synthetic cohort and clients)."""
    return " ".join(f"{m:.{decimals}f}:{i:.6g}" for m, i in zip(mz, intensity, strict=True))


def _is_pair(token: str) -> bool:
    parts = token.split(":")
    if len(parts) != 2:
        return False
    try:
        float(parts[0]), float(parts[1])
    except ValueError:
        return False
    return True


def _short(token: str, n: int = 40) -> str:
    return token if len(token) <= n else token[: n - 3] + "..."


def _error(path: str | Path | None, line: int | None, column: str | None, problem: str) -> Exception:
    if path is None:
        where = f"line {line}: " if line is not None else ""
        return ValueError(f"{where}{problem}")
    return InputFileError(path, problem, line=line, column=column)
