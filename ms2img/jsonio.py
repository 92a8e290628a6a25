"""One JSON converter for every file the project writes (metrics, reports, validation, cards).

Two rules for non-finite numbers, because the files mean different things: metrics files hold numbers only, so
NaN/inf become ``null`` (DVC and MLflow read them); reports of bad input show the offending value itself, so
NaN/inf become the strings ``"NaN"``, ``"inf"``, ``"-inf"``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ms2img.atomic import write_text

NonFinite = Literal["null", "text"]


def to_jsonable(obj: Any, nonfinite: NonFinite = "null") -> Any:
    """Plain-JSON version of ``obj``: numpy and pandas values to Python, keys to str, NaN/inf by ``nonfinite``."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        if nonfinite == "null":
            return None
        return "NaN" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v, nonfinite) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return [to_jsonable(v, nonfinite) for v in sorted(obj, key=str)]
    if isinstance(obj, list | tuple):
        return [to_jsonable(v, nonfinite) for v in obj]
    try:
        import pandas as pd

        if isinstance(obj, pd.DataFrame):
            return to_jsonable(obj.to_dict(orient="records"), nonfinite)
        if isinstance(obj, pd.Series):
            return to_jsonable(obj.to_dict(), nonfinite)
        if obj is pd.NA or obj is pd.NaT:
            return None
    except ImportError:  # pragma: no cover
        pass
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return to_jsonable(obj.tolist(), nonfinite)
    if hasattr(obj, "item"):
        return to_jsonable(obj.item(), nonfinite)
    if nonfinite == "null":  # metrics hold numbers: anything else is a bug, not a value to stringify
        raise TypeError(f"cannot write {type(obj).__name__} to a metrics file")
    return str(obj)


def write_json(path: str | Path, payload: Any, nonfinite: NonFinite = "null") -> Path:
    """Write ``payload`` as sorted, indented strict JSON, atomically."""
    text = json.dumps(to_jsonable(payload, nonfinite), sort_keys=True, indent=2, allow_nan=False)
    return write_text(path, text + "\n")
