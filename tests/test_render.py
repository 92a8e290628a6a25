"""MS2toImg rendering: hand-computed pixels, masking, replicates, persistence, the paper recipe, CLI errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ms2img.cli import main
from ms2img.errors import ConfigError, InputFileError
from ms2img.io.schema import EVENT_COLUMNS, coerce_events, write_events
from ms2img.render import (
    PAPER_SIZES,
    ImageSet,
    RenderConfig,
    diagonal_mask,
    image_edges,
    parse_size,
    render_arrays,
    render_dir,
    render_dir_sizes,
    render_events,
    render_paper_recipe,
    save_png,
    save_pngs,
    scaled_intensities,
)

# 100 m/z per bin on both axes: x 100..1500 in 14 columns, y 0..1500 in 15 rows.
COARSE = {"width": 14, "height": 15}


def events(rows: list[tuple]) -> pd.DataFrame:
    """Canonical events from (accession, replicate, feature_id, precursor_mz, precursor_int, fragment_mz, frag_int)."""
    df = pd.DataFrame(
        rows,
        columns=[
            "accession",
            "replicate",
            "feature_id",
            "precursor_mz",
            "precursor_intensity",
            "fragment_mz",
            "fragment_intensity",
        ],
    )
    df["rt_min"] = 1.0
    df["polarity"] = "positive"
    return coerce_events(df[EVENT_COLUMNS])


def random_sample(rng: np.random.Generator, n_prec: int, n_frag: int, accession="A", replicate="r1", above=False):
    """A synthetic sample: fragments below their precursor (or anywhere when ``above``)."""
    pmz = rng.uniform(80, 1550, n_prec)
    pint = rng.lognormal(10, 2, n_prec)
    frac = rng.uniform(0, 1.3 if above else 1.0, (n_prec, n_frag))
    fmz = (frac * pmz[:, None]).ravel()
    fint = rng.lognormal(5, 1, n_prec * n_frag)
    idx = np.repeat(np.arange(n_prec), n_frag)
    return pd.DataFrame(
        {
            "accession": accession,
            "replicate": replicate,
            "feature_id": np.char.add("f", idx.astype(str)),
            "precursor_mz": pmz[idx],
            "rt_min": 1.0,
            "precursor_intensity": pint[idx],
            "fragment_mz": fmz,
            "fragment_intensity": fint,
            "polarity": "positive",
        }
    ).pipe(coerce_events)


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


TINY = [
    # f1: precursor 550 (column 4), intensity 200 -> 1.0; fragments 150 (row 1) 10 -> 1.0, 250 (row 2) 5 -> 0.5
    ("A", "r1", "f1", 550.0, 200.0, 150.0, 10.0),
    ("A", "r1", "f1", 550.0, 200.0, 250.0, 5.0),
    # f2: precursor 555 (column 4), intensity 100 -> 0.5; fragments 160 (row 1) 4 -> 0.5, 270 (row 2) 8 -> 1.0
    ("A", "r1", "f2", 555.0, 100.0, 160.0, 4.0),
    ("A", "r1", "f2", 555.0, 100.0, 270.0, 8.0),
    # f3: precursor 1250 (column 11), intensity 50 -> 0.25; fragments 1200 (row 12) 2 -> 1.0, 90 (row 0) 1 -> 0.5
    ("A", "r1", "f3", 1250.0, 50.0, 1200.0, 2.0),
    ("A", "r1", "f3", 1250.0, 50.0, 90.0, 1.0),
]


def expected_tiny(aggregation: str) -> np.ndarray:
    img = np.zeros((15, 14), np.float32)
    if aggregation == "max":
        img[1, 4] = max(1.0 * 1.0, 0.5 * 0.5)
        img[2, 4] = max(1.0 * 0.5, 0.5 * 1.0)
    else:
        img[1, 4] = 1.0 * 1.0 + 0.5 * 0.5
        img[2, 4] = 1.0 * 0.5 + 0.5 * 1.0
    img[12, 11] = 0.25 * 1.0
    img[0, 11] = 0.25 * 0.5
    return img


# ------------------------------------------------------------------------------------------ exact pixel values
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


def test_scaled_intensities_are_the_two_scalings():
    df = events(TINY)
    p, f = scaled_intensities(
        df["feature_id"].to_numpy(), df["precursor_intensity"].to_numpy(), df["fragment_intensity"].to_numpy()
    )
    np.testing.assert_allclose(p, [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(f, [1, 0.5, 0.5, 1, 1, 0.5])


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


# ------------------------------------------------------------------------------------------ ranges and mask
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


# ------------------------------------------------------------------------------------------ replicates
ALIGNED = [
    # f1 seen in both replicates (300 and 100 -> mean 200), the aligned export repeats its spectrum
    ("A", "r1", "f1", 550.0, 300.0, 150.0, 10.0),
    ("A", "r2", "f1", 550.0, 100.0, 150.0, 10.0),
    # f2 only in r1 (100 -> mean 50, absence counted as zero)
    ("A", "r1", "f2", 850.0, 100.0, 300.0, 3.0),
]


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


# ------------------------------------------------------------------------------------------ jitter
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


# ------------------------------------------------------------------------------------------ persistence
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


# ------------------------------------------------------------------------------------------ paper recipe
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


# ------------------------------------------------------------------------------------------ config and CLI
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


def test_render_dir_errors(tmp_path):
    with pytest.raises(ConfigError, match="no \\*.parquet"):
        render_dir(tmp_path, tmp_path / "out.npz", RenderConfig())
    with pytest.raises(ConfigError, match="does not exist"):
        render_dir(tmp_path / "nope", tmp_path / "out.npz", RenderConfig())
    (tmp_path / "bad.parquet").write_text("garbage")
    with pytest.raises(InputFileError, match="bad.parquet"):
        render_dir(tmp_path, tmp_path / "out.npz", RenderConfig())


def write_events_dir(path, rows_by_file: dict[str, list[tuple]]):
    path.mkdir(parents=True, exist_ok=True)
    for name, rows in rows_by_file.items():
        write_events(events(rows), path / f"{name}.parquet")
    return path


def test_render_dir_reads_files_one_by_one_and_sorts(tmp_path):
    ev = write_events_dir(tmp_path / "events", {"B": [("B", "r1", "g1", 700.0, 5.0, 600.0, 1.0)], "A": ALIGNED})
    s = render_dir(ev, tmp_path / "img.npz", RenderConfig(**COARSE), progress=False)
    assert list(s.ids) == ["A", "B"]
    back = ImageSet.load(tmp_path / "img.npz")
    whole = render_events(
        pd.concat([events(ALIGNED), events([("B", "r1", "g1", 700.0, 5.0, 600.0, 1.0)])]),
        RenderConfig(**COARSE),
        progress=False,
    )
    np.testing.assert_array_equal(back.images, whole.images)
    written = render_dir_sizes(ev, tmp_path / "multi", RenderConfig(), ["75x70", "150x140"], progress=False)
    assert sorted(written) == ["150x140", "75x70"]
    assert ImageSet.load(written["75x70"]).images.shape == (2, 70, 75)


def test_render_dir_rejects_an_accession_split_over_files(tmp_path):
    ev = write_events_dir(tmp_path / "events", {"a1": ALIGNED[:1], "a2": ALIGNED[1:]})
    with pytest.raises(InputFileError, match="also appears"):
        render_dir(ev, tmp_path / "img.npz", RenderConfig(), progress=False)


def test_render_dir_with_no_events_at_all(tmp_path):
    ev = write_events_dir(tmp_path / "events", {"A": []})
    with pytest.raises(InputFileError, match="no MS/MS events"):
        render_dir(ev, tmp_path / "img.npz", RenderConfig(), progress=False)
    assert not (tmp_path / "img.npz").exists()


def test_cli_render_single_and_multiple_sizes(tmp_path, capsys):
    ev = write_events_dir(tmp_path / "events", {"A": ALIGNED, "B": [("B", "r1", "g1", 700.0, 5.0, 600.0, 1.0)]})
    out = tmp_path / "img" / "75x70.npz"
    rc = main(["render", str(ev), "--out", str(out), "--size", "75x70", "--aggregation", "sum",
               "--png-dir", str(tmp_path / "png"), "--png-limit", "1"])  # fmt: skip
    assert rc == 0
    s = ImageSet.load(out)
    assert s.images.shape == (2, 70, 75) and s.config["aggregation"] == "sum"
    assert len(list((tmp_path / "png").glob("*.png"))) == 1
    rc = main(["render", str(ev), "--sizes", "75x70,300x280", "--out-dir", str(tmp_path / "multi"), "--per-replicate"])
    assert rc == 0
    assert ImageSet.load(tmp_path / "multi" / "300x280.npz").replicates.tolist() == ["r1", "r2", "r1"]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--size", "150by140"], "150by140"),
        (["--aggregation", "median"], "aggregation"),
        (["--transform", "log2"], "transform"),
        (["--sizes", "75x70", "--out", "x.npz"], "--out-dir"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, extra, message):
    ev = write_events_dir(tmp_path / "events", {"A": ALIGNED})
    out = [] if "--out" in extra else ["--out", str(tmp_path / "o.npz")]
    assert main(["render", str(ev), *out, *extra]) == 2
    assert not (tmp_path / "o.npz").exists()
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_empty_events_dir(tmp_path, capsys):
    (tmp_path / "events").mkdir()
    assert main(["render", str(tmp_path / "events"), "--out", str(tmp_path / "o.npz")]) == 2
    assert "no *.parquet" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ fast paths
def poisoned_frame(rng: np.random.Generator) -> pd.DataFrame:
    """Three accessions x three replicates (some features aligned across replicates), shuffled, with NaN,
    negative, zero and infinite intensities and out-of-range or NaN m/z: everything the loops must treat alike."""
    parts = []
    for acc in ("C", "A", "B"):
        base = random_sample(rng, 120, 9, accession=acc, above=True)
        for rep in ("r2", "r1", "r3"):
            part = base[rng.random(len(base)) < 0.8].copy()
            part["replicate"] = rep
            part["precursor_intensity"] *= rng.uniform(0.5, 1.5)
            parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    n = len(df)
    for col in ("precursor_intensity", "fragment_intensity"):
        v = df[col].to_numpy().copy()
        idx = rng.choice(n, 12, replace=False)
        v[idx[:3]], v[idx[3:6]], v[idx[6:9]] = np.nan, -v[idx[3:6]], 0.0
        v[idx[9]] = np.inf
        df[col] = v
    mz = df["fragment_mz"].to_numpy().copy()
    mz[rng.choice(n, 4, replace=False)] = [np.nan, -3.0, 2000.0, np.inf]
    df["fragment_mz"] = mz
    return coerce_events(df.sample(frac=1.0, random_state=4).reset_index(drop=True))


def as_categorical(df: pd.DataFrame) -> pd.DataFrame:
    """Ids as categoricals, as ``render_dir`` reads them from Parquet and the serving model builds them."""
    return df.astype({c: "category" for c in ("accession", "replicate", "feature_id")})


@pytest.fixture
def kernel():
    """Run a test under a chosen per-row loop implementation ("numpy" or "numba"), restoring the mode after."""
    from ms2img.render.kernels import get_kernel, set_kernel

    previous = get_kernel()

    def use(mode: str) -> None:
        if mode == "numba":
            pytest.importorskip("numba")
        set_kernel(mode)

    yield use
    set_kernel(previous)


CONFIGS = [
    {"aggregation": "max"},
    {"aggregation": "sum"},
    {"aggregation": "max", "transform": "sqrt", "per_replicate": True},
    {"aggregation": "sum", "transform": "sqrt"},
    {"aggregation": "sum", "transform": "log1p"},
    {"aggregation": "sum", "ppm_jitter": 20.0, "per_replicate": True},
    {"aggregation": "max", "ppm_jitter": 20.0, "mask_diagonal": False},
]


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


def test_single_value_detection():
    from ms2img.render.arrow import single_value as _single_value

    def s(values, **kw):
        return pd.Series(values, **kw)

    assert _single_value(s(["ab"] * 5, dtype="str")) == (True, "ab")
    assert _single_value(s([""] * 3, dtype="str")) == (True, "")
    assert _single_value(s(["ab", "ab", "ba"], dtype="str")) == (False, None)
    assert _single_value(s(["a", "bab", "ab"], dtype="str")) == (False, None)  # same bytes, other lengths
    assert _single_value(s(["abab", "ab", "ab"], dtype="str")) == (False, None)
    assert _single_value(s(["ab", None], dtype="str")) == (False, None)
    assert _single_value(s(["x"] * 4, dtype=object)) == (False, None)  # not Arrow: the general path decides
    assert _single_value(s(["q"] * 4, dtype="category")) == (True, "q")
    assert _single_value(s(pd.Categorical(["q"] * 4, categories=["q", "r"]))) == (False, None)
    # a sliced, chunked Arrow array (non-zero offset into the buffers)
    import pyarrow as pa

    chunked = pa.chunked_array([pa.array(["zz", "ab", "ab", "ab"], pa.large_string()).slice(1)])
    assert _single_value(s(pd.arrays.ArrowStringArray(chunked))) == (True, "ab")
    chunked = pa.chunked_array([pa.array(["ab", "ab"]), pa.array(["ab", "ac"])])
    assert _single_value(s(pd.arrays.ArrowStringArray(chunked))) == (False, None)


def test_set_kernel_validates_and_warm_up_reports():
    from ms2img.render import set_kernel, warm_up

    with pytest.raises(ConfigError, match="kernel"):
        set_kernel("cuda")
    assert warm_up() >= 0.0


# ------------------------------------------------------------------------------------------ PNG display
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


def test_cli_rejects_a_bad_png_gamma(tmp_path, capsys):
    ev = write_events_dir(tmp_path / "events", {"A": ALIGNED})
    assert main(["render", str(ev), "--out", str(tmp_path / "o.npz"), "--png-gamma", "0"]) == 2
    assert "--png-gamma" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


# ------------------------------------------------------------------------------------------ one home per concept
def test_images_path_is_the_one_spelling_of_the_image_file():
    from pathlib import Path

    from ms2img.render import IMAGES_ROOT, images_path

    assert images_path("150x140") == Path("data/images/150x140.npz") == IMAGES_ROOT / "150x140.npz"
    assert images_path((75, 70), "elsewhere") == Path("elsewhere/75x70.npz")
    assert images_path(" 300X280 ") == Path("data/images/300x280.npz")
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        images_path("big")


def test_replicate_mean_counts_absence_as_zero():
    from ms2img.render import replicate_mean

    # item 0 in all three replicates, item 1 in one of three, item 2 of another accession with two replicates
    got = replicate_mean([3.0, 6.0, 9.0, 6.0, 4.0], [0, 0, 0, 1, 2], 3, np.array([3, 3, 2]))
    np.testing.assert_allclose(got, [6.0, 2.0, 2.0])
    np.testing.assert_allclose(replicate_mean([1.0, 1.0], [1, 1], 3, 2), [0.0, 1.0, 0.0])


# ------------------------------------------------------------------------------------------ atomic output folders
def cohort_dir(path, n_accessions: int = 4, n_prec: int = 60, n_frag: int = 8, seed: int = 0):
    """An events folder of ``n_accessions`` one-replicate accessions, one Parquet file each."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n_accessions):
        acc = f"ACC{i:03d}"
        write_events(random_sample(rng, n_prec, n_frag, accession=acc), path / f"{acc}.parquet")
    return path


