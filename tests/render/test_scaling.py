"""ms2img.render.scaling: the two intensity scalings and the replicate mean."""

from __future__ import annotations

import numpy as np
from render_builders import TINY, events

from ms2img.render import scaled_intensities


def test_scaled_intensities_are_the_two_scalings():
    df = events(TINY)
    p, f = scaled_intensities(
        df["feature_id"].to_numpy(), df["precursor_intensity"].to_numpy(), df["fragment_intensity"].to_numpy()
    )
    np.testing.assert_allclose(p, [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(f, [1, 0.5, 0.5, 1, 1, 0.5])


def test_replicate_mean_counts_absence_as_zero():
    from ms2img.render import replicate_mean

    # item 0 in all three replicates, item 1 in one of three, item 2 of another accession with two replicates
    got = replicate_mean([3.0, 6.0, 9.0, 6.0, 4.0], [0, 0, 0, 1, 2], 3, np.array([3, 3, 2]))
    np.testing.assert_allclose(got, [6.0, 2.0, 2.0])
    np.testing.assert_allclose(replicate_mean([1.0, 1.0], [1, 1], 3, 2), [0.0, 1.0, 0.0])
