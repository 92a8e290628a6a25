"""ms2img.render.paper: the paper's matplotlib recipe agrees with the binned images."""

from __future__ import annotations

import numpy as np
from render_builders import random_sample

from ms2img.render import RenderConfig, diagonal_mask, image_edges, render_events, render_paper_recipe


def test_paper_recipe_shape_mask_and_agreement():
    df = random_sample(np.random.default_rng(7), 300, 10)
    paper = render_paper_recipe(df, 75, 70)
    assert paper.shape == (70, 75) and paper.dtype == np.float32
    assert 0 <= paper.min() and paper.max() <= 1 and paper.max() > 0
    cfg = RenderConfig(width=75, height=70)
    assert (paper[diagonal_mask(*image_edges(cfg))] == 0).all()
    ours = render_events(df, cfg, progress=False).images[0]
    assert np.corrcoef(paper.ravel(), ours.ravel())[0, 1] > 0.1
    # where we put mass the paper's picture is brighter than where we put none
    assert paper[ours > 0].mean() > 3 * paper[(ours == 0) & ~diagonal_mask(*image_edges(cfg))].mean()
