"""ms2img.render.imageset: .npz round trip and errors, pixel boxes back to m/z, the one image path."""

from __future__ import annotations

import numpy as np
import pytest
from render_builders import ALIGNED, events

from ms2img.errors import ConfigError, InputFileError
from ms2img.render import ImageSet, RenderConfig, render_events


@pytest.mark.parametrize("name", ["images.npz", "images_without_suffix"])
def test_save_load_round_trip(tmp_path, name):
    s = render_events(events(ALIGNED), RenderConfig(per_replicate=True), progress=False)
    path = s.save(tmp_path / name)
    assert path == tmp_path / name and path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp files or extra ".npz" left behind
    back = ImageSet.load(path)
    np.testing.assert_array_equal(back.images, s.images)
    np.testing.assert_array_equal(back.ids, s.ids)
    np.testing.assert_array_equal(back.replicates, s.replicates)
    np.testing.assert_array_equal(back.x_edges, s.x_edges)
    np.testing.assert_array_equal(back.y_edges, s.y_edges)
    assert back.config == s.config and back.render_config() == RenderConfig(per_replicate=True)


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not an npz")
    with pytest.raises(InputFileError, match="bad.npz"):
        ImageSet.load(bad)
    with pytest.raises(InputFileError, match="missing.npz"):
        ImageSet.load(tmp_path / "missing.npz")


def test_pixel_box_maps_back_to_mz():
    rows = [("A", "r1", "f1", 555.5, 1.0, 160.2, 1.0)]
    s = render_events(events(rows), RenderConfig(), progress=False)
    (row,), (col,) = np.nonzero(s.images[0])
    x_lo, x_hi, y_lo, y_hi = s.pixel_box(row, col)
    assert x_lo <= 555.5 < x_hi and y_lo <= 160.2 < y_hi
    assert x_hi - x_lo == pytest.approx(1400 / 150) and y_hi - y_lo == pytest.approx(1500 / 140)
    assert s.pixel_box(0, 0) == (100.0, pytest.approx(100 + 1400 / 150), 0.0, pytest.approx(1500 / 140))
    with pytest.raises(IndexError):
        s.pixel_box(140, 0)


def test_images_path_is_the_one_spelling_of_the_image_file():
    from pathlib import Path

    from ms2img.render import IMAGES_ROOT, images_path

    assert images_path("150x140") == Path("data/images/150x140.npz") == IMAGES_ROOT / "150x140.npz"
    assert images_path((75, 70), "elsewhere") == Path("elsewhere/75x70.npz")
    assert images_path(" 300X280 ") == Path("data/images/300x280.npz")
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        images_path("big")
