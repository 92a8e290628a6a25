"""How a driver is shown to people (CLI, drivers figure, HTML report, model card): its name and its fold change.

One home, so the four places never disagree; the drivers CSV keeps every raw column.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# a hit names a feature only from this entropy similarity and number of matched peaks on (GNPS-like bars): an
# open-search best hit always exists, and at scores near 0.01 with one shared peak it names an unrelated compound
NAME_MIN_SCORE = 0.7
NAME_MIN_PEAKS = 3


def shown_name(row: Any) -> str:
    """The label of a driver (a dict or a row of the drivers table): its library identity, else ``~analogue`` when
    the open-search hit reaches ``NAME_MIN_SCORE`` with ``NAME_MIN_PEAKS`` matched peaks, else ''."""
    get = _getter(row)
    identity = _plain(get("library_name", ""))
    if identity:
        return identity
    analogue = _plain(get("analogue_name", ""))
    named = analogue and names_compound(get("analogue_score", None), get("analogue_matched_peaks", None))
    return f"~{analogue}" if named else ""


def names_compound(score: Any, matched_peaks: Any) -> bool:
    """A library hit good enough to name a driver, identity or analogue alike: entropy similarity >=
    ``NAME_MIN_SCORE`` with >= ``NAME_MIN_PEAKS`` matched peaks (the open search always has a best hit, most of them
    unrelated; an identity hit only needs a precursor within 0.01 Da, and at 0.03 with 2 peaks it named a positive
    ion after a [M-H]- standard)."""
    return _number(score) >= NAME_MIN_SCORE and _number(matched_peaks) >= NAME_MIN_PEAKS


def _getter(row: Any) -> Any:
    """``get(key, default)`` on a dict or on a row of ``DataFrame.itertuples``."""
    return row.get if isinstance(row, dict) else lambda key, default=None: getattr(row, key, default)


def _plain(value: Any) -> str:
    """A name cell as text: '' for missing values (NaN, None, pd.NA)."""
    import pandas as pd

    return "" if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)) else str(value).strip()


def _number(value: Any) -> float:
    """A score or count cell as a float; -inf when missing or not a number (below any bar)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return -np.inf
    return x if np.isfinite(x) else -np.inf


def fold_text(row: Any) -> str:
    """The fold change high / low as text: ``1.90``, or ``high only`` / ``low only`` when the other group never
    shows the compound (the ratio there is inf or 0; drivers written before read 771239, a division by a floor)."""
    get = _getter(row)
    high, low, fold = _number(get("mean_high", None)), _number(get("mean_low", None)), _number(get("fold_change", None))
    if low == 0 and high > 0:
        return "high only"
    if high == 0 and low > 0:
        return "low only"
    return f"{fold:.2f}" if np.isfinite(fold) else "-"
