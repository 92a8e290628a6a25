"""drivers.png: every label stays on the page (the x label of the drivers panel used to run off its right edge)."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from ms2img.explain.report import plot_drivers


def test_drivers_figure_keeps_its_labels_inside_the_page(tmp_path):
    rng = np.random.default_rng(0)
    xe, ye = np.linspace(100, 1500, 61), np.linspace(0, 1500, 61)
    boxes = pd.DataFrame({"box": range(1, 11), "precursor_mz_lo": 780.0, "precursor_mz_hi": 810.0,
                          "fragment_mz_lo": np.arange(10) * 60.0 + 200, "fragment_mz_hi": np.arange(10) * 60.0 + 240,
                          "contribution": 1.0})  # fmt: skip
    n = 15
    drivers = pd.DataFrame({"rank": range(1, n + 1), "precursor_mz": rng.uniform(200, 1000, n),
                            "rt_min": rng.uniform(1, 20, n), "importance": np.sort(rng.random(n))[::-1] / 10,
                            "direction": "up",
                            "library_name": ["Siomycin_A/Sporangiomycin M+2H"] * 5 + [""] * 10})  # fmt: skip
    path = plot_drivers(rng.random((60, 60)), xe, ye, boxes, drivers, tmp_path / "drivers.png", title="activity")
    rgb = mpimg.imread(path)[..., :3]
    border = np.concatenate([rgb[:, :3].ravel(), rgb[:, -3:].ravel(), rgb[:3].ravel(), rgb[-3:].ravel()])
    assert border.min() == 1.0  # white margin all round: no text or axes cut by the page edge
    assert rgb.min() == 0.0  # and the figure itself is drawn
