"""ms2img.render.config: size strings, RenderConfig from params and its checks, the diagonal mask."""

from __future__ import annotations

import numpy as np
import pytest
from render_builders import random_sample

from ms2img.errors import ConfigError
from ms2img.render import (
    PAPER_SIZES,
    RenderConfig,
    diagonal_mask,
    image_edges,
    parse_size,
    render_events,
)


@pytest.mark.parametrize("size", PAPER_SIZES)
def test_mask_zero_above_the_diagonal(size):
    cfg = RenderConfig(width=size[0], height=size[1])
    x_edges, y_edges = image_edges(cfg)
    mask = diagonal_mask(x_edges, y_edges)
    assert mask.shape == (size[1], size[0])
    rows, cols = np.indices(mask.shape)
    np.testing.assert_array_equal(mask, y_edges[rows] > x_edges[cols + 1])
    assert mask[-1, 0] and not mask[0, -1]  # high fragment / low precursor masked; the opposite corner is not
    df = random_sample(np.random.default_rng(3), 400, 20, above=True)
    img = render_events(df, cfg, progress=False).images[0]
    assert (img[mask] == 0).all()
    unmasked = render_events(df, RenderConfig(width=size[0], height=size[1], mask_diagonal=False), progress=False)
    assert (unmasked.images[0][mask] > 0).any()  # there was something to mask
    # a real fragment (m/z <= precursor) never lands in a masked pixel
    below = random_sample(np.random.default_rng(4), 400, 20)
    a = render_events(below, cfg, progress=False).images[0]
    b = render_events(below, RenderConfig(width=size[0], height=size[1], mask_diagonal=False), progress=False)
    np.testing.assert_array_equal(a, b.images[0])


@pytest.mark.parametrize("text", ["150by140", "150x", "x140", "0x140", "150x140x3", "-1x5", ""])
def test_bad_size_strings(text):
    with pytest.raises(ConfigError, match="size"):
        parse_size(text)


def test_parse_size_and_config_from_params():
    assert parse_size("150x140") == (150, 140) and parse_size(" 75X70 ") == (75, 70)
    cfg = RenderConfig.from_params(
        {"size": "300x280", "sizes": ["75x70"], "x_range": [100, 1500], "aggregation": "sum", "transform": "sqrt"}
    )
    assert (cfg.width, cfg.height, cfg.aggregation, cfg.transform, cfg.x_range) == (
        300,
        280,
        "sum",
        "sqrt",
        (100.0, 1500.0),
    )
    assert RenderConfig.from_params({"size": "150x140"}, size="75x70", aggregation=None).size == "75x70"
    assert RenderConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"aggregation": "mean"}, "aggregation"),
        ({"transform": "log"}, "transform"),
        ({"ppm_jitter": -1}, "ppm_jitter"),
        ({"x_range": (1500, 100)}, "x_range"),
        ({"width": 0}, "size"),
    ],
)
def test_bad_config_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RenderConfig(**kwargs)
