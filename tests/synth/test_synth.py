"""The synthetic cohort: deterministic, appendable, real MS-DIAL layout, assays that follow the chemistry, truth."""

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
from ms2img.io.msdial_writer import AlignmentExport, Annotation, format_alignment, isotope_cells, msms_cells
from ms2img.synth import ASSAYS, MSDIAL_HEADER, TRUTH_COLUMNS, cohort_assays, make_cohort

REAL_EXPORT = "MSDIAL_Alignment_result_LC-MS.txt"
SHARED_DATA = Path(os.environ.get("MS2IMG_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
PAIR = re.compile(r"^\d+(\.\d+)?:\d+$")
SEED = 7


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh, delimiter="\t"))


def _table(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = _rows(path)
    return rows[4], rows[5:]


def _spectrum(cell: str) -> np.ndarray:
    return np.array([[float(x) for x in p.split(":")] for p in cell.split(" ")]) if cell else np.zeros((0, 2))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, synth.CohortSummary]:
    out = tmp_path_factory.mktemp("cohort")
    return out, make_cohort(out, accessions=6, seed=SEED)


def test_same_seed_same_bytes_other_seed_differs(tmp_path, small):
    ref_dir, _ = small
    again = make_cohort(tmp_path / "a", accessions=6, seed=SEED)
    assert _tree(tmp_path / "a") == _tree(ref_dir)
    assert again.accessions == [f"ACC000{i}" for i in range(1, 7)]
    make_cohort(tmp_path / "b", accessions=6, seed=SEED + 1)
    other = _tree(tmp_path / "b")
    assert other.keys() == _tree(ref_dir).keys()
    for name in ("exports/ACC0001.txt", "assays.csv", "truth.csv", "latent.csv"):
        assert other[name] != _tree(ref_dir)[name], name


def test_append_keeps_old_files_and_matches_a_bigger_cohort(tmp_path, small):
    ref_dir, _ = small
    out = tmp_path / "grow"
    make_cohort(out, accessions=4, seed=SEED)
    before = _tree(out)
    summary = make_cohort(out, accessions=2, seed=SEED, append=True)
    after = _tree(out)
    assert summary.accessions == ["ACC0005", "ACC0006"] and summary.n_total == 6
    for name, data in before.items():
        if name.startswith("exports/") or name in ("cohort.json", "truth.csv"):
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
    assert rows[2][n_meta:] == [str(i) for i in range(6, 11)] + ["NA"] * 6  # second accession of its batch
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
            # isolation window: isotopes of the precursor may sit up to +2 Da above it, nothing further
            assert np.all(np.diff(frag) >= 0) and frag.max() <= float(r[col["Average Mz"]]) + 2.1
            assert len(pairs) <= synth.MAX_FRAGMENTS
    assert 0.6 * len(data) < with_msms < len(data)  # DDA misses: some precursors without MS/MS
    adducts = {r[col["Adduct type"]] for r in data}
    assert "[M-H]-" in adducts and len(adducts) > 1
    names = {r[col["Metabolite name"]] for r in data} - {"Unknown"}
    assert names  # some features carry a library annotation, like a real export


def test_msms_has_isotope_peaks_above_the_precursor_within_the_validation_share(small):
    out, _ = small
    for path in sorted((out / "exports").glob("*.txt")):
        header, data = _table(path)
        c_mz, c_ms = header.index("Average Mz"), header.index("MS/MS spectrum")
        n_spec = n_iso = n_peaks = n_above = 0
        for r in data:
            spec = _spectrum(r[c_ms])
            if not len(spec):
                continue
            prec = float(r[c_mz])
            n_spec += 1
            n_peaks += len(spec)
            d = spec[:, 0] - prec
            n_above += int((d > 0.05).sum())
            n_iso += bool(np.any(np.abs(d - 1.003355) < 0.01))
        assert n_iso >= 0.15 * n_spec, (path.name, n_iso, n_spec)  # M+1 co-isolated in a good share of scans
        assert n_above / n_peaks < 0.045, path.name  # validate.max_above_precursor_share is 0.05


