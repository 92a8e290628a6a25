"""benchmarks/science.py's report: the paired difference cnn - rf-image and the lines scripts parse (no training)."""

from __future__ import annotations

import re
from typing import Any

from builders import load_benchmark


def _science():
    return load_benchmark("science")


def _auc(mean: float) -> dict[str, float]:
    return {"mean": mean, "sd": 0.05, "ci_low": mean - 0.1, "ci_high": mean + 0.1}


def _metrics(paired: dict[str, Any]) -> dict[str, Any]:
    families = {"rf-image": {"auc": _auc(0.81), "seconds": 3.0}, "cnn": {"auc": _auc(0.74), "seconds": 40.0}}
    return {"folds": 5, "repeats": 3, "families": families, "paired": paired, "oplsda": {"q2y": 0.21}}


def test_paired_difference_is_cnn_minus_rf_image_whichever_order_train_stored() -> None:
    sci = _science()
    stored = {"diff": 0.07, "ci_low": 0.01, "ci_high": 0.13, "p_value": 0.03, "n_folds": 15}
    t = sci.paired(_metrics({"rf-image vs cnn": stored}), "cnn", "rf-image")
    assert t["diff"] == -0.07 and (t["ci_low"], t["ci_high"]) == (-0.13, -0.01) and t["p_value"] == 0.03
    assert sci.verdict(t, "cnn", "rf-image") == "rf-image better"
    assert sci.paired(_metrics({"cnn vs rf-image": stored}), "cnn", "rf-image")["diff"] == 0.07
    assert sci.paired(_metrics({}), "cnn", "rf-image") is None
    assert sci.verdict({"ci_low": -0.05, "ci_high": 0.02}, "cnn", "rf-image") == "undecided"


def test_summary_prints_the_interval_then_folds_x_repeats_then_the_auc_lines() -> None:
    sci = _science()
    pair = {"diff": -0.07, "ci_low": -0.15, "ci_high": 0.01, "p_value": 0.08, "n_folds": 15}
    metrics = {"DPPH": _metrics({"cnn vs rf-image": pair}), "TPC": _metrics({})}
    table, closing = sci.summary_lines(metrics, {"DPPH": {"winner": "rf-image"}}, {"cv": {"folds": 5, "repeats": 3}})
    text = "\n".join(table)
    assert "DPPH      -0.070 [-0.150, +0.010] p=0.080 (15 folds): undecided" in text
    assert "TPC       -  (cnn or rf-image not trained)" in text
    assert re.search(r"^DPPH\s+rf-image\s+0\.810 ± 0\.050\s+\[0\.71, 0\.91\]\s+0\.080\s+3$", text, re.MULTILINE)
    assert "DPPH      cnn -0.070 (OUTSIDE); best network family cnn -0.070 (not ahead)" in text
    assert "cnn within 0.02 on 0/1 assays; a family with a network ahead on 0/1" in text
    near = {"cnn vs rf-image": {**pair, "diff": -0.015}, "image-ensemble vs rf-image": {**pair, "diff": 0.01}}
    lines = sci.bar_lines({"DPPH": _metrics(near), "TPC": _metrics({"rf-image vs cnn": {**pair, "diff": -0.03}})})
    assert "DPPH      cnn -0.015 (within); best network family image-ensemble +0.010 (ahead)" in lines
    assert "TPC       cnn +0.030 (within); best network family cnn +0.030 (ahead)" in lines
    assert lines[-1] == "cnn within 0.02 on 2/2 assays; a family with a network ahead on 2/2"
    assert closing[0] == "5 folds x 3 repeats"
    assert closing[1:] == [
        "DPPH rf-image auc=0.8100 sd=0.0500",
        "DPPH cnn auc=0.7400 sd=0.0500",
        "TPC rf-image auc=0.8100 sd=0.0500",
        "TPC cnn auc=0.7400 sd=0.0500",
    ]


def test_repeats_default_to_three_and_set_overrides() -> None:
    sci = _science()
    assert sci.REPEATS >= 3
    params: dict[str, Any] = {"cv": {"folds": 5, "repeats": 1}}
    params["cv"]["repeats"] = sci.REPEATS
    sci.set_values(params, ["cv.repeats=2", "train.families=[cnn, rf-image]"])
    assert params["cv"]["repeats"] == 2 and params["train"]["families"] == ["cnn", "rf-image"]