def folder_state(folder) -> dict[str, str] | None:
    """What a reader sees in an output folder: each visible file's content digest (``.npz`` by its arrays, whose zip
    timestamps differ between runs; others by their bytes); None when the folder does not exist."""
    import hashlib

    if not folder.exists():
        return None
    state = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_dir() or any(part.startswith(".") for part in rel.split("/")):
            continue
        h = hashlib.sha256()
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                for key in sorted(z.files):
                    h.update(key.encode() + np.ascontiguousarray(z[key]).tobytes())
        else:
            h.update(p.read_bytes())
        state[rel] = h.hexdigest()
    return state


def hidden_entries(*folders) -> list[str]:
    return sorted(str(p) for f in folders if f.exists() for p in f.rglob(".*"))


def render_args(ev, images, pngs, variant: str) -> list[str]:
    """Two renderings that differ in every file: ``old`` (linear, max) and ``new`` (sqrt, sum)."""
    kw = ["--transform", "none", "--aggregation", "max"] if variant == "old" else ["--transform", "sqrt"]
    kw += [] if variant == "old" else ["--aggregation", "sum"]
    return ["render", str(ev), "--sizes", "40x35,75x70", "--out-dir", str(images), "--png-dir", str(pngs), *kw]


def test_cli_sizes_replace_the_folder_keep_other_sizes_and_refuse_foreign_files(tmp_path, capsys):
    ev = cohort_dir(tmp_path / "events", n_accessions=3)
    images, pngs = tmp_path / "out" / "images", tmp_path / "out" / "pngs"
    assert main(render_args(ev, images, pngs, "old")) == 0
    old = folder_state(images)
    assert sorted(old) == ["40x35.npz", "75x70.npz"] and len(folder_state(pngs)) == 6
    # a later run of one size: that size is new, the other carried over; its PNGs (one size: at the top of the
    # PNG folder, as before) are only this run's
    args = ["render", str(ev), "--sizes", "75x70", "--out-dir", str(images), "--png-dir", str(pngs)]
    assert main([*args, "--transform", "sqrt", "--png-limit", "1"]) == 0
    now = folder_state(images)
    assert now["40x35.npz"] == old["40x35.npz"] and now["75x70.npz"] != old["75x70.npz"]
    assert sorted(folder_state(pngs)) == [*(f"40x35/ACC00{i}.png" for i in range(3)), "ACC000.png"]
    assert hidden_entries(tmp_path / "out") == []
    # anything render did not write makes it refuse (it replaces the folder as a whole), before rendering
    (images / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(render_args(ev, images, pngs, "new")) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "folder of its own" in err and len(err.strip().splitlines()) == 1
    assert folder_state(images) == {**now, "notes.txt": folder_state(images)["notes.txt"]}
    (images / "notes.txt").unlink()
    (pngs / "40x35" / "keep.txt").write_text("mine")
    assert main(render_args(ev, images, pngs, "new")) == 2
    assert "keep.txt" in capsys.readouterr().err


def test_cli_single_size_png_folder_replaced_and_leftovers_of_killed_runs_cleaned(tmp_path):
    ev = cohort_dir(tmp_path / "events", n_accessions=3)
    out, pngs = tmp_path / "img" / "75x70.npz", tmp_path / "png"
    assert main(["render", str(ev), "--out", str(out), "--size", "75x70", "--png-dir", str(pngs)]) == 0
    assert sorted(folder_state(pngs)) == ["ACC000.png", "ACC001.png", "ACC002.png"]
    # what a killed run leaves: a staging copy and a retired copy of each folder, an interrupted .npz write
    for leftover in (".png.staging-x1", ".png.retired-x2", ".images.staging-x3"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "ACC000.png").write_bytes(b"half")
    (out.parent / ".75x70.npz.abc123.tmp.npz").write_bytes(b"half")
    (pngs / ".ACC000.png.def456.tmp.png").write_bytes(b"half")
    args = ["render", str(ev), "--out", str(out), "--size", "75x70", "--png-dir", str(pngs), "--png-limit", "2"]
    assert main(args) == 0
    assert sorted(folder_state(pngs)) == ["ACC000.png", "ACC001.png"]  # this run's PNGs only
    assert hidden_entries(tmp_path / "img", pngs) == []
    assert sorted(p.name for p in tmp_path.glob(".*")) == [".images.staging-x3"]  # not a folder this run wrote
    images = tmp_path / "images"
    assert main(["render", str(ev), "--sizes", "75x70", "--out-dir", str(images)]) == 0
    assert list(tmp_path.glob(".*")) == []


def test_a_failing_png_write_leaves_the_png_folder_as_it_was(tmp_path, monkeypatch, capsys):
    import ms2img.render.files as render_files_module

    ev = cohort_dir(tmp_path / "events", n_accessions=3)
    images, pngs = tmp_path / "images", tmp_path / "pngs"
    assert main(render_args(ev, images, pngs, "old")) == 0
    before = folder_state(pngs)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return save_pngs(*args, **kwargs)

    monkeypatch.setattr(render_files_module, "save_pngs", failing)
    capsys.readouterr()
    assert main(render_args(ev, images, pngs, "new")) == 2  # a full disk is one line, not a traceback
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "no output is half-written" in err[0], err
    assert folder_state(pngs) == before  # the first size's new PNGs never became visible
    assert folder_state(images) != folder_state(tmp_path / "missing")  # the image folder was swapped already
    assert hidden_entries(tmp_path / "images", pngs) == [] and list(tmp_path.glob(".pngs.*")) == []


def test_kill_9_at_random_points_leaves_each_folder_entirely_old_or_entirely_new(tmp_path):
    """``kill -9`` of ``ms2img render`` at random points: the image folder and the PNG folder each read as the old
    rendering or the new one, never a mix; after the next successful run nothing hidden is left behind.

    Half the kills land at a random point of the writing phase (from the first staging folder or output file
    appearing, over about the time the rendering and writing take), where a non-atomic writer mixes old and new
    files; the other half after a random delay over a whole run."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    ev = cohort_dir(tmp_path / "events", n_accessions=24, n_prec=150, n_frag=8)
    out = tmp_path / "out"
    images, pngs = out / "images", out / "pngs"
    ref = {}
    for variant, base in (("new", tmp_path / "ref_new"), ("old", out)):  # reference states, rendered in-process
        t0 = time.perf_counter()
        assert main(render_args(ev, base / "images", base / "pngs", variant)) == 0
        work = time.perf_counter() - t0
        ref[variant] = (folder_state(base / "images"), folder_state(base / "pngs"))
    assert ref["old"][0] != ref["new"][0] and ref["old"][1] != ref["new"][1]
    env = {**os.environ, "PYTHONHASHSEED": "0", "MS2IMG_RENDER_KERNEL": "numpy"}
    seed = int(os.environ.get("MS2IMG_KILL_SEED") or random.randrange(1_000_000))
    rnd = random.Random(seed)

    def start(variant: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "ms2img.cli", *render_args(ev, images, pngs, variant)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for_writing(proc: subprocess.Popen) -> float:
        """Seconds until the run starts writing (a staging folder or a changed file in the output folders)."""
        t0 = time.perf_counter()

        def marks():
            return {p: p.stat().st_mtime_ns for f in (images, pngs) if f.exists() for p in f.iterdir()}

        before = marks()
        while proc.poll() is None:
            try:
                if any(p.name.startswith(".") for p in out.iterdir()) or marks() != before:
                    break
            except FileNotFoundError:  # a folder swapped away under us: writing has begun
                break
            time.sleep(0.002)
        return time.perf_counter() - t0

    to_write = 2.0
    for i in range(6):
        proc = start("new" if i % 4 < 2 else "old")
        if i % 2 == 0:
            to_write = wait_for_writing(proc)
            time.sleep(rnd.uniform(0.0, 1.2) * work)
        else:
            time.sleep(rnd.uniform(0.0, 1.0) * (to_write + work))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        state = (folder_state(images), folder_state(pngs))
        for k, what in enumerate(("image folder", "PNG folder")):
            entire = state[k] in (ref["old"][k], ref["new"][k])
            assert entire, f"kill {i} (MS2IMG_KILL_SEED={seed}): the {what} mixes old and new files"
    assert start("new").wait(timeout=120) == 0
    assert (folder_state(images), folder_state(pngs)) == ref["new"]
    assert hidden_entries(out) == [], "a killed run's leftovers survived the next successful run"
