"""ms2img explain --method correlation: activity scores without a model (BMN / FERMO style), on real FERMO data."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ms2img.cli import main
from ms2img.errors import ConfigError, InputFileError
from ms2img.explain.correlation import (
    MIN_SAMPLES,
    NODE_COLUMNS,
    NORMALISATIONS,
    SCORE_COLUMNS,
    Abundances,
    abundances_from_events,
    activity_scores,
    bh_adjust,
    bonferroni,
    injection_sources,
    normalise,
    shares_feature_ids,
)
from ms2img.io.activity import align_activity, read_activity
from ms2img.io.ingest import ingest
from ms2img.permutation import (
    EXACT_MAX_ORDERINGS,
    distinct_orderings,
    orderings_count,
    p_method,
    pearson_rows,
    permutation_p,
)

QUANT = "case_study_peak_table_quant_full.csv"
MGF = "case_study_MSMS.mgf"
ACTIVITY = "case_study_bioactivity.csv"  # FERMO: sample_name, quant_data; only the 4 actives listed
# Siomycins in FERMO's case study (m/z as in its spectral library: siomycin A [M+2H]2+ and [M+H]+, siomycin B
# [M+2H]2+); MZmine ids 76, 83, 84 (A 2+ at three RTs), 82 (A 1+), 78 (B 2+).
SIOMYCIN_MZ = (824.7375, 1648.4547, 755.7153)


def is_siomycin(mz: pd.Series) -> pd.Series:
    return mz.apply(lambda m: any(abs(m - s) < 0.005 for s in SIOMYCIN_MZ))


@pytest.fixture(scope="module")
def fermo_events(test_data, tmp_path_factory):
    """The FERMO case study ingested as a user would: MZmine 3 quant + MGF, groups mark the blank."""
    out = tmp_path_factory.mktemp("fermo") / "events"
    ingest([test_data / QUANT], out, mgf=test_data / MGF, metadata=test_data / "case_study_group_metadata.csv")
    return out


def run_cli(args, capsys):
    rc = main(["explain", "--method", "correlation", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ------------------------------------------------------------------------------------------------ statistics


def test_rows_match_scipy_and_corrections():
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=(40, 9))
    x[3] = 5.0  # constant: no correlation defined
    x[4, :3] = 0.0  # ties
    y = rng.normal(size=9)
    r, p = pearson_rows(x, y)
    rho, p_s = pearson_rows(stats.rankdata(x, axis=1), stats.rankdata(y))  # Spearman: Pearson on average ranks
    for i in range(40):
        if i == 3:
            assert np.isnan(r[i]) and np.isnan(p[i]) and np.isnan(rho[i])
            continue
        ref, ref_s = stats.pearsonr(x[i], y), stats.spearmanr(x[i], y)
        assert r[i] == pytest.approx(ref.statistic, abs=1e-10) and p[i] == pytest.approx(ref.pvalue, rel=1e-7)
        assert rho[i] == pytest.approx(ref_s.statistic, abs=1e-10) and p_s[i] == pytest.approx(ref_s.pvalue, rel=1e-7)
    ok = np.isfinite(p)
    np.testing.assert_allclose(bh_adjust(p)[ok], stats.false_discovery_control(p[ok]), rtol=1e-12)
    assert np.isnan(bh_adjust(p)[3])
    np.testing.assert_allclose(bonferroni(p)[ok], np.minimum(p[ok] * ok.sum(), 1.0))
    assert pearson_rows(np.array([[1.0, 2, 3, 4, 5]]), np.array([2.0, 4, 6, 8, 10]))[1][0] < 1e-20


def test_bmn_normalisation_adds_one_and_divides_by_the_sample_total():
    x = np.array([[0.0, 10.0], [3.0, 0.0], [1.0, 4.0]])
    np.testing.assert_allclose(normalise(x, "bmn"), (x + 1) / (x + 1).sum(axis=0))
    np.testing.assert_array_equal(normalise(x, "raw"), x)
    with pytest.raises(ConfigError, match="unknown normalisation 'tic'"):
        normalise(x, "tic")
    assert NORMALISATIONS[0] == "bmn"  # the default, documented in the module and the CLI help


def test_replicates_are_averaged_and_absent_pairs_are_zero():
    ev = pd.DataFrame(
        {
            "accession": ["A", "A", "A", "B"],
            "replicate": ["1", "1", "2", "1"],
            "feature_id": ["f1", "f1", "f1", "f2"],
            "precursor_mz": [100.0, 100.0, 100.0, 200.0],
            "rt_min": [1.0, 1.0, 1.0, 2.0],
            "precursor_intensity": [10.0, 10.0, 30.0, 5.0],  # f1 twice: two fragments of one replicate
            "polarity": "positive",
        }
    )
    ab = abundances_from_events(ev, ["A", "B", "C"])
    assert list(ab.features["feature_id"]) == ["f1", "f2"]
    np.testing.assert_allclose(ab.values, [[20.0, 0, 0], [0, 5.0, 0]])
    # one export per accession: ids are not shared, the same m/z and RT is one feature
    ev2 = ev.assign(feature_id=["1", "1", "1", "1"], precursor_mz=[100.0, 100.0, 100.0, 100.0005], rt_min=1.0)
    ab2 = abundances_from_events(ev2, ["A", "B"], aligned=False)
    assert len(ab2.features) == 1 and ab2.features["feature_id"][0] == "100.0000@1.00"


def test_exports_of_one_alignment_keep_its_features_apart(tmp_path):
    """One MS-DIAL alignment exported in two batches: its ids join the batches, so two ion-mobility isomers (one m/z
    and RT, two CCS, two alignment ids) stay two features; exports of unrelated alignments group by m/z and RT, also
    when each export holds one injection of every extract (the source is an injection's, not an accession's)."""
    ev = pd.DataFrame(
        {
            "accession": ["A", "A", "B", "B"],
            "replicate": "1",
            "feature_id": ["10", "11", "10", "11"],
            "precursor_mz": [223.026, 223.026, 223.0261, 223.0259],
            "rt_min": [4.50, 4.51, 4.50, 4.50],
            "precursor_intensity": [5.0, 7.0, 6.0, 8.0],
            "polarity": "negative",
        }
    )
    batches = pd.DataFrame({"accession": ["A", "B"], "replicate": "1", "source": ["batch1.txt", "batch2.txt"]})
    assert shares_feature_ids(ev, batches, mz_ppm=10.0, rt_tol_min=0.1)
    ab = abundances_from_events(ev, ["A", "B"], aligned=True)
    assert list(ab.features["feature_id"]) == ["10", "11"]
    unrelated = ev.assign(feature_id=["10", "11", "11", "12"])  # id 11: another compound in each export
    unrelated.loc[2, "precursor_mz"] = 600.0
    assert not shares_feature_ids(unrelated, batches, mz_ppm=10.0, rt_tol_min=0.1)
    assert shares_feature_ids(ev, batches.assign(source="one.txt"), mz_ppm=10.0, rt_tol_min=0.1)
    # one injection of each extract per batch export, ids of two unrelated alignments: read from the manifest
    per_batch = unrelated.assign(accession="A", replicate=["1", "1", "2", "2"])
    events = tmp_path / "events"
    events.mkdir()
    pd.DataFrame({"sample": ["a1", "a2"], "accession": "A", "replicate": ["1", "2"], "type": "Sample",
                  "source": ["batch1.txt", "batch2.txt"]}).to_csv(events / "samples.csv", index=False)  # fmt: skip
    assert not shares_feature_ids(per_batch, injection_sources(events), mz_ppm=10.0, rt_tol_min=0.1)


def test_too_few_or_constant_samples():
    ab = Abundances(pd.DataFrame({"feature_id": ["a"], "precursor_mz": [1.0], "rt_min": [1.0], "polarity": ["x"]}),
                    ["s1", "s2", "s3", "s4"], np.ones((1, 4)))  # fmt: skip
    with pytest.raises(
        ConfigError, match=f"4 samples have an activity value; a correlation needs at least {MIN_SAMPLES}"
    ):
        activity_scores(ab, np.arange(4), np.arange(4.0))
    ab.values, ab.accessions = np.ones((1, 6)), [f"s{i}" for i in range(6)]
    with pytest.raises(ConfigError, match="the same"):
        activity_scores(ab, np.arange(6), np.full(6, 3.0))


# ------------------------------------------------------------------------------------------------ activity layouts


def test_fermo_activity_file_and_absent_as_zero(test_data):
    act = read_activity(test_data / ACTIVITY, "CHIKV")
    assert act.name == "CHIKV" and act.to_dict() == {
        "5434_5433_mod": 8.0, "5446_5445_mod": 8.0, "5452_5451_mod": 8.0, "5456_5455_mod": 7.0,
    }  # fmt: skip
    accessions = ["5434_5433_mod", "5425_5426_mod", "5456_5455_mod", "5446_5445_mod", "5452_5451_mod"]
    cols, y = align_activity(act, accessions)
    assert list(cols) == [0, 2, 3, 4] and list(y) == [8.0, 7.0, 8.0, 8.0]
    cols, y = align_activity(act, accessions, absent_as_zero=True)
    assert list(cols) == [0, 1, 2, 3, 4] and list(y) == [8.0, 0.0, 7.0, 8.0, 8.0]


def typo_copy(src, dst, old: str, new: str):
    """A copy of an activity file with one sample name misspelt (as a lab user typed it)."""
    text = src.read_text()
    assert old in text
    dst.write_text(text.replace(old, new, 1))
    return dst


@pytest.mark.parametrize("absent_as_zero", [True, False])
def test_an_activity_row_naming_no_sample_fails_with_its_line(test_data, tmp_path, absent_as_zero):
    """A misspelt active must not count as inactive (--absent-as-zero) nor vanish (without it): one error line
    names the file, the row's line, the name, the nearest accession and what the events hold."""
    bad = typo_copy(test_data / ACTIVITY, tmp_path / "bio_typo1.csv", "5446_5445_mod.mzXML", "5446_5445.mzXML")
    accessions = ["5425_5426_mod", "5434_5433_mod", "5446_5445_mod", "5452_5451_mod", "5456_5455_mod"]
    with pytest.raises(InputFileError) as err:
        align_activity(read_activity(bad, "CHIKV"), accessions, absent_as_zero=absent_as_zero, source=bad)
    msg = str(err.value)
    assert err.value.line == 3 and msg.startswith(f"{bad}, line 3: 1 activity row names no sample of the events")
    assert "line 3 '5446_5445' (did you mean '5446_5445_mod'?)" in msg and "5425_5426_mod, 5434_5433_mod" in msg
    assert "\n" not in msg


