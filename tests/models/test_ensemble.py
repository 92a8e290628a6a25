"""The image ensemble's score: mean quantile of its two members."""

from __future__ import annotations

import numpy as np

from ms2img.models.ensemble import mean_quantile


def test_equal_quantile_sums_are_a_tie_not_a_float_accident():
    """Ranks 0 + 2 and 1 + 1 among 137 held-out predictions are the same score; AUC must see a tie (one half)."""
    reference = np.arange(137, dtype=float)
    refs = {"cnn": reference, "rf-image": reference}
    scores = mean_quantile(refs, {"cnn": np.array([0.0, 1.0]), "rf-image": np.array([2.0, 1.0])})
    assert scores[0] == scores[1]
    assert abs(scores[0] - 3 / 274) < 1e-12  # mid-ranks 0.5 and 2.5 of 137, averaged
