"""The merged feature table: similarities, merging rules, replicate means, scaling, determinism, files, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ms2img.errors import ConfigError, InputFileError
from ms2img.features import table as F
from ms2img.features.table import (
    FeatureTable,
    build_feature_tables,
    collapse_spectra,
    cosine_similarity,
    entropy_similarity,
    estimate_mz_sigma_ppm,
    gaussian_similarity,
    merge_features,
    ms1_similarity,
    rt_similarity,
)
from ms2img.io.schema import EVENT_COLUMNS, write_events

# two clearly different fragment patterns
SPEC_A = np.array([[80.05, 100.0], [105.07, 60.0], [133.1, 30.0], [151.2, 10.0]])
SPEC_B = np.array([[60.02, 90.0], [91.05, 50.0], [120.08, 40.0], [149.0, 20.0]])


def spectrum_rows(acc, rep, fid, mz, rt, inten, peaks, polarity="positive") -> list[dict]:
    return [
        {
            "accession": acc,
            "replicate": rep,
            "feature_id": fid,
            "precursor_mz": mz,
            "rt_min": rt,
            "precursor_intensity": inten,
            "fragment_mz": fm,
            "fragment_intensity": fi,
            "polarity": polarity,
        }
        for fm, fi in peaks
    ]


def events_of(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def random_events(n_acc: int, n_compounds: int, per_acc: int, seed: int = 0, replicates: int = 1) -> pd.DataFrame:
    """A small cohort sampled from a compound pool, with ppm / RT / intensity noise (vectorised)."""
    rng = np.random.default_rng(seed)
    mz = rng.uniform(150, 900, n_compounds)
    rt = rng.uniform(1, 20, n_compounds)
    frag_mz = np.sort(rng.uniform(50, 140, (n_compounds, 6)), axis=1)
    frag_int = rng.uniform(0.1, 1.0, (n_compounds, 6))
    parts = []
    for a in range(n_acc):
        chosen = rng.choice(n_compounds, per_acc, replace=False)
        for r in range(replicates):
            k = len(chosen)
            pmz = mz[chosen] * (1 + rng.normal(0, 1e-6, k))
            prt = rt[chosen] + rng.normal(0, 0.02, k)
            inten = rng.uniform(1e4, 1e6, k)
            own = np.repeat(np.arange(k), 6)
            parts.append(
                pd.DataFrame(
                    {
                        "accession": f"A{a:03d}",
                        "replicate": f"A{a:03d}_{r}",
                        "feature_id": np.array([f"C{c}" for c in chosen])[own],
                        "precursor_mz": pmz[own],
                        "rt_min": prt[own],
                        "precursor_intensity": inten[own],
                        "fragment_mz": frag_mz[chosen].ravel(),
                        "fragment_intensity": (frag_int[chosen] * rng.uniform(0.9, 1.1, (k, 6))).ravel(),
                        "polarity": "positive",
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------------- similarities


def test_gaussian_similarity_hand_values():
    assert gaussian_similarity(5.0, 5.0, 1.0) == pytest.approx(1.0)
    assert gaussian_similarity(0.0, 1.0, 1.0) == pytest.approx(math.exp(-0.5))
    assert gaussian_similarity(0.0, 2.0, 1.0) == pytest.approx(math.exp(-2.0))
    # RT: sigma = the RT tolerance
    assert rt_similarity(10.0, 10.3, 0.3) == pytest.approx(math.exp(-0.5))
    assert rt_similarity(10.0, 10.6, 0.3) == pytest.approx(math.exp(-2.0))
    # MS1: sigma in ppm of the mean m/z; 500 vs 500.0025 is 5 ppm apart
    assert ms1_similarity(500.0, 500.0025, 5.0) == pytest.approx(math.exp(-0.5), rel=1e-5)
    assert ms1_similarity(500.0, 500.0, 5.0) == pytest.approx(1.0)
    np.testing.assert_allclose(gaussian_similarity(np.array([0.0, 1.0]), 0.0, 2.0), [1.0, math.exp(-0.125)])


def test_cosine_identical_disjoint_and_hand_value():
    assert cosine_similarity(SPEC_A, SPEC_A) == pytest.approx(1.0)
    assert cosine_similarity(SPEC_A, SPEC_B) == 0.0
    a = np.array([[100.0, 3.0], [200.0, 4.0]])
    b = np.array([[100.005, 3.0], [300.0, 4.0]])
    assert cosine_similarity(a, b) == pytest.approx(9.0 / 25.0)  # (3*3) / (5 * 5)
    # unsorted input is sorted first
    assert cosine_similarity(SPEC_A[::-1], SPEC_A) == pytest.approx(1.0)


def test_cosine_is_matchms_cosine_greedy_on_random_spectra():
    """cosine_similarity runs matchms' own kernels (recompiled with numba's cache): same scores as CosineGreedy."""
    from matchms import Spectrum
    from matchms.similarity import CosineGreedy

    rng = np.random.default_rng(3)
    greedy = CosineGreedy(tolerance=0.02)
    for _ in range(25):
        a = np.sort(rng.uniform(50, 500, rng.integers(1, 30)))
        b = np.sort(np.concatenate([a[: rng.integers(0, len(a) + 1)] + rng.normal(0, 0.01), rng.uniform(50, 500, 5)]))
        ia, ib = rng.random(len(a)), rng.random(len(b))
        expected = greedy.pair(Spectrum(mz=a, intensities=ia), Spectrum(mz=b, intensities=ib))["score"]
        got = cosine_similarity(np.c_[a, ia], np.c_[b, ib], tolerance=0.02)
        assert got == pytest.approx(float(expected), abs=1e-12)


def test_entropy_identical_disjoint():
    assert entropy_similarity(SPEC_A, SPEC_A) == pytest.approx(1.0, abs=1e-5)
    assert entropy_similarity(SPEC_A, SPEC_B) == pytest.approx(0.0, abs=1e-6)
    half = SPEC_A.copy()
    half[:2, 1] *= 0.5
    assert 0.5 < entropy_similarity(SPEC_A, half) < 1.0


def test_windows_are_exact_bounds():
    # mean > 0.8 needs each Gaussian term > 0.4, i.e. |d| < sigma * sqrt(-2 ln 0.4)
    mz_win, rt_win = F.candidate_windows(10.0, 3.0, 0.3, 0.8)
    k = math.sqrt(-2 * math.log(0.4))
    assert mz_win == pytest.approx(3.0 * k)
    assert rt_win == pytest.approx(0.3 * k)
    assert F.candidate_windows(10.0, 30.0, 0.3, 0.8)[0] == 10.0  # the hard tolerance caps it
    assert F.candidate_windows(10.0, 3.0, 0.3, 0.6) == (10.0, pytest.approx(0.9))  # no bound below 2/3


# ------------------------------------------------------------------------------------------- merging rules


@pytest.mark.parametrize("method", ["cosine", "entropy"])
def test_same_compound_in_three_accessions_merges(method):
    rows = []
    for k, (dppm, drt) in enumerate([(0.0, 0.0), (1.5, 0.03), (-1.0, -0.02)]):
        rows += spectrum_rows(f"acc{k}", "r1", "f1", 300.0 * (1 + dppm * 1e-6), 5.0 + drt, 1000.0 * (k + 1), SPEC_A)
    table = merge_features(events_of(rows), method=method, mz_sigma_ppm=5.0)
    assert table.stats["n_features"] == 1
    assert table.features.loc[0, "n_accessions"] == 3
    assert table.features.loc[0, "n_members"] == 3
    assert list(table.values.iloc[:, 0]) == [1000.0, 2000.0, 3000.0]
    assert table.values.columns[0] == "F000001"
    assert table.features.loc[0, "rep_accession"] == "acc2"  # the most intense spectrum represents the feature


def test_same_mz_different_rt_stays_separate():
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A)
    rows += spectrum_rows("acc1", "r1", "f1", 300.0, 8.0, 1000.0, SPEC_A)
    table = merge_features(events_of(rows), mz_sigma_ppm=5.0)
    assert table.stats["n_features"] == 2
    np.testing.assert_array_equal(np.sort(table.values.to_numpy().ravel()), [0.0, 0.0, 1000.0, 1000.0])


@pytest.mark.parametrize("method", ["cosine", "entropy"])
def test_same_mz_rt_different_spectra_stay_separate(method):
    # MS1 = RT = 1 but MS/MS = 0: mean 2/3 <= 0.8
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A)
    rows += spectrum_rows("acc1", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_B)
    table = merge_features(events_of(rows), method=method, mz_sigma_ppm=5.0)
    assert table.stats["n_features"] == 2
    # ... and they do merge with a threshold below 2/3
    low = merge_features(events_of(rows), method=method, mz_sigma_ppm=5.0, threshold=0.6)
    assert low.stats["n_features"] == 1


def test_mean_score_at_threshold_does_not_merge():
    # identical spectra and m/z; RT chosen so the mean is exactly 0.8 (strict "exceeds")
    drt = 0.3 * math.sqrt(-2 * math.log(0.4))
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A)
    rows += spectrum_rows("acc1", "r1", "f1", 300.0, 5.0 + drt * 1.0001, 1000.0, SPEC_A)
    assert merge_features(events_of(rows), mz_sigma_ppm=5.0).stats["n_features"] == 2
    rows[-len(SPEC_A) :] = spectrum_rows("acc1", "r1", "f1", 300.0, 5.0 + drt * 0.999, 1000.0, SPEC_A)
    assert merge_features(events_of(rows), mz_sigma_ppm=5.0).stats["n_features"] == 1


def test_within_sample_duplicates_merge_by_max():
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A)
    rows += spectrum_rows("acc0", "r1", "f2", 300.0 * (1 + 1e-6), 5.01, 400.0, SPEC_A)  # redundant feature
    rows += spectrum_rows("acc0", "r1", "f3", 450.0, 7.0, 50.0, SPEC_B)
    table = merge_features(events_of(rows), mz_sigma_ppm=5.0)
    assert table.stats["n_within_sample_features"] == 2
    assert table.stats["merged_pairs_within"] == 1
    assert table.stats["n_features"] == 2
    assert sorted(table.values.loc["acc0"]) == [50.0, 1000.0]  # max, not the sum 1400
    members = table.members.set_index("source_feature_id")["feature_id"]
    assert members["f1"] == members["f2"] != members["f3"]


def test_one_feature_per_accession_across_samples():
    # two features of acc0 too far apart in RT to merge (0.5 min: mean 0.79) that both match acc1's spectrum
    # halfway between them (0.25 min: mean 0.90); a feature holds at most one per accession, so acc1 takes f1
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A)
    rows += spectrum_rows("acc0", "r1", "f2", 300.0, 5.5, 900.0, SPEC_A)
    rows += spectrum_rows("acc1", "r1", "f1", 300.0, 5.25, 2000.0, SPEC_A)
    table = merge_features(events_of(rows), mz_sigma_ppm=5.0)
    assert table.stats["n_within_sample_features"] == 3
    assert sorted(table.features["n_accessions"]) == [1, 2]
    assert table.values.loc["acc0"].sum() == pytest.approx(1900.0)
    members = table.members.set_index(["accession", "source_feature_id"])["feature_id"]
    assert members[("acc1", "f1")] == members[("acc0", "f1")] != members[("acc0", "f2")]


def test_polarities_never_merge():
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A, polarity="positive")
    rows += spectrum_rows("acc1", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A, polarity="negative")
    table = merge_features(events_of(rows), mz_sigma_ppm=5.0)
    assert table.stats["n_features"] == 2
    assert sorted(table.features["polarity"]) == ["negative", "positive"]


def test_values_are_replicate_means_with_absence_zero():
    rows = []
    # acc0: three replicates, the compound seen in two of them (300 and 600) -> (300 + 600 + 0) / 3
    rows += spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 300.0, SPEC_A)
    rows += spectrum_rows("acc0", "r2", "f7", 300.0 * (1 + 1e-6), 5.02, 600.0, SPEC_A)
    rows += spectrum_rows("acc0", "r3", "f1", 450.0, 7.0, 90.0, SPEC_B)
    # acc1: one replicate
    rows += spectrum_rows("acc1", "x", "f1", 300.0, 5.01, 1000.0, SPEC_A)
    table = merge_features(events_of(rows), mz_sigma_ppm=5.0)
    a_feat = table.members.set_index(["accession", "replicate"]).loc[("acc1", "x"), "feature_id"]
    b_feat = table.members.set_index(["accession", "replicate"]).loc[("acc0", "r3"), "feature_id"]
    assert table.values.loc["acc0", a_feat] == pytest.approx(300.0)
    assert table.values.loc["acc1", a_feat] == pytest.approx(1000.0)
    assert table.values.loc["acc0", b_feat] == pytest.approx(30.0)
    assert table.values.loc["acc1", b_feat] == 0.0
    assert table.values.dtypes.unique().tolist() == [np.dtype("float64")]
    assert table.values.index.name == "accession"


def test_collapse_spectra_one_per_precursor():
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 10.0, SPEC_A[::-1])
    rows += spectrum_rows("acc0", "r2", "f1", 301.0, 5.0, 20.0, SPEC_B)
    sp = collapse_spectra(events_of(rows))
    assert len(sp) == 2
    assert sp.n_replicates == {"acc0": 2}
    np.testing.assert_array_equal(sp.peaks[0], SPEC_A)  # m/z ascending
    np.testing.assert_array_equal(sp.mz, [300.0, 301.0])


# ------------------------------------------------------------------------------------------- scale, determinism


def test_candidate_pairs_far_below_all_pairs_and_merges_well():
    events = random_events(n_acc=40, n_compounds=300, per_acc=100, seed=1)
    table = merge_features(events, method="entropy")
    n = table.stats["n_input_spectra"]
    assert n == 4000
    assert table.stats["candidate_pairs"] < n * 5 < n * (n - 1) / 2 / 100
    # every compound ends up as one feature (same ids as compounds: C<k>)
    grouped = table.members.groupby("source_feature_id")["feature_id"].nunique()
    assert (grouped == 1).mean() > 0.97
    assert table.members.groupby("feature_id")["source_feature_id"].nunique().max() == 1  # no impure features
    assert table.stats["mz_sigma_source"] == "estimated"
    assert 0.5 < table.stats["mz_diff_sd_ppm"] < 3.0  # 1 ppm per measurement -> ~1.4 ppm per difference


def test_sigma_estimate_and_fallback():
    events = random_events(n_acc=10, n_compounds=50, per_acc=40, seed=2)
    sd, n_pairs = estimate_mz_sigma_ppm(collapse_spectra(events))
    assert n_pairs >= 20 and 0.5 < sd < 3.0
    rows = spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A)
    table = merge_features(events_of(rows))
    assert table.stats["mz_sigma_source"] == "fallback"
    assert table.stats["mz_sigma_ppm"] == pytest.approx(5.0)


def test_deterministic_and_order_independent():
    events = random_events(n_acc=8, n_compounds=80, per_acc=40, seed=3, replicates=2)
    a = merge_features(events, method="cosine")
    b = merge_features(events.sample(frac=1.0, random_state=7), method="cosine")
    pd.testing.assert_frame_equal(a.values, b.values)
    pd.testing.assert_frame_equal(a.features, b.features)
    pd.testing.assert_frame_equal(a.members, b.members)


# ------------------------------------------------------------------------------------------- files, errors, CLI


def test_save_load_round_trip(tmp_path):
    events = random_events(n_acc=4, n_compounds=30, per_acc=10, seed=4)
    table = merge_features(events, method="entropy")
    paths = table.save(tmp_path)
    assert {p.name for p in paths.values()} == {
        "table_entropy.parquet",
        "features_entropy.parquet",
        "stats_entropy.json",
        "members_entropy.parquet",
    }
    back = FeatureTable.load(tmp_path, "entropy")
    pd.testing.assert_frame_equal(back.values, table.values)
    pd.testing.assert_frame_equal(back.features, table.features)
    pd.testing.assert_frame_equal(back.members, table.members)
    assert back.stats == json.loads(json.dumps(table.stats))
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind
    with pytest.raises(InputFileError, match="table_cosine.parquet"):
        FeatureTable.load(tmp_path, "cosine")


def test_build_feature_tables(tmp_path):
    events = random_events(n_acc=5, n_compounds=40, per_acc=15, seed=5)
    for acc, df in events.groupby("accession"):
        write_events(df, tmp_path / "events" / f"{acc}.parquet")
    tables = build_feature_tables(tmp_path / "events", tmp_path / "features", progress=False)
    assert set(tables) == {"cosine", "entropy"}
    for method in ("cosine", "entropy"):
        back = FeatureTable.load(tmp_path / "features", method)
        assert back.values.shape == (5, tables[method].stats["n_features"])
        # one sigma for both tables, so the MS/MS metric is the only difference
        assert back.stats["mz_sigma_ppm"] == tables["cosine"].stats["mz_sigma_ppm"]
        assert back.stats["mz_sigma_source"] in ("estimated", "fallback")


def test_empty_and_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        merge_features(events_of([]))
    with pytest.raises(InputFileError, match="not found"):
        build_feature_tables(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no events Parquet"):
        build_feature_tables(tmp_path / "empty", tmp_path / "out")
    write_events(events_of([]), tmp_path / "zero" / "a.parquet")
    with pytest.raises(InputFileError, match="no rows"):
        build_feature_tables(tmp_path / "zero", tmp_path / "out")
    rows = events_of(spectrum_rows("acc0", "r1", "f1", 300.0, 5.0, 1000.0, SPEC_A))
    with pytest.raises(ConfigError, match="unknown MS/MS similarity"):
        merge_features(rows, method="dot")
    with pytest.raises(ConfigError, match="threshold"):
        merge_features(rows, threshold=1.5)
    with pytest.raises(ConfigError, match="tolerances"):
        merge_features(rows, rt_tol_min=0)
    with pytest.raises(ConfigError, match="mz_sigma_ppm"):
        merge_features(rows, mz_sigma_ppm=-1.0)


def test_cli_features(tmp_path, capsys):
    from ms2img.cli import main

    events = random_events(n_acc=3, n_compounds=20, per_acc=8, seed=6)
    write_events(events, tmp_path / "events" / "all.parquet")
    out = tmp_path / "feat"
    rc = main(
        ["features", str(tmp_path / "events"), "--out", str(out), "--methods", "entropy", "--mz-sigma-ppm", "3",
         "--params", str(tmp_path / "none.yaml"), "--no-progress"]
    )  # fmt: skip
    assert rc == 2  # an explicit --params that does not exist is a ConfigError
    rc = main(["features", str(tmp_path / "events"), "--out", str(out), "--methods", "entropy", "--threshold", "0.7"])
    assert rc == 0
    assert "table_entropy.parquet" in capsys.readouterr().out
    table = FeatureTable.load(out, "entropy")
    assert table.stats["threshold"] == 0.7
    assert not (out / "table_cosine.parquet").exists()
    assert main(["features", str(tmp_path / "events"), "--out", str(out), "--methods", "dot"]) == 2
    assert "unknown MS/MS similarity" in capsys.readouterr().err