def test_a_metadata_tables_runs_without_events_are_counted_not_refused(test_data, tmp_path, caplog):
    """A GNPS metadata table lists every run of a study (a blank, the other ion mode), as ingest allows; an
    assays.csv row naming no sample is a typo. Ingest's samples.csv knows the runs it read without events."""
    metadata = test_data / "bioactivity_gnps_metadata.tsv"
    act = read_activity(metadata, "CHIKV")
    accessions = [a for a in act.index if a != "D3_H3_mod"]
    cols, _ = align_activity(act, accessions, source=metadata)
    assert len(cols) == len(accessions) and "1 metadata row(s) name no sample of the events" in caplog.text
    table = tmp_path / "assays.csv"
    table.write_text("accession,CHIKV\n" + "".join(f"{a},{v}\n" for a, v in act.items()))
    with pytest.raises(InputFileError, match=r"line \d+ 'D3_H3_mod'"):
        align_activity(read_activity(table, "CHIKV"), accessions, source=table)
    cols, _ = align_activity(read_activity(table, "CHIKV"), accessions, known=[*accessions, "D3_H3_mod"])
    assert len(cols) == len(accessions)


def test_cli_refuses_a_misspelt_activity_file(fermo_events, test_data, tmp_path, capsys):
    """The lab's case: every FERMO name misspelt (the only message was 'the activity is the same (0)'), and a full
    assays.csv with one misspelt accession (dropped without a word)."""
    bad = tmp_path / "bio_typo.csv"
    bad.write_text((test_data / ACTIVITY).read_text().replace("_mod.mzXML", ".mzXML"))
    rc, _, err = run_cli(["--assay", "activity", "--events", fermo_events, "--assays", bad, "--absent-as-zero",
                          "--out-dir", tmp_path / "out", "--annotate-top", 0], capsys)  # fmt: skip
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{bad}, line 2: 4 activity rows name no sample" in err and "line 4 '5452_5451'" in err
    assert "and 1 more" in err and "the same" not in err and not (tmp_path / "out").exists()
    act = read_activity(test_data / ACTIVITY, "CHIKV")
    full = tmp_path / "assays.csv"
    names = pd.read_csv(fermo_events / "samples.csv")["accession"]
    full.write_text("accession,CHIKV\n" + "".join(f"{a},{act.get(a, 0.0):g}\n" for a in names))
    typo = typo_copy(full, tmp_path / "assays_typo.csv", "5456_5455_mod,", "5456_5455_mdo,")
    rc, _, err = run_cli(["--assay", "CHIKV", "--events", fermo_events, "--assays", full,
                          "--out-dir", tmp_path / "ok", "--annotate-top", 0], capsys)  # fmt: skip
    assert rc == 0, err
    rc, _, err = run_cli(["--assay", "CHIKV", "--events", fermo_events, "--assays", typo,
                          "--out-dir", tmp_path / "typo", "--annotate-top", 0], capsys)  # fmt: skip
    line = 2 + list(names).index("5456_5455_mod")
    assert rc == 2 and f"{typo}, line {line}: 1 activity row names no sample" in err, err
    assert "'5456_5455_mdo' (did you mean '5456_5455_mod'?)" in err