def test_blank_has_only_contaminants_and_qc_is_pooled(small):
    out, _ = small
    rows = _rows(out / "exports" / "ACC0003.txt")[5:]
    n = len(MSDIAL_HEADER)
    blank = np.array([float(r[n + 3]) for r in rows])
    qc = np.array([float(r[n + 4]) for r in rows])
    reps = np.array([[float(v) for v in r[n : n + 3]] for r in rows])
    assert 3 <= (blank > 0).sum() <= 45
    assert (qc > 0).sum() > 0.5 * len(rows)
    assert ((qc > 0) & (reps.max(1) == 0)).sum() >= 1  # pooled QC sees compounds of other accessions
    assert (reps == 0).any()  # detection limit / misses leave zeros


def test_base_peak_belongs_to_a_varying_family(tmp_path):
    out = tmp_path / "c30"
    make_cohort(out, accessions=30, seed=SEED)
    world = synth.build_world(SEED)
    dominant = set(world.dominant.tolist())
    owners = []
    for path in sorted((out / "exports").glob("*.txt")):
        header, data = _table(path)
        c_mz, c_rt, first = header.index("Average Mz"), header.index("Average Rt(min)"), len(MSDIAL_HEADER)
        heights = np.array([[float(v) for v in r[first : first + 3]] for r in data]).mean(1)
        top = data[int(np.argmax(heights))]
        score = np.abs(world.ion_mz - float(top[c_mz])) / 0.01 + np.abs(world.rt - float(top[c_rt])) / 0.3
        owners.append(int(np.argmin(score)))
    labels = {world.label[i] for i in owners}
    print("base peaks:", sorted(world.label[i] for i in owners))
    assert len(labels) >= 4, labels  # not one steady constituent setting every image's scale
    assert sum(i in dominant for i in owners) >= 0.4 * len(owners)  # mostly the chemotype's dominant compound
    latent, _ = cohort_assays(200, seed=SEED)
    counts = latent["chemotype"].value_counts()
    assert len(counts) == len(synth.CHEMOTYPES) and counts.min() >= 10


def test_batches_are_shared_by_neighbouring_accessions_only():
    world = synth.build_world(SEED)
    first, last, next_ = (synth.batch_of(world, SEED, i) for i in (1, synth.BATCH_SIZE, synth.BATCH_SIZE + 1))
    assert first.index == last.index == 0 and next_.index == 1 and last.position == synth.BATCH_SIZE - 1
    assert (first.ppm, first.rt_shift) == (last.ppm, last.rt_shift)
    assert first.ppm != next_.ppm and not np.array_equal(first.contaminants, next_.contaminants)
    ppm = [synth.batch_of(world, SEED, 1 + k * synth.BATCH_SIZE).ppm for k in range(20)]
    assert 1.0 < np.std(ppm) < 6.0  # a few ppm of calibration offset between batches


def test_assays_csv_and_latent(small):
    out, summary = small
    assays = pd.read_csv(out / "assays.csv")
    assert list(assays.columns) == ["accession", *ASSAYS]
    assert assays["accession"].tolist() == summary.accessions
    assert assays[list(ASSAYS)].notna().all().all()
    assert assays["DPPH"].between(0, 100).all() and assays["elastase"].between(0, 100).all()
    assert (assays["TFC"] > 0).all() and (assays["TPC"] > 0).all()
    latent = pd.read_csv(out / "latent.csv")
    assert {"total_phenolics", "chemotype", "dominant_mgg", "minor_1"} <= set(latent.columns)
    num = latent.drop(columns=["accession", "chemotype"])
    pd.testing.assert_frame_equal(num, summary.latent.drop(columns=["accession", "chemotype"]).round(4),
                                  check_exact=False, atol=1e-4)  # fmt: skip
    # the fast path draws exactly what make_cohort wrote
    lat2, as2 = cohort_assays(6, seed=SEED)
    pd.testing.assert_frame_equal(as2, summary.assays)
    pd.testing.assert_frame_equal(lat2, summary.latent)


