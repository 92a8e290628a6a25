"""benchmarks/explain_truth.py: how drivers are matched to a synthetic cohort's planted actives."""

from __future__ import annotations

import pandas as pd
from builders import load_benchmark

truth_scoring = load_benchmark("explain_truth")


def test_match_actives_tolerances():
    truth = pd.DataFrame({"assay": ["A", "A", "B"], "compound": ["x", "y", "z"],
                          "precursor_mz": [300.0, 900.0, 500.0], "rt_min": [2.0, 3.0, 4.0], "weight": [0.5, 0.5, 1.0],
                          "library_name": ["", "Y", ""]})  # fmt: skip
    drivers = pd.DataFrame({"rank": [1, 2, 3, 4], "precursor_mz": [300.009, 900.008, 900.0, 500.0],
                            "rt_min": [2.25, 3.0, 3.5, 4.0], "library_name": ["", "y", "", ""]})  # fmt: skip
    assert list(truth_scoring.match_actives(drivers, truth, "A")) == ["x", "y", "", ""]  # 0.01 Da or 10 ppm, RT 0.3 min
    s = truth_scoring.precision_at_k(drivers, truth, "A", k=4)
    assert s["precision"] == 0.5 and s["annotated_share"] == 0.25 and s["n_actives"] == 2