def test_every_activity_layout_gives_the_same_scores(test_data, tmp_path, capsys):
    """BMN activity row (MZmine 2), Optimus columns, GNPS metadata and the FERMO file: one table."""
    mgf = test_data / "bioactivity_msms.mgf"
    tables = {}
    for name, quant, extra in (
        ("mzmine2", "bioactivity_mzmine2_quant.csv", {}),
        ("optimus", "bioactivity_optimus.csv", {}),
    ):
        ev = tmp_path / name
        ingest([test_data / quant], ev, mgf=mgf, assays_out=tmp_path / f"{name}.csv", **extra)
        rc, _, err = run_cli(["--assay", "CHIKV", "--events", ev, "--assays", tmp_path / f"{name}.csv",
                              "--out-dir", tmp_path / f"out_{name}", "--annotate-top", 0], capsys)  # fmt: skip
        assert rc == 0, err
        tables[name] = pd.read_csv(tmp_path / f"out_{name}" / "activity_scores.csv")
    for name, activity in (("fermo", test_data / ACTIVITY), ("gnps", test_data / "bioactivity_gnps_metadata.tsv")):
        rc, _, err = run_cli(["--assay", "CHIKV", "--events", tmp_path / "mzmine2", "--assays", activity,
                              "--absent-as-zero", "--out-dir", tmp_path / f"out_{name}", "--annotate-top", 0],
                             capsys)  # fmt: skip
        assert rc == 0, err
        tables[name] = pd.read_csv(tmp_path / f"out_{name}" / "activity_scores.csv")
    ref = tables.pop("mzmine2")
    assert len(ref) == 12 and ref["n_samples"].iloc[0] == 11
    for name, t in tables.items():
        assert list(t["feature_id"]) == list(ref["feature_id"]), name
        np.testing.assert_allclose(t["r"], ref["r"], atol=1e-9, err_msg=name)
        np.testing.assert_allclose(t["q"], ref["q"], rtol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------------------------ FERMO case study


@pytest.mark.parametrize("normalisation", NORMALISATIONS)
def test_fermo_case_study_puts_the_siomycins_on_top(fermo_events, test_data, tmp_path, capsys, normalisation):
    out = tmp_path / "out"
    rc, stdout, err = run_cli(["--assay", "activity", "--events", fermo_events, "--assays", test_data / ACTIVITY,
                               "--absent-as-zero", "--normalisation", normalisation, "--out-dir", out,
                               "--annotate-top", 0], capsys)  # fmt: skip
    assert rc == 0, err
    scores = pd.read_csv(out / "activity_scores.csv", dtype={"feature_id": str})
    assert list(scores.columns) == SCORE_COLUMNS
    assert scores["n_samples"].iloc[0] == 10  # the blank is not a sample; 6 absent samples counted as 0
    assert list(scores["rank"]) == list(range(1, len(scores) + 1)) and scores["p"].is_monotonic_increasing
    sio = is_siomycin(scores["precursor_mz"])
    assert sio.sum() == 5
    assert sio.iloc[0] and sio.head(5).sum() >= 4, scores.head(8)
    assert (scores.loc[sio, "rank"] <= 8).all() and (scores.loc[sio, "r"] > 0.85).all()
    assert (scores.loc[sio, "direction"] == "positive").all()
    # 6 inactive samples (0) and activities 8, 8, 8, 7: 840 orderings, p by permutation never below 1/840 (the t
    # distribution said ~1e-6); the siomycins sit at the few smallest p the data allow, no FDR claim beyond that
    assert scores["p"].min() >= 1 / 840 - 1e-12 and (scores.loc[sio, "p"] <= 3 / 840 + 1e-12).all()
    assert "all 840 distinct orderings" in stdout
    assert "#1" in stdout and (out / "activity_volcano.png").stat().st_size > 10_000


def test_fermo_activity_file_alone_is_too_few_samples(fermo_events, test_data, tmp_path, capsys):
    rc, _, err = run_cli(["--assay", "activity", "--events", fermo_events, "--assays", test_data / ACTIVITY,
                          "--out-dir", tmp_path], capsys)  # fmt: skip
    assert rc == 2 and err.count("\n") == 1
    assert "4 samples" in err and "at least 5" in err and "--absent-as-zero" in err


def test_default_folder_is_outside_the_report_stages_inputs(fermo_events, test_data, tmp_path, capsys, monkeypatch):
    """Scoring by hand in a project must not change reports/, a dependency of the report stage (dvc status)."""
    monkeypatch.chdir(tmp_path)
    rc, stdout, err = run_cli(["--assay", "activity", "--events", fermo_events, "--assays", test_data / ACTIVITY,
                               "--absent-as-zero", "--annotate-top", 0], capsys)  # fmt: skip
    assert rc == 0, err
    assert (tmp_path / "activity" / "activity" / "activity_scores.csv").is_file()
    assert not (tmp_path / "reports").exists()
    assert "activity/activity/activity_scores.csv" in stdout


def test_cytoscape_node_table_contract(fermo_events, test_data, tmp_path, capsys):
    """What Cytoscape's 'Import Table from File' and GNPS need: TSV, key column 'shared name' = feature id."""
    out = tmp_path / "out"
    rc, _, err = run_cli(["--assay", "activity", "--events", fermo_events, "--assays", test_data / ACTIVITY,
                          "--absent-as-zero", "--out-dir", out, "--annotate-top", 0], capsys)  # fmt: skip
    assert rc == 0, err
    path = out / "cytoscape_nodes.tsv"
    header = path.read_text(encoding="utf-8").splitlines()[0]
    assert header.split("\t") == NODE_COLUMNS and header.startswith("shared name\t") and '"' not in header
    nodes = pd.read_csv(path, sep="\t", dtype={"shared name": str}, keep_default_na=False, na_values=[""])
    assert nodes["shared name"].is_unique and (nodes["shared name"] != "").all()
    quant_ids = set(pd.read_csv(test_data / QUANT, usecols=["id"])["id"].astype(str))
    assert set(nodes["shared name"]) <= quant_ids  # the MZmine row ID the FBMN network uses, as written ("83")
    for col in ("r", "spearman_r"):
        assert nodes[col].between(-1, 1).all()
    for col in ("p", "q", "p_bonferroni", "spearman_q"):
        assert nodes[col].between(0, 1).all()
    assert nodes["neg_log10_q"].ge(0).all() and np.isfinite(nodes["neg_log10_q"]).all()
    assert set(nodes["direction"]) <= {"positive", "negative"}
    assert nodes.loc[nodes["shared name"] == "83", "activity_rank"].item() <= 5
    quant = pd.read_csv(test_data / QUANT, usecols=["id", "charge"]).set_index("id")["charge"]
    charge = nodes.set_index(nodes["shared name"].astype(int))["charge"]
    assert (charge == quant.reindex(charge.index).fillna(1)).all() and (charge == 2).sum() >= 5  # MZmine: empty = 1


def test_model_drivers_side_by_side(fermo_events, test_data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reports = tmp_path / "reports"
    (reports / "activity").mkdir(parents=True)
    pd.DataFrame(
        {"rank": [1, 2], "precursor_mz": [824.73795, 999.0], "rt_min": [15.11, 3.0], "importance": [0.3, 0.1],
         "direction": ["high", "low"]}
    ).to_csv(reports / "activity" / "drivers.csv", index=False)  # fmt: skip
    rc, _, err = run_cli(["--assay", "activity", "--events", fermo_events, "--assays", test_data / ACTIVITY,
                          "--absent-as-zero", "--reports-dir", reports, "--annotate-top", 0], capsys)  # fmt: skip
    assert rc == 0, err
    joined = pd.read_csv(tmp_path / "activity" / "activity" / "drivers_vs_correlation.csv", dtype={"feature_id": str})
    row = joined[joined["model_rank"] == 1].iloc[0]
    assert row["feature_id"] == "83" and row["correlation_rank"] <= 5 and row["model_direction"] == "high"
    assert joined[joined["model_rank"] == 2]["correlation_rank"].isna().all()  # a driver no feature matches: kept
    notes = joined.set_index(joined["model_rank"].fillna(0))["model_note"].fillna("")
    assert notes[1.0] == "" and notes[2.0].startswith("no feature within 10 ppm and 0.1 min")
    assert (joined.loc[joined["model_rank"].isna(), "model_note"] == "not among the model's 2 drivers").all()


def test_correlated_features_an_image_model_cannot_see_are_said_to_be_outside_its_image(tmp_path):
    """FERMO's features reach m/z 1800; an image family's drivers.csv cannot rank one above render.x_range."""
    from ms2img.explain.correlation import image_drivers, join_drivers

    (tmp_path / "drivers.json").write_text('{"family": "cnn", "images": "data/images/75x70.npz"}')
    assert image_drivers(tmp_path / "drivers.csv") and not image_drivers(tmp_path / "absent" / "drivers.csv")

    scores = pd.DataFrame({"rank": [1, 2], "feature_id": ["a", "b"], "precursor_mz": [1650.0, 400.0],
                           "rt_min": [5.0, 6.0], "r": [0.9, 0.8], "q": [0.01, 0.02]})  # fmt: skip
    drivers = pd.DataFrame({"rank": [1], "precursor_mz": [700.0], "rt_min": [2.0]})
    notes = join_drivers(scores, drivers, image_x_range=(100.0, 1500.0)).set_index("precursor_mz")["model_note"]
    assert notes[1650.0] == "precursor m/z outside render.x_range 100-1500: not in the model's image"
    assert notes[400.0] == "not among the model's 1 drivers"
    assert join_drivers(scores, drivers).set_index("precursor_mz")["model_note"][1650.0].startswith("not among")


def test_library_match_names_the_siomycin(fermo_events, test_data, shared_data, tmp_path, capsys):
    library = shared_data / "fermo_case_study" / "case_study_spectral_library.mgf"
    if not library.is_file():
        pytest.skip(f"{library} absent")
    out = tmp_path / "out"
    rc, _, err = run_cli(["--assay", "activity", "--events", fermo_events, "--assays", test_data / ACTIVITY,
                          "--absent-as-zero", "--out-dir", out, "--library", library, "--annotate-top", 10],
                         capsys)  # fmt: skip
    assert rc == 0, err
    nodes = pd.read_csv(out / "cytoscape_nodes.tsv", sep="\t", dtype={"shared name": str}, keep_default_na=False)
    assert nodes.set_index("shared name").loc["83", "library_match"].startswith("Siomycin_A")


def test_p_is_by_permutation_for_a_handful_of_samples():
    """Six fractions: the t approximation says p = 0 at rho = 1; over the 720 orderings it is 2/720 (rho = +-1), and
    with tied (undetected) abundances it matches scipy's exact permutation test."""
    y = np.array([3.0, 10, 25, 40, 70, 90])
    x = np.array([[1.0, 2, 3, 4, 5, 6], [0, 0, 0, 2, 5, 4], [6, 1, 4, 2, 5, 3], [5.0] * 6])
    rho = pearson_rows(stats.rankdata(x, axis=1), stats.rankdata(y))[0]
    p = permutation_p(stats.rankdata(x, axis=1), stats.rankdata(y), rho)
    assert orderings_count(y) == 720 <= EXACT_MAX_ORDERINGS
    assert rho[0] == 1.0 and p[0] == pytest.approx(2 / 720)
    assert np.isnan(rho[3]) and np.isnan(p[3])
    for i in (1, 2):
        ref = stats.permutation_test(
            (x[i],), lambda a: stats.spearmanr(a, y).statistic, permutation_type="pairings", alternative="two-sided"
        )
        assert p[i] == pytest.approx(ref.pvalue, abs=1e-9)
    assert bonferroni(p)[0] == pytest.approx(3 * 2 / 720)


def test_a_yes_no_activity_over_ten_samples_allows_no_p_below_one_in_840():
    """FERMO's shape: six inactive (0) samples, activities 7.5, 7.5, 7.5, 8.1: 840 orderings, no p below 1/840 (the t
    distribution said ~1e-6 for a feature present in the actives only); with distinct values and 10 samples the
    orderings are drawn (seeded), close to scipy's own permutation test."""
    y = np.array([0.0, 0, 0, 0, 0, 0, 7.5, 7.5, 7.5, 8.1])
    x = np.array([[1.0, 2, 1, 0, 1, 2, 90, 95, 99, 97], np.arange(10.0)])
    r = pearson_rows(x, y)[0]
    p = permutation_p(x, y, r)
    assert orderings_count(y) == 840 <= EXACT_MAX_ORDERINGS and len(distinct_orderings(y)) == 840
    assert 1 / 840 <= p[0] <= 2 / 840 + 1e-12 and pearson_rows(x, y)[1][0] < 1e-6
    y8, x8 = y[2:], np.array([[3.0, 1, 4, 1, 5, 9, 2, 6]])  # 8 samples: every one of the 8! orderings, by brute force
    every = np.array(list(itertools.permutations(y8)))
    brute = np.mean(np.abs([np.corrcoef(x8[0], o)[0, 1] for o in every]) >= abs(np.corrcoef(x8[0], y8)[0, 1]) - 1e-9)
    p8 = permutation_p(x8, y8, pearson_rows(x8, y8)[0])
    assert orderings_count(y8) == 280 and p8[0] == pytest.approx(brute, abs=1e-12)
    y_distinct = np.array([0.1, 0.4, 0.2, 0.0, 0.3, 0.5, 7.2, 7.9, 8.1, 7.5])
    r = pearson_rows(x, y_distinct)[0]
    p = permutation_p(x, y_distinct, r, seed=3)
    assert orderings_count(y_distinct) > EXACT_MAX_ORDERINGS and p[0] >= 1 / 10_000
    assert np.array_equal(p, permutation_p(x, y_distinct, r, seed=3))  # seeded: the same p every run
    ref = stats.permutation_test(
        (x[1],), lambda a: stats.pearsonr(a, y_distinct).statistic, permutation_type="pairings", n_resamples=20_000,
        rng=0,
    )  # fmt: skip
    assert p[1] == pytest.approx(ref.pvalue, abs=0.02)
    assert p_method(y).startswith("permutation, all 840 distinct orderings") and "(no p below 0.0012)" in p_method(y)
    assert p_method(y_distinct).startswith("permutation, 9,999 seeded orderings")
    assert p_method(np.arange(31.0)) == "the t distribution (n - 2 d.f.)"


def test_the_stated_p_floor_counts_the_mirror_of_a_symmetric_design():
    """Three inactive and three active plants (real GNPS trial): 20 orderings, but each has a mirror with the same |r|,
    so no p is below 0.1; the command said 0.05 while 200 features sat at exactly 0.1."""
    y = np.array([0.0, 0, 0, 1, 1, 1])
    assert "all 20 distinct orderings" in p_method(y) and "(no p below 0.1)" in p_method(y)
    rng = np.random.default_rng(0)
    x = rng.random((300, 6))
    r = pearson_rows(x, y)[0]
    assert permutation_p(x, y, r).min() >= 0.1 - 1e-12
    x[0] = y + rng.normal(0, 0.01, 6)  # a perfect separator reaches the floor
    assert permutation_p(x[:1], y, pearson_rows(x[:1], y)[0])[0] == pytest.approx(0.1)
    assert "all 60 distinct orderings" in p_method(np.array([0.0, 0, 0, 1, 1, 2]))  # not symmetric: 1/60
    assert "(no p below 0.017)" in p_method(np.array([0.0, 0, 0, 1, 1, 2]))


def test_the_explain_stage_of_a_regression_project_writes_correlation_drivers(
    fermo_events, test_data, tmp_path, capsys
):
    """A regression champion predicts the value; class attribution cannot explain it, and the stage failed every
    retrain of such a project. Its drivers are the correlation with the value, in the stage's own outputs."""
    import json

    act = read_activity(test_data / ACTIVITY, "CHIKV")
    names = pd.read_csv(fermo_events / "samples.csv")["accession"]
    full = tmp_path / "assays.csv"
    full.write_text("accession,CHIKV\n" + "".join(f"{a},{act.get(a, 0.0):g}\n" for a in names))
    params = tmp_path / "params.yaml"
    params.write_text("labels:\n  assays: [CHIKV]\n  mode: regression\n")
    args = ["explain", "--assay", "CHIKV", "--params", params, "--events", fermo_events, "--assays", full,
            "--reports-dir", tmp_path / "reports", "--no-track", "--annotate-top", 0]  # fmt: skip
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    out = tmp_path / "reports" / "CHIKV"
    drivers = pd.read_csv(out / "drivers.csv")
    assert is_siomycin(drivers["precursor_mz"].head(5)).any()  # the known active compound ranks at the top
    meta = json.loads((out / "drivers.json").read_text())
    assert meta["attribution"].startswith("correlation with the assay value") and (out / "drivers.png").stat().st_size
    assert "a regression model; drivers are the correlation of" in capsys.readouterr().out


def test_replicate_injections_scored_as_samples_are_warned_about(shared_data, tmp_path, capsys):
    """The GNPS PASEF export without a sample sheet: 24 injections of 6 plants became 24 "samples"; with the plant's
    value on each injection the correlation reported 336 features with q < 0.05 (0 with the sheet) and said nothing.
    Ingest's replicate hint must be said again where the p values are read."""
    export = shared_data / "gnps_msdial_pasef_arabidopsis" / "GnpsTable_1_20198191357_PASEF.txt"
    events = tmp_path / "events"
    ingest([export], events)
    values = {"Hi01": 12.5, "Hi05": 18.0, "Hi09": 14.0, "Hi16": 30.5, "Hi20": 28.0, "Hi24": 35.0}
    accs = [p.stem for p in sorted(events.glob("Hi*.parquet"))]
    assert len(accs) == 24
    pd.DataFrame({"accession": accs, "heat": [values[a[:4]] for a in accs]}).to_csv(tmp_path / "a.csv", index=False)
    rc, stdout, err = run_cli(["--assay", "heat", "--events", events, "--assays", tmp_path / "a.csv",
                               "--out-dir", tmp_path / "out", "--annotate-top", 0], capsys)  # fmt: skip
    assert rc == 0, err
    assert "warning: 24 accessions look like 6 extracts injected 4 times each" in stdout
    assert "every p and q here is far too small" in stdout


def test_no_replicate_warning_for_distinct_extracts(fermo_events, test_data, tmp_path, capsys):
    args = ["--assay", "activity", "--events", fermo_events, "--assays", test_data / ACTIVITY, "--absent-as-zero"]
    rc, stdout, err = run_cli([*args, "--out-dir", tmp_path / "out", "--annotate-top", 0], capsys)
    assert rc == 0, err
    assert "warning:" not in stdout
