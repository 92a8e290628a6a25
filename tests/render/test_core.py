"""ms2img.render.core: hand-computed pixels, ranges, replicates, jitter, the single-sample fast path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from render_builders import (
    ALIGNED,
    COARSE,
    CONFIGS,
    TINY,
    as_categorical,
    events,
    expected_tiny,
    poisoned_frame,
    random_sample,
)

from ms2img.render import (
    RenderConfig,
    diagonal_mask,
    image_edges,
    render_arrays,
    render_events,
)


def reference_render(df: pd.DataFrame, config: RenderConfig) -> np.ndarray:
    """Slow, obviously-correct pandas version of one single-replicate sample (the spec, written out)."""
    df = df.copy()
    df["p"] = df["precursor_intensity"] / df.groupby("feature_id")["precursor_intensity"].transform("max").max()
    df["f"] = df["fragment_intensity"] / df.groupby("feature_id")["fragment_intensity"].transform("max")
    x_edges, y_edges = image_edges(config)
    img = np.zeros((config.height, config.width))
    for x, y, v in zip(df["precursor_mz"], df["fragment_mz"], df["p"] * df["f"], strict=True):
        if not (x_edges[0] <= x < x_edges[-1] and y_edges[0] <= y < y_edges[-1]):
            continue
        c = np.searchsorted(x_edges, x, side="right") - 1
        r = np.searchsorted(y_edges, y, side="right") - 1
        img[r, c] = max(img[r, c], v) if config.aggregation == "max" else img[r, c] + v
    img[diagonal_mask(x_edges, y_edges)] = 0
    return img


@pytest.mark.parametrize("aggregation", ["max", "sum"])
def test_tiny_example_exact_pixels(aggregation):
    s = render_events(events(TINY), RenderConfig(**COARSE, aggregation=aggregation), progress=False)
    assert s.images.shape == (1, 15, 14) and s.images.dtype == np.float32
    assert list(s.ids) == ["A"] and s.replicates is None
    np.testing.assert_allclose(s.images[0], expected_tiny(aggregation), rtol=1e-6, atol=1e-7)


def test_render_arrays_matches_render_events():
    df = events(TINY)
    cfg = RenderConfig(**COARSE)
    img = render_arrays(
        df["feature_id"].to_numpy(),
        df["precursor_mz"].to_numpy(),
        df["precursor_intensity"].to_numpy(),
        df["fragment_mz"].to_numpy(),
        df["fragment_intensity"].to_numpy(),
        cfg,
    )
    np.testing.assert_array_equal(img, render_events(df, cfg, progress=False).images[0])


@pytest.mark.parametrize("transform, fn", [("sqrt", np.sqrt), ("log1p", np.log1p)])
def test_transform_applies_to_raw_intensities_before_scaling(transform, fn):
    s = render_events(events(TINY), RenderConfig(**COARSE, transform=transform), progress=False)
    p2 = fn(100.0) / fn(200.0)
    p3 = fn(50.0) / fn(200.0)
    assert s.images[0, 1, 4] == pytest.approx(max(1.0, p2 * fn(4.0) / fn(8.0)), rel=1e-6)
    assert s.images[0, 0, 11] == pytest.approx(p3 * fn(1.0) / fn(2.0), rel=1e-6)


def test_zero_and_nan_intensities_do_not_poison_the_image():
    rows = TINY + [("A", "r1", "f9", 700.0, np.nan, 300.0, np.nan), ("A", "r1", "f8", 700.0, 0.0, 310.0, 0.0)]
    s = render_events(events(rows), RenderConfig(**COARSE), progress=False)
    assert np.isfinite(s.images).all()
    np.testing.assert_allclose(s.images[0], expected_tiny("max"), rtol=1e-6)


def test_events_outside_the_ranges_are_dropped():
    rows = TINY + [
        ("A", "r1", "lo", 90.0, 10.0, 50.0, 1.0),  # precursor below 100
        ("A", "r1", "hi", 1600.0, 10.0, 500.0, 1.0),  # precursor above 1500
        ("A", "r1", "fy", 1499.0, 10.0, 1550.0, 1.0),  # fragment above 1500
        ("A", "r1", "neg", 700.0, 10.0, -5.0, 1.0),  # fragment below 0
    ]
    s = render_events(events(rows), RenderConfig(**COARSE), progress=False)
    # the extra precursors are weaker than f1, so the in-range pixels are unchanged and nothing else appears
    np.testing.assert_allclose(s.images[0], expected_tiny("max"), rtol=1e-6)


def test_ranges_and_bins_are_half_open():
    rows = [
        ("A", "r1", "f1", 1500.0, 1.0, 1400.0, 1.0),  # precursor on the upper x limit: dropped
        ("A", "r1", "f2", 1499.9, 1.0, 1500.0, 1.0),  # fragment on the upper y limit: dropped
        ("A", "r1", "f3", 100.0, 1.0, 0.0, 1.0),  # lower limits: kept, first pixel
        ("A", "r1", "f4", 300.0, 1.0, 200.0, 1.0),  # on inner edges: the bin above
    ]
    img = render_events(events(rows), RenderConfig(**COARSE), progress=False).images[0]
    assert img[0, 0] == 1.0 and img[2, 2] == 1.0 and img.sum() == 2.0


@pytest.mark.parametrize("aggregation", ["max", "sum"])
def test_replicates_averaged_with_absence_as_zero(aggregation):
    s = render_events(events(ALIGNED), RenderConfig(**COARSE, aggregation=aggregation), progress=False)
    assert list(s.ids) == ["A"] and len(s) == 1
    img = s.images[0]
    assert img[1, 4] == pytest.approx(1.0)  # 200 / 200; the repeated spectrum counts once under sum too
    assert img[3, 7] == pytest.approx(0.25)  # 50 / 200 (not 100 / 300)
    assert np.count_nonzero(img) == 2


def test_replicate_features_with_different_ids_are_distinct_precursors():
    rows = [
        ("A", "r1", "f1", 550.0, 300.0, 150.0, 10.0),
        ("A", "r2", "x9", 550.0, 100.0, 250.0, 10.0),
        ("A", "r1", "f2", 850.0, 100.0, 300.0, 3.0),
    ]
    img = render_events(events(rows), RenderConfig(**COARSE), progress=False).images[0]
    assert img[1, 4] == pytest.approx(1.0)
    assert img[2, 4] == pytest.approx(1 / 3)
    assert img[3, 7] == pytest.approx(1 / 3)


def test_per_replicate_mode_keeps_accession_and_replicate():
    rows = ALIGNED + [("B", "r1", "g1", 700.0, 5.0, 600.0, 1.0)]
    s = render_events(events(rows), RenderConfig(**COARSE, per_replicate=True), progress=False)
    assert list(s.ids) == ["A", "A", "B"]
    assert list(s.replicates) == ["r1", "r2", "r1"]
    r1, r2, b = s.images
    assert r1[1, 4] == pytest.approx(1.0) and r1[3, 7] == pytest.approx(1 / 3)
    assert r2[1, 4] == pytest.approx(1.0) and np.count_nonzero(r2) == 1
    assert b[6, 6] == pytest.approx(1.0) and np.count_nonzero(b) == 1


def test_many_accessions_any_row_order_match_one_at_a_time():
    rng = np.random.default_rng(11)
    parts = [
        random_sample(rng, 60, 8, accession=acc, replicate=rep) for acc in ("C", "A", "B") for rep in ("r2", "r1", "r3")
    ]
    df = pd.concat(parts, ignore_index=True)
    cfg = RenderConfig(per_replicate=True)
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    s = render_events(shuffled, cfg, progress=False)
    assert list(s.ids) == [a for a in "ABC" for _ in range(3)]
    assert list(s.replicates) == ["r1", "r2", "r3"] * 3
    for i, (acc, rep) in enumerate(zip(s.ids, s.replicates, strict=True)):
        one = df[(df["accession"] == acc) & (df["replicate"] == rep)]
        expect = render_arrays(
            one["feature_id"].to_numpy(),
            one["precursor_mz"].to_numpy(),
            one["precursor_intensity"].to_numpy(),
            one["fragment_mz"].to_numpy(),
            one["fragment_intensity"].to_numpy(),
            cfg,
        )
        np.testing.assert_allclose(s.images[i], expect, rtol=1e-6)
    averaged = render_events(shuffled, RenderConfig(), progress=False)
    assert list(averaged.ids) == ["A", "B", "C"]


def test_large_input_matches_reference_in_either_row_order():
    """Linear-cost path (reduceat on grouped rows, maximum.at otherwise) against the slow reference."""
    df = random_sample(np.random.default_rng(5), 5_000, 20)
    for aggregation in ("max", "sum"):
        cfg = RenderConfig(aggregation=aggregation)
        ref = reference_render(df, cfg)
        grouped = render_events(df, cfg, progress=False).images[0]
        shuffled = render_events(df.sample(frac=1.0, random_state=2), cfg, progress=False).images[0]
        np.testing.assert_allclose(grouped, ref, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(shuffled, ref, rtol=1e-5, atol=1e-7)


def test_random_aligned_replicates_match_the_mean_reference():
    """Aligned export: one spectrum per feature repeated in each replicate present; intensities averaged."""
    rng = np.random.default_rng(9)
    base = random_sample(rng, 300, 6)
    parts = []
    for rep in ("r1", "r2", "r3"):
        present = rng.random(300) < 0.7
        part = base[np.isin(base["feature_id"], [f"f{i}" for i in np.flatnonzero(present)])].copy()
        part["replicate"] = rep
        part["precursor_intensity"] *= rng.uniform(0.5, 1.5, len(part))[0]  # replicate-wide factor
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    mean = df.groupby("feature_id")["precursor_intensity"].first().mul(0)  # index of all features
    for part in parts:
        mean = mean.add(part.groupby("feature_id")["precursor_intensity"].first(), fill_value=0)
    mean /= 3
    ref_df = df.drop_duplicates(["feature_id", "fragment_mz"]).copy()
    ref_df["precursor_intensity"] = ref_df["feature_id"].map(mean)
    for aggregation in ("max", "sum"):
        cfg = RenderConfig(aggregation=aggregation)
        got = render_events(df.sample(frac=1.0, random_state=3), cfg, progress=False).images[0]
        np.testing.assert_allclose(got, reference_render(ref_df, cfg), rtol=1e-5, atol=1e-7)


def test_ppm_jitter_is_deterministic_with_a_seed():
    df = random_sample(np.random.default_rng(6), 500, 10)
    cfg = RenderConfig(ppm_jitter=2000.0)  # large, so the images visibly differ
    a = render_events(df, cfg, rng=np.random.default_rng(1), progress=False).images
    b = render_events(df, cfg, rng=np.random.default_rng(1), progress=False).images
    c = render_events(df, cfg, rng=np.random.default_rng(2), progress=False).images
    plain = render_events(df, RenderConfig(), progress=False).images
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, plain)
    assert np.corrcoef(a.ravel(), plain.ravel())[0, 1] > 0.5  # a small perturbation, not a new image


@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("kw", CONFIGS)
def test_single_sample_fast_path_equals_the_general_path(monkeypatch, kernel, kw, categorical):
    """One accession, one replicate: the fast path (no accession/replicate codes, no sorting) gives the general
    path's images, ids and random draws, with either loop implementation."""
    import ms2img.render.core as render_core

    df = random_sample(np.random.default_rng(8), 1500, 20, accession="ACC1", replicate="r7", above=True)
    df = as_categorical(df) if categorical else df
    cfg = RenderConfig(width=60, height=50, **kw)
    for mode in ("numpy", "numba"):
        kernel(mode)
        fast = render_events(df, cfg, rng=np.random.default_rng(3), progress=False)
        with monkeypatch.context() as m:
            m.setattr(render_core, "single_value", lambda values: (False, None))
            general = render_events(df, cfg, rng=np.random.default_rng(3), progress=False)
        np.testing.assert_array_equal(fast.images, general.images)
        assert list(fast.ids) == list(general.ids) == ["ACC1"]
        assert (fast.replicates is None and general.replicates is None) or list(fast.replicates) == ["r7"] == list(
            general.replicates
        )