def test_assays_follow_the_chemistry_minor_actives_matter_and_classes_are_balanced():
    latent, assays = cohort_assays(240, seed=777)
    minor = {a: [f"minor_{k + 1}" for k, (pot, _, _) in enumerate(synth.MINOR_ACTIVES) if a in pot] for a in ASSAYS}
    rho = {
        "DPPH~total_phenolics": spearmanr(assays["DPPH"], latent["total_phenolics"])[0],
        "TPC~total_phenolics": spearmanr(assays["TPC"], latent["total_phenolics"])[0],
        "TFC~flavonols": spearmanr(assays["TFC"], latent["flavonols"])[0],
        "elastase~procyanidins": spearmanr(assays["elastase"], latent["procyanidins"])[0],
    }
    print("spearman", {k: round(v, 2) for k, v in rho.items()})
    assert all(0.4 < v < 0.97 for v in rho.values()), rho  # learnable, not an identity
    for assay, cols in minor.items():
        assert len(cols) >= 2, assay
        r = spearmanr(assays[assay], latent[cols].sum(axis=1))[0]
        assert 0.1 < r < 0.8, (assay, r)  # a few minor constituents move the assay, the families still lead
    counts = synth.cohort_class_counts(assays)
    print("class counts (240 accessions, 0.4/0.6):", counts)
    for assay, c in counts.items():
        labelled = c["low"] + c["high"]
        assert min(c["low"], c["high"]) >= 0.25 * labelled, (assay, c)
        assert labelled >= 120, (assay, c)


def test_class_balance_holds_for_other_seeds():
    for seed in (0, 1, 2, 42):
        _, assays = cohort_assays(240, seed=seed)
        for assay, c in synth.cohort_class_counts(assays).items():
            assert min(c["low"], c["high"]) >= 0.15 * (c["low"] + c["high"]), (seed, assay, c)


def test_truth_lists_the_planted_actives(small):
    out, summary = small
    truth = pd.read_csv(out / "truth.csv", keep_default_na=False)
    assert list(truth.columns) == TRUTH_COLUMNS
    assert set(truth["assay"]) == set(ASSAYS)
    assert truth["weight"].between(0.005, 1).all()
    world = synth.build_world(SEED)
    for assay, group in truth.groupby("assay"):
        assert group["weight"].is_monotonic_decreasing and group["weight"].sum() <= 1.0001
        assert 5 <= len(group) <= 80 and not group["compound"].duplicated().any()
        minors = [world.compound_id(int(world.minor[k])) for k, (p, _, _) in enumerate(synth.MINOR_ACTIVES)
                  if assay in p]  # fmt: skip
        assert set(minors) <= set(group["compound"]), assay
        assert (group["library_name"] != "").sum() >= 3, assay  # library standards among the drivers
    named = truth[truth["library_name"] != ""]
    standards = {s.name for s in synth.phenolics_library("negative")}
    assert set(named["library_name"]) <= standards
    assert not truth.loc[truth["compound"].str.startswith("minor_"), "library_name"].any()

    # every minor active is in the exports of the accessions that contain it (m/z within batch + noise ppm)
    latent = summary.latent.set_index("accession")
    seen = 0
    for k in range(len(synth.MINOR_ACTIVES)):
        idx = int(world.minor[k])
        mz0, rt0 = world.ion_mz[idx], world.rt[idx]
        for acc in latent.index[latent[f"minor_{k + 1}"] > 0]:
            header, data = _table(out / "exports" / f"{acc}.txt")
            c_mz, c_rt = header.index("Average Mz"), header.index("Average Rt(min)")
            hit = [r for r in data if abs(float(r[c_mz]) - mz0) < 25e-6 * mz0 and abs(float(r[c_rt]) - rt0) < 0.5]
            assert hit, (acc, k, mz0, rt0)
            seen += 1
    assert seen >= 10


def test_positive_mode(tmp_path):
    summary = make_cohort(tmp_path / "pos", accessions=1, seed=3, polarity="positive")
    rows = _rows(tmp_path / "pos" / "exports" / "ACC0001.txt")
    adducts = {r[4] for r in rows[5:]}
    assert "[M+H]+" in adducts and not any(a.endswith("-") for a in adducts)
    assert summary.polarity == "positive"
    truth = pd.read_csv(tmp_path / "pos" / "truth.csv")
    assert set(truth["assay"]) == set(ASSAYS)


