"""The synthetic cohort: deterministic, appendable, real MS-DIAL layout, assays that follow the chemistry."""

from __future__ import annotations

import csv
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from ms2img import synth
from ms2img.cli import main
from ms2img.errors import ConfigError
from ms2img.synth import ASSAYS, MSDIAL_HEADER, cohort_assays, make_cohort

REAL_EXPORT = "MSDIAL_Alignment_result_LC-MS.txt"
SHARED_DATA = Path(os.environ.get("MS2IMG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
PAIR = re.compile(r"^\d+(\.\d+)?:\d+$")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, synth.CohortSummary]:
    out = tmp_path_factory.mktemp("cohort")
    return out, make_cohort(out, accessions=6, seed=7)


def test_same_seed_same_bytes_other_seed_differs(tmp_path, small):
    ref_dir, _ = small
    again = make_cohort(tmp_path / "a", accessions=6, seed=7)
    assert _tree(tmp_path / "a") == _tree(ref_dir)
    assert again.accessions == [f"ACC000{i}" for i in range(1, 7)]
    make_cohort(tmp_path / "b", accessions=6, seed=8)
    other = _tree(tmp_path / "b")
    assert other.keys() == _tree(ref_dir).keys()
    assert other["exports/ACC0001.txt"] != _tree(ref_dir)["exports/ACC0001.txt"]
    assert other["assays.csv"] != _tree(ref_dir)["assays.csv"]


def test_append_keeps_old_files_and_matches_a_bigger_cohort(tmp_path, small):
    ref_dir, _ = small
    out = tmp_path / "grow"
    make_cohort(out, accessions=4, seed=7)
    before = _tree(out)
    summary = make_cohort(out, accessions=2, seed=7, append=True)
    after = _tree(out)
    assert summary.accessions == ["ACC0005", "ACC0006"] and summary.n_total == 6
    for name, data in before.items():
        if name.startswith("exports/") or name == "cohort.json":
            assert after[name] == data, name
        else:  # the tables grow at the end only
            assert after[name].startswith(data), name
    assert len(pd.read_csv(out / "assays.csv")) == 6
    # per-accession random streams: 4 + 2 is the same cohort as 6 at once
    assert after == _tree(ref_dir)


def test_append_needs_a_cohort_and_refuses_to_clobber(tmp_path):
    with pytest.raises(ConfigError, match="append"):
        make_cohort(tmp_path / "none", accessions=1, append=True)
    out = tmp_path / "c"
    make_cohort(out, accessions=1)
    with pytest.raises(ConfigError, match="not empty"):
        make_cohort(out, accessions=1)
    with pytest.raises(ConfigError, match="cannot append positive"):
        make_cohort(out, accessions=1, append=True, polarity="positive")
    (out / "notes.txt").write_text("mine")
    make_cohort(out, accessions=2, force=True)  # replaces only generated files
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (out / "exports").iterdir()) == ["ACC0001.txt", "ACC0002.txt"]


@pytest.mark.parametrize("bad", [0, -3, 1.5, True])
def test_bad_accession_counts_are_config_errors(tmp_path, bad):
    with pytest.raises(ConfigError):
        make_cohort(tmp_path / "x", accessions=bad)
    assert not (tmp_path / "x").exists()


