"""ms2img.render.kernels: the numba and numpy per-row loops give identical images; set_kernel and warm_up."""

from __future__ import annotations

import numpy as np
import pytest
from render_builders import CONFIGS, poisoned_frame

from ms2img.errors import ConfigError
from ms2img.render import RenderConfig, render_arrays, render_events


@pytest.mark.parametrize("kw", CONFIGS)
def test_numba_and_numpy_loops_give_identical_images(kernel, kw):
    """Bit-identical on a multi-accession multi-replicate frame (merged replicates, repeated spectra, NaN/inf)."""
    df = poisoned_frame(np.random.default_rng(21))
    cfg = RenderConfig(width=60, height=50, **kw)
    got = {}
    for mode in ("numpy", "numba"):
        kernel(mode)
        with np.errstate(invalid="ignore"):
            got[mode] = render_events(df, cfg, rng=np.random.default_rng(5), progress=False)
    np.testing.assert_array_equal(got["numba"].images, got["numpy"].images)
    np.testing.assert_array_equal(got["numba"].ids, got["numpy"].ids)
    one = df[(df["accession"] == "A") & (df["replicate"] == "r1")]
    arrays = {}
    for mode in ("numpy", "numba"):
        kernel(mode)
        with np.errstate(invalid="ignore"):
            arrays[mode] = render_arrays(
                one["feature_id"].to_numpy(),
                *(one[c].to_numpy() for c in ("precursor_mz", "precursor_intensity", "fragment_mz")),
                one["fragment_intensity"].to_numpy(),
                cfg,
                rng=np.random.default_rng(5),
            )
    np.testing.assert_array_equal(arrays["numba"], arrays["numpy"])


def test_set_kernel_validates_and_warm_up_reports():
    from ms2img.render import set_kernel, warm_up

    with pytest.raises(ConfigError, match="kernel"):
        set_kernel("cuda")
    assert warm_up() >= 0.0