def test_reference_libraries_parse():
    neg = synth.phenolics_library("negative")
    assert len(neg) > 60 and all(s.rt is not None for s in neg)
    assert all(s.polarity == "negative" and s.intensity.max() == pytest.approx(100) for s in neg)
    assert {synth.family_of(s.name) for s in neg} >= {"flavonols", "procyanidins", "hydroxycinnamics", "flavan3ols"}
    assert synth.family_of("Procyanidin B2") == "procyanidins"
    assert synth.family_of("Cyanidin 3-O-galactoside") == "anthocyanins"
    assert synth.family_of("5-O-Caffeoylquinic acid (IUPAC)") == "hydroxycinnamics"
    gallic = next(s for s in neg if s.name == "Gallic acid")
    assert gallic.precursor_mz == pytest.approx(169.0142, abs=0.01) and gallic.mz.max() < 170
    bg = synth.background_library("negative")
    assert len(bg) > 150 and all(s.mz.max() < s.precursor_mz + 0.5 for s in bg)
    mgf = synth.relative_spectra(synth.DATA_DIR / "pesticides.mgf")
    assert len(mgf) > 50 and {s.polarity for s in mgf} <= {"negative", "positive", "unknown"}


def test_writer_round_trips_through_the_reader(tmp_path):
    from ms2img.io.msdial import read_msdial

    frag_mz, frag_int = np.array([100.5, 150.25, 60.1]), np.array([10, 1000, 50])
    ex = AlignmentExport(
        samples=["S_r1", "S_r2", "S_blank"], classes=["S", "S", "Blank"], file_types=["Sample", "Sample", "Blank"],
        groups=[[0, 1], [2]], group_names=["S", "Blank"], rt=np.array([1.5, 2.25]), mz=np.array([200.1, 300.2]),
        heights=np.array([[1000, 3000, 0], [0, 5000, 10]]), adduct=["[M-H]-", "[M-H]-"],
        msms=msms_cells(frag_mz, frag_int, np.array([0, 2, 3]), [0, 1]),
        isotopes=isotope_cells([200.1, 300.2], [3000, 5000], [200.1, 300.2]), ref_file=["S_r2", "S_r2"],
        sn=np.array([10.0, 20.0]), annotations=[Annotation("Gallic acid", 1.2, 169.01), None],
    )  # fmt: skip
    text = format_alignment(ex)
    assert text.count("\r\n") == 7 and "Gallic acid" in text and "100.5:10 150.25:1000" in text
    path = tmp_path / "one.txt"
    path.write_bytes(text.encode())
    result = read_msdial(path, accession_from="file")
    ev = result.events
    assert set(result.samples["type"]) == {"Sample", "Blank"}
    r2 = ev[ev["replicate"] == ev["replicate"].iloc[0]]
    assert len(ev) > 0 and set(np.round(ev["fragment_mz"], 2)) <= {100.5, 150.25, 60.1}
    assert r2["precursor_mz"].isin([200.1, 300.2]).all()


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["synth", "--accessions", "2", "--seed", "5", "--out", str(out), "--params", "nope.yaml"]) == 2
    capsys.readouterr()
    args = ["synth", "--accessions", "2", "--seed", "5", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "ACC0001..ACC0002" in printed and "DPPH" in printed
    assert (out / "truth.csv").is_file()
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
    assert (reps["fragment_mz"] <= reps["precursor_mz"] + 2.1).all()
    assert reps.groupby("replicate")["feature_id"].nunique().min() > 150


@pytest.mark.slow
def test_240_accessions_are_fast_and_small(tmp_path):
    t0 = time.perf_counter()
    summary = make_cohort(tmp_path / "full", accessions=240)
    seconds = time.perf_counter() - t0
    print(summary.format())
    assert seconds < 40
    assert summary.bytes_written < 70e6
    assert 300 <= summary.precursors_mean <= 1000