def test_export_has_the_msdial_v4_layout(small, test_data):
    out, summary = small
    path = out / "exports" / "ACC0002.txt"
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")  # CRLF like the Windows program
    rows = _rows(path)
    header = rows[4]
    n_meta = len(MSDIAL_HEADER)
    assert header[:n_meta] == MSDIAL_HEADER
    real = next((p for p in (test_data / REAL_EXPORT, SHARED_DATA / "msdialr_lcms_demo" / REAL_EXPORT)
                 if p.exists()), None)  # fmt: skip
    if real is not None:
        assert _rows(real)[4][:n_meta] == MSDIAL_HEADER
    # 4 metadata rows, label just left of the first sample column
    assert [r[n_meta - 1] for r in rows[:4]] == ["Class", "File type", "Injection order", "Batch ID"]
    assert all(cell == "" for r in rows[:4] for cell in r[: n_meta - 1])
    samples = header[n_meta:]
    assert samples == ["ACC0002_r1", "ACC0002_r2", "ACC0002_r3", "ACC0002_blank", "ACC0002_QC",
                       "ACC0002", "Blank", "QC", "ACC0002", "Blank", "QC"]  # fmt: skip
    assert rows[0][n_meta:] == ["ACC0002"] * 3 + ["Blank", "QC"] + ["NA"] * 6
    assert rows[1][n_meta:] == ["Sample"] * 3 + ["Blank", "QC"] + ["NA"] * 6
    assert rows[3][n_meta:] == ["1"] * 5 + ["Average"] * 3 + ["Stdev"] * 3
    data = rows[5:]
    assert 200 <= len(data) <= 1000 and len(data) == summary.precursors[1]
    col = {name: i for i, name in reversed(list(enumerate(header)))}
    mz = np.array([float(r[col["Average Mz"]]) for r in data])
    assert np.all(np.diff(mz) >= 0) and mz.min() > 50 and mz.max() < 1800
    assert [int(r[0]) for r in data] == list(range(len(data)))
    with_msms = 0
    for r in data:
        assert len(r) == len(header)
        heights = np.array([float(v) for v in r[n_meta : n_meta + 5]])
        assert np.all(heights >= 0) and heights.max() > 0
        assert all(float(v).is_integer() for v in r[n_meta : n_meta + 5])
        assert float(r[n_meta + 5]) == pytest.approx(heights[:3].mean(), rel=1e-9)  # Average of the replicates
        spec = r[col["MS/MS spectrum"]]
        assert (spec != "") == (r[col["MS/MS assigned"]] == "True")
        if spec:
            with_msms += 1
            pairs = spec.split(" ")
            assert all(PAIR.match(p) for p in pairs), spec
            frag = np.array([float(p.split(":")[0]) for p in pairs])
            assert np.all(np.diff(frag) >= 0) and frag.max() <= float(r[col["Average Mz"]]) + 0.1
            assert len(pairs) <= synth.MAX_FRAGMENTS
    assert with_msms > 0.6 * len(data)
    adducts = {r[col["Adduct type"]] for r in data}
    assert "[M-H]-" in adducts and len(adducts) > 1
    names = {r[col["Metabolite name"]] for r in data} - {"Unknown"}
    assert names  # some features carry a library annotation, like a real export


def test_blank_has_only_contaminants_and_qc_is_pooled(small):
    out, _ = small
    rows = _rows(out / "exports" / "ACC0003.txt")[5:]
    n = len(MSDIAL_HEADER)
    blank = np.array([float(r[n + 3]) for r in rows])
    qc = np.array([float(r[n + 4]) for r in rows])
    reps = np.array([[float(v) for v in r[n : n + 3]] for r in rows])
    assert 3 <= (blank > 0).sum() <= 40
    assert (qc > 0).sum() > 0.5 * len(rows)
    assert ((qc > 0) & (reps.max(1) == 0)).sum() >= 1  # pooled QC sees compounds of other accessions
    assert (reps == 0).any()  # detection limit / misses leave zeros


def test_assays_csv_and_latent(small):
    out, summary = small
    assays = pd.read_csv(out / "assays.csv")
    assert list(assays.columns) == ["accession", *ASSAYS]
    assert assays["accession"].tolist() == summary.accessions
    assert assays[list(ASSAYS)].notna().all().all()
    assert assays["DPPH"].between(0, 100).all() and assays["elastase"].between(0, 100).all()
    assert (assays["TFC"] > 0).all() and (assays["TPC"] > 0).all()
    latent = pd.read_csv(out / "latent.csv")
    pd.testing.assert_frame_equal(latent, summary.latent.round(4), check_exact=False, atol=1e-4)
    # the fast path draws exactly what make_cohort wrote
    lat2, as2 = cohort_assays(6, seed=7)
    pd.testing.assert_frame_equal(as2, summary.assays)
    pd.testing.assert_frame_equal(lat2, summary.latent)


