"""ms2img.render.pictures: PNG orientation and file names, the display gamma (tensors stay linear)."""

from __future__ import annotations

import numpy as np
from render_builders import ALIGNED, TINY, events, expected_tiny, write_events_dir

from ms2img.cli import main
from ms2img.render import ImageSet, RenderConfig, render_events, save_png, save_pngs


def test_png_written_with_high_fragment_mz_on_top(tmp_path):
    from PIL import Image

    rows = [("A", "r1", "f1", 1400.0, 1.0, 1300.0, 1.0), ("A", "r1", "f1", 1400.0, 1.0, 10.0, 0.5)]
    s = render_events(events(rows), RenderConfig(), progress=False)
    path = save_png(s.images[0], tmp_path / "a.png")
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (150, 140)
        px = np.asarray(im)
    bright = np.argwhere(px == 255)
    assert len(bright) == 1 and bright[0][0] < 30  # the high fragment is near the top
    assert (px[-1] > 0).any()  # the low fragment is in the bottom row
    paths = save_pngs(
        render_events(events(ALIGNED), RenderConfig(per_replicate=True), progress=False), tmp_path / "p", limit=1
    )
    assert [p.name for p in paths] == ["A_r1.png"] and paths[0].is_file()


def test_cli_pngs_use_a_display_gamma_and_tensors_stay_linear(tmp_path):
    from PIL import Image

    from ms2img.render import PNG_GAMMA

    ev = write_events_dir(tmp_path / "events", {"A": TINY})
    for gamma in (None, 1.0):
        flag = [] if gamma is None else ["--png-gamma", str(gamma)]
        out = tmp_path / f"{gamma}.npz"
        png = tmp_path / f"png{gamma}"
        args = ["--out", str(out), "--size", "14x15", "--transform", "none", "--png-dir", str(png), *flag]
        assert main(["render", str(ev), *args]) == 0
        img = ImageSet.load(out).images[0]
        np.testing.assert_allclose(img, expected_tiny("max"), rtol=1e-6)  # linear values in the tensor
        with Image.open(png / "A.png") as im:
            px = np.asarray(im)[::-1]  # back to row 0 = lowest fragment m/z
        g = PNG_GAMMA if gamma is None else gamma
        assert px[0, 11] == round(255 * (0.25 * 0.5) ** g)  # 0.125 of the brightest pixel
    assert PNG_GAMMA < 1  # the default lifts faint pixels: 0.125 -> 111 of 255 at gamma 0.4, 32 when linear