@pytest.mark.parametrize("categorical", [False, True])
def test_fast_path_per_sample_equals_general_path_on_many_samples(kernel, categorical):
    """Multi-accession multi-replicate frame: each per-replicate image of the general path equals the fast path's
    rendering of that sample's rows alone (both loop implementations)."""
    from ms2img.render.arrow import single_value

    df = poisoned_frame(np.random.default_rng(22))
    df = as_categorical(df) if categorical else df
    for mode in ("numpy", "numba"):
        kernel(mode)
        for aggregation in ("max", "sum"):
            cfg = RenderConfig(width=60, height=50, aggregation=aggregation, per_replicate=True)
            with np.errstate(invalid="ignore"):
                whole = render_events(df, cfg, progress=False)
            assert len(whole) == 9
            for img, acc, rep in zip(whole.images, whole.ids, whole.replicates, strict=True):
                one = df[(df["accession"] == acc) & (df["replicate"] == rep)].copy()
                if categorical:  # one category each, as a one-accession Parquet file reads
                    for c in ("accession", "replicate", "feature_id"):
                        one[c] = one[c].cat.remove_unused_categories()
                assert single_value(one["accession"])[0]  # the fast path is taken
                with np.errstate(invalid="ignore"):
                    alone = render_events(one, cfg, progress=False)
                assert list(alone.ids) == [acc]
                np.testing.assert_array_equal(alone.images[0], img)