def test_assays_follow_the_chemistry_and_both_classes_exist():
    latent, assays = cohort_assays(200, seed=42)
    rho = {
        "DPPH~total_phenolics": spearmanr(assays["DPPH"], latent["total_phenolics"])[0],
        "TPC~total_phenolics": spearmanr(assays["TPC"], latent["total_phenolics"])[0],
        "TFC~flavonols": spearmanr(assays["TFC"], latent["flavonols"])[0],
        "elastase~procyanidins": spearmanr(assays["elastase"], latent["procyanidins"])[0],
    }
    print("spearman", {k: round(v, 2) for k, v in rho.items()})
    assert all(v > 0.5 for v in rho.values()), rho
    assert rho["DPPH~total_phenolics"] < 0.97  # learnable, not an identity
    counts = synth.class_counts(assays)
    print("class counts (200 accessions, 0.4/0.6):", counts)
    for assay, c in counts.items():
        labelled = c["low"] + c["high"]
        assert min(c["low"], c["high"]) >= 0.15 * labelled, (assay, c)
        assert labelled >= 80, (assay, c)


def test_class_balance_holds_for_other_seeds():
    for seed in (0, 1, 2):
        _, assays = cohort_assays(200, seed=seed)
        for assay, c in synth.class_counts(assays).items():
            assert min(c["low"], c["high"]) >= 0.1 * (c["low"] + c["high"]), (seed, assay, c)


def test_positive_mode(tmp_path):
    summary = make_cohort(tmp_path / "pos", accessions=1, seed=3, polarity="positive")
    rows = _rows(tmp_path / "pos" / "exports" / "ACC0001.txt")
    adducts = {r[4] for r in rows[5:]}
    assert "[M+H]+" in adducts and not any(a.endswith("-") for a in adducts)
    assert summary.polarity == "positive"


def test_reference_libraries_parse():
    neg = synth.phenolics_library("negative")
    assert len(neg) > 60 and all(s.rt is not None for s in neg)
    assert {synth.family_of(s.name) for s in neg} >= {"flavonols", "procyanidins", "hydroxycinnamics", "flavan3ols"}
    assert synth.family_of("Procyanidin B2") == "procyanidins"
    assert synth.family_of("Cyanidin 3-O-galactoside") == "anthocyanins"
    assert synth.family_of("5-O-Caffeoylquinic acid (IUPAC)") == "hydroxycinnamics"
    bg = synth.background_library("negative")
    assert len(bg) > 150 and all(s.mz.max() < s.precursor_mz + 0.5 for s in bg)


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--accessions", "2", "--seed", "5", "--out", str(out), "--params", "nope.yaml"]) == 2
    capsys.readouterr()
    args = ["synth", "--accessions", "2", "--seed", "5", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "ACC0001..ACC0002" in printed and "DPPH" in printed
    assert main(args) == 2
    assert str(out) in capsys.readouterr().err
    assert main([*args, "--append"]) == 0
    assert sorted(p.stem for p in (out / "exports").iterdir()) == ["ACC0001", "ACC0002", "ACC0003", "ACC0004"]
    assert main([*args, "--force"]) == 0
    assert len(list((out / "exports").iterdir())) == 2
    assert main(["synth", "--accessions", "0", "--out", str(tmp_path / "zero")]) == 2
    assert "accessions" in capsys.readouterr().err


def test_msdial_reader_reads_an_export(small):
    from ms2img.io.msdial import read_msdial

    out, _ = small
    result = read_msdial(out / "exports" / "ACC0001.txt", accession_from="file")
    types = result.samples["type"].value_counts().to_dict()
    assert types == {"Sample": 3, "Blank": 1, "QC": 1}
    sample_rows = result.samples[result.samples["type"] == "Sample"]
    assert set(sample_rows["accession"]) == {"ACC0001"}
    events = result.events
    assert set(events["polarity"]) == {"negative"}
    reps = events[events["replicate"].isin(sample_rows["replicate"])]
    assert reps["replicate"].nunique() == 3
    assert (reps["fragment_mz"] <= reps["precursor_mz"] + 0.1).all()
    assert reps.groupby("replicate")["feature_id"].nunique().min() > 150


@pytest.mark.slow
def test_200_accessions_are_fast_and_small(tmp_path):
    t0 = time.perf_counter()
    summary = make_cohort(tmp_path / "full", accessions=200)
    seconds = time.perf_counter() - t0
    print(summary.format())
    assert seconds < 60
    assert summary.bytes_written < 60e6
    assert 300 <= summary.precursors_mean <= 1000
