"""The ingest stage takes what a lab has (issue 25, point 3): data/raw/sample_sheet.csv picked up beside the
exports, a lone multi-sample export split into its samples, blanks and QCs never trained, a printout of how
files became accessions, and a hint when sample columns look like replicate injections of one extract."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from ms2img.cli import main
from ms2img.io.sample_sheet import (
    describe_sources,
    mixed_class_warnings,
    name_stem,
    replicate_groups,
    replicate_hint,
)

GNPS = "gnps_msdial_pasef_arabidopsis/GnpsTable_1_20198191357_PASEF.txt"
MSDIALR = "MSDIAL_Alignment_result_LC-MS.txt"  # samples 1a, 1b, 2a, 2b and a blank


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("Hi01_neg_timsON_PASEF_2_1_2457", "Hi01_neg_timsON_PASEF_2_1"),
        ("QC_03", "QC"),
        ("A_r2.mzML", "A"),
        ("pool-inj12", "pool"),
        ("ACC0001", "ACC0001"),
        ("1a", "1a"),
    ],
)
def test_name_stem_drops_the_injection_suffix(name, stem):
    assert name_stem(name) == stem


def manifest(rows: list[tuple[str, str, str, str]], source: str = "x/table.txt") -> pd.DataFrame:
    return pd.DataFrame(
        [{"sample": s, "accession": a, "replicate": r, "type": t, "source": source} for s, a, r, t in rows]
    )


def test_describe_sources_and_the_replicate_hint():
    qc = [(f"QC_{i}", f"QC_{i}", "1", "QC") for i in range(1, 6)]
    samples = [(f"S{i}", f"S{i}", "1", "Sample") for i in range(1, 4)]
    m = manifest(qc + samples + [("blank_1", "blank_1", "1", "Blank")])
    assert describe_sources(m, ("Sample",)) == [
        "table.txt: 9 columns -> 3 accessions x 1 replicate, 5 QCs skipped, 1 blank skipped"
    ]
    assert replicate_hint(m, ("Sample",)) is None  # the QC pool does not train
    hint = replicate_hint(m, ("Sample", "QC"))  # it does here: five injections of one pool, five "extracts"
    assert hint and hint.startswith("5 accessions look like 1 extract injected 5 times each (QC*)")
    numbered = manifest([(f"Extract_{i:02d}", f"Extract_{i:02d}", "1", "Sample") for i in range(1, 41)])
    assert replicate_hint(numbered, ("Sample",)) is None  # one numbered series is not a replicate pattern
    assert replicate_groups(["A_1", "A_2", "B_1"]) == {"A": ["A_1", "A_2"]}
    files = pd.concat([manifest([(f"ACC{i}_r{j}", f"ACC{i}", str(j), "Sample") for j in (1, 2, 3)],
                                source=f"exports/ACC{i}.txt") for i in range(8)])  # fmt: skip
    assert describe_sources(files, ("Sample",)) == ["8 files: one accession each (file name), 3 replicates each"]
    # raw files (one sample each) are one line: a sheet grouping injections was "1 file -> 1 accession" per file
    runs = pd.concat([manifest([(f"A_{j}.mzML", "A", str(j), "Sample")], source=f"raw/A_{j}.mzML") for j in (1, 2)])
    assert describe_sources(runs, ("Sample",)) == ["A_1.mzML, A_2.mzML: 2 files -> 1 accession x 2 replicates"]
    many = pd.concat([manifest([(f"R{j}.mzML", f"R{j}", "1", "Sample")], source=f"R{j}.mzML") for j in range(9)])
    assert describe_sources(many, ("Sample",)) == ["R0.mzML ... R8.mzML: 9 files -> 9 accessions x 1 replicate"]


def project(tmp_path, export):
    exports = tmp_path / "data" / "raw" / "exports"
    exports.mkdir(parents=True)
    shutil.copy(export, exports)
    return tmp_path / "data" / "raw"


def test_a_lone_export_in_the_exports_folder_is_split_into_its_samples(test_data, tmp_path, capsys, monkeypatch):
    raw = project(tmp_path, test_data / MSDIALR)
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "data/raw/exports", "--out", "events"]) == 0
    out = capsys.readouterr().out
    assert (
        "accessions written: 4" in out and f"{MSDIALR}: 5 columns -> 4 accessions x 1 replicate, 1 blank skipped" in out
    )
    (raw / "sample_sheet.csv").write_text("sample,accession,replicate,type\n")  # the template of `ms2img init`
    assert main(["ingest", "data/raw/exports", "--out", "events"]) == 0
    assert "sample_sheet.csv lists no samples (header only)" in capsys.readouterr().out
    (raw / "sample_sheet.csv").write_text(
        "sample,accession,replicate,type\n1a,one,1,Sample\n1b,one,2,Sample\n2a,two,1,Sample\n2b,two,2,QC\n"
        "blank,blank,1,Blank\n"
    )
    assert main(["ingest", "data/raw/exports", "--out", "events", "--replace"]) == 0
    out = capsys.readouterr().out
    assert "sample sheet: data/raw/sample_sheet.csv" in out
    assert f"{MSDIALR}: 5 columns -> 2 accessions x 1-2 replicates, 1 QC skipped, 1 blank skipped" in out
    assert sorted(p.stem for p in (tmp_path / "events").glob("*.parquet")) == ["one", "two"]
    assert main(["ingest", "data/raw/exports", "--out", "events2", "--no-sample-sheet"]) == 0
    assert "accessions written: 4" in capsys.readouterr().out


def test_gnps_export_of_29_injections(shared_data, tmp_path, capsys, monkeypatch):
    """6 plants x 4 injections + 5 blanks: 24 accessions and a replicate hint alone, 6 with the sample sheet."""
    export = shared_data / GNPS
    if not export.is_file():
        pytest.skip(f"{export} not available")
    raw = project(tmp_path, export)
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "data/raw/exports", "--out", "events"]) == 0
    out = capsys.readouterr().out
    assert "GnpsTable_1_20198191357_PASEF.txt: 29 columns -> 24 accessions x 1 replicate, 5 blanks skipped" in out
    assert "hint: 24 accessions look like 6 extracts injected 4 times each (Hi01_neg_timsON_PASEF_2_1*" in out
    names = export.read_text().splitlines()[3].split("\t")[24:]
    rows = ["sample,accession,replicate,type"]
    seen: dict[str, int] = {}
    for n in names:
        acc = "blank" if n.startswith("EtOH") else n.split("_")[0]
        seen[acc] = seen.get(acc, 0) + 1
        rows.append(f"{n},{acc},{seen[acc]},{'Blank' if acc == 'blank' else 'Sample'}")
    (raw / "sample_sheet.csv").write_text("\n".join(rows) + "\n")
    assert main(["ingest", "data/raw/exports", "--out", "events", "--replace"]) == 0
    out = capsys.readouterr().out
    assert "accessions written: 6" in out and "hint:" not in out
    assert "GnpsTable_1_20198191357_PASEF.txt: 29 columns -> 6 accessions x 4 replicates, 5 blanks skipped" in out


def test_validate_reads_an_exports_folder_as_ingest_does(test_data, tmp_path, capsys, monkeypatch):
    """`ms2img validate data/raw/exports` checks the accessions `ms2img ingest` would write: the lone export split
    into its sample columns, the sample sheet beside the folder applied (not one accession named after the file)."""
    raw = project(tmp_path, test_data / MSDIALR)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "data/raw/exports", "--report-dir", "r"]) == 0
    assert "(1 file(s), 4 accession(s)," in capsys.readouterr().out
    (raw / "sample_sheet.csv").write_text(
        "sample,accession,replicate,type\n1a,one,1,Sample\n1b,one,2,Sample\n2a,two,1,Sample\n2b,two,2,Sample\n"
        "blank,blank,1,Blank\n"
    )
    assert main(["validate", "data/raw/exports", "--report-dir", "r"]) == 0
    out = capsys.readouterr().out
    assert "(1 file(s), 2 accession(s)," in out and "sample sheet: data/raw/sample_sheet.csv" in out
    assert f"{MSDIALR}: 5 columns -> 2 accessions x 2 replicates, 1 blank skipped" in out


def test_exports_read_one_per_accession_warn_when_their_columns_are_different_classes(test_data, tmp_path, capsys):
    """Two alignment exports in one folder are one accession each; the msdialr export's Class row says its four
    sample columns are two classes (1, 1, 2, 2), so averaging them into one image is flagged, naming the file."""
    exports = tmp_path / "exports"
    exports.mkdir()
    for name in ("batch1.txt", "batch2.txt"):
        shutil.copy(test_data / MSDIALR, exports / name)
    assert main(["ingest", str(exports), "--out", str(tmp_path / "events")]) == 0
    out = capsys.readouterr().out
    assert "batch1.txt: 5 columns -> 1 accession x 4 replicates" in out
    assert "warning: accession 'batch1' (batch1.txt) averages 4 sample columns of 2 classes (1 x2, 2 x2)" in out
    assert out.count("warning: accession") == 2
    same = manifest([("1a", "one", "1", "Sample"), ("1b", "one", "2", "Sample")]).assign(**{"class": ["1", "1"]})
    assert mixed_class_warnings(same, ("Sample",)) == []


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("case_study_bioactivity.csv", "a FERMO activity table (sample_name, quant_data): it goes to `ms2img explain"),
        ("case_study_group_metadata.csv", "a sample metadata table (FERMO groups or GNPS/FBMN ATTRIBUTE_ columns)"),
        ("bioactivity_gnps_metadata.tsv", "a sample metadata table (FERMO groups or GNPS/FBMN ATTRIBUTE_ columns)"),
    ],
)
def test_side_tables_in_the_exports_folder_are_named_for_what_they_are(test_data, tmp_path, capsys, name, said):
    """A lab copies everything FERMO or GNPS gave it into exports/: the activity and metadata tables are not read as
    quant tables (which failed with 'no MGF found'). In a folder an activity table is skipped, named with what it is
    and where it goes; a lone sample metadata table is used as --metadata would be (FERMO's marks its blank), unless
    a sample sheet decides; named as an input, either is refused with the same words."""
    exports = tmp_path / "exports"
    exports.mkdir()
    for f in ("case_study_peak_table_quant_full.csv", "case_study_MSMS.mgf", name):
        shutil.copy(test_data / f, exports)
    assert main(["ingest", str(exports), "--out", str(tmp_path / "events")]) == 0
    out = capsys.readouterr().out
    if "metadata" in said:
        assert f"metadata: {exports / name} (found among the inputs" in out
        if name.startswith("case_study"):
            assert "samples: 1 Blank, 10 Sample" in out and "accessions written: 10" in out
        sheet = tmp_path / "sheet.csv"
        sheet.write_text("sample,accession\n5434_5433_mod.mzXML,A\n")
        assert main(["ingest", str(exports), "--out", str(tmp_path / "ev3"), "--sample-sheet", str(sheet)]) == 0
        out = capsys.readouterr().out
    assert f"skipped: {name} ({said}" in out and "accessions written: 11" in out
    assert main(["ingest", str(exports / name), "--out", str(tmp_path / "events2")]) == 2
    err = capsys.readouterr().err
    assert f"{name}, line 1: {said}" in err and "not LC-MS/MS data" in err and not (tmp_path / "events2").exists()


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("assays.csv", "accession,DPPH\n1a,3\n", "an assay table: it goes beside the exports folder, as data/raw/"),
        ("sample_sheet.csv", "sample,accession\n1a,A\n", "a sample sheet: it goes beside the exports folder, as"),
        (
            "request.csv",
            "accession,precursor_mz,precursor_intensity,rt_min,msms\nS1,300.1,1000,2.5,150.1:100\n",
            "a serving request (`ms2img request`): it goes to a served model, not into training",
        ),
    ],
)
def test_ms2img_own_tables_in_the_exports_folder_are_skipped_and_named(test_data, tmp_path, capsys, name, text, said):
    """ms2img's assays.csv, sample sheet or serving request dropped among the exports was read as an MZmine quant table
    ("which MGF holds this quant table's spectra?"); a request was then called an assay table."""
    exports = tmp_path / "exports"
    exports.mkdir()
    shutil.copy(test_data / MSDIALR, exports)
    (exports / name).write_text(text)
    assert main(["ingest", str(exports), "--out", str(tmp_path / "events")]) == 0
    out = capsys.readouterr().out
    assert f"skipped: {name} ({said}" in out and "accessions written: 4" in out


def test_metadata_that_leaves_samples_out_is_reported_and_an_activity_file_is_refused(test_data, tmp_path, capsys):
    """FERMO's group table minus its blank row: the blank would train as a sample, and ingest says how many input
    samples the table does not list; FERMO's activity file given as --metadata is named for what it is."""
    quant, mgf = test_data / "case_study_peak_table_quant_full.csv", test_data / "case_study_MSMS.mgf"
    groups = (test_data / "case_study_group_metadata.csv").read_text().splitlines()
    partial = tmp_path / "groups.csv"
    partial.write_text("\n".join(line for line in groups if "BLANK" not in line) + "\n")
    args = ["ingest", str(quant), "--mgf", str(mgf), "--out", str(tmp_path / "events")]
    assert main([*args, "--metadata", str(partial)]) == 0
    said = "warning: input samples the sample sheet or metadata does not list (kept as the input says: own accession"
    assert f"{said}, type): 1" in capsys.readouterr().out
    assert main([*args, "--metadata", str(test_data / "case_study_bioactivity.csv")]) == 2
    assert "case_study_bioactivity.csv, line 1: a FERMO activity table" in capsys.readouterr().err


def test_a_spectral_library_beside_the_quant_table_is_not_taken_for_its_spectra(test_data, tmp_path, capsys):
    """FERMO's download holds the quant table, its MGF and a GNPS library MGF (reference spectra with NAME and SMILES):
    the library is not a candidate for the table's spectra, so the pair is found without --mgf."""
    exports = tmp_path / "exports"
    exports.mkdir()
    for f in ("case_study_peak_table_quant_full.csv", "case_study_MSMS.mgf"):
        shutil.copy(test_data / f, exports)
    (exports / "case_study_spectral_library.mgf").write_text(  # its first spectrum's header, abridged
        "BEGIN IONS\nPEPMASS=1649.45\nCHARGE=1\nMSLEVEL=2\nIONMODE=Positive\nORGANISM=GNPS-LIBRARY\n"
        "NAME=Siomycin_A/Sporangiomycin M+H\nSMILES=O=C(C)N\nSCANS=1\n1500.2 100\n825.1 40\nEND IONS\n"
    )
    assert main(["ingest", str(exports), "--out", str(tmp_path / "events")]) == 0
    out = capsys.readouterr().out
    assert "accessions written: 11" in out
    assert "skipped: case_study_spectral_library.mgf (a spectral library (reference spectra): it goes to" in out
    (exports / "second.mgf").write_text((test_data / "case_study_MSMS.mgf").read_text())
    assert main(["ingest", str(exports), "--out", str(tmp_path / "events2")]) == 2  # two feature MGFs: which one?
    assert "2 MGFs given or found (case_study_MSMS.mgf, second.mgf), none named like it" in capsys.readouterr().err


def test_an_mgf_with_inputs_that_carry_their_own_spectra_is_refused(test_data, tmp_path, capsys):
    """--mgf beside an MS-DIAL export was ignored without a word; it pairs only with a quant table."""
    args = ["ingest", str(test_data / MSDIALR), "--mgf", str(test_data / "case_study_MSMS.mgf")]
    assert main([*args, "--out", str(tmp_path / "events")]) == 2
    assert "an MGF pairs with a quant table (MZmine / FBMN CSV) and the inputs hold none" in capsys.readouterr().err


def test_an_input_whose_every_sample_is_a_blank_is_described_not_a_traceback(test_data, tmp_path, capsys):
    """A blank mzML run beside a sample run: the blank file becomes no accession, and the printout says so."""
    blank, sample = test_data / "171103_PMA_TK_QC_04-4to5min.mzML", test_data / "testdata.mzml"
    assert describe_sources(manifest([("b", "b", "1", "Blank")]), ("Sample",)) == [
        "table.txt: 1 column -> 0 accessions, 1 blank skipped"
    ]
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"sample,accession,type\n{blank.name},B,blank\n{sample.name},S,\n")
    assert main(["ingest", str(blank), str(sample), "--out", str(tmp_path / "ev"), "--sample-sheet", str(sheet)]) == 0
    said = f"{blank.name}, {sample.name}: 2 files -> 1 accession x 1 replicate, 1 blank skipped"
    assert said in capsys.readouterr().out


def test_gnps_metadata_names_with_mzml_extensions_match_and_an_empty_type_keeps_the_export_blanks(
    test_data, tmp_path, capsys
):
    """GNPS metadata lists `X.mzML` for the export's column `X`: every row matches (no "rows matching no input"),
    and an empty SampleType cell keeps the export's own File type (the blank is not trained)."""
    meta = tmp_path / "meta.tsv"
    meta.write_text("filename\tATTRIBUTE_SampleType\n1a.mzML\tsample\n1b.mzML\t\n2a.mzML\t\n2b.mzML\t\nblank.mzML\t\n")
    assert main(["ingest", str(test_data / MSDIALR), "--out", str(tmp_path / "ev"), "--metadata", str(meta)]) == 0
    out = capsys.readouterr().out
    assert "matching no input" not in out
    assert f"{MSDIALR}: 5 columns -> 4 accessions x 1 replicate, 1 blank skipped" in out


def test_a_sample_sheet_with_old_mac_line_ends_reads_as_written(test_data, tmp_path, capsys):
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"sample,accession\r1a,A\r1b,A\r")
    assert main(["ingest", str(test_data / MSDIALR), "--out", str(tmp_path / "ev"), "--sample-sheet", str(sheet)]) == 0
    assert "5 columns -> 3 accessions" in capsys.readouterr().out  # 1a and 1b: two injections of A


def test_validate_prints_what_ingest_counted(test_data, tmp_path, capsys, monkeypatch):
    """A sheet that makes the export's blank a sample: validate of the export says so, as ingest does."""
    raw = project(tmp_path, test_data / MSDIALR)
    monkeypatch.chdir(tmp_path)
    (raw / "sample_sheet.csv").write_text("sample,accession,type\nblank,blank,Sample\n")
    assert main(["validate", "data/raw/exports", "--report-dir", "r"]) == 0
    out = capsys.readouterr().out
    assert "warning: sample columns whose File type the sample sheet or metadata changes (its type is used): 1" in out


def test_a_lone_export_folder_skips_the_files_beside_it_and_names_what_it_cannot_read(test_data, tmp_path, capsys):
    """A lab's folder: one MS-DIAL export (split into its samples), its GNPS-style MGF (the export carries its own
    MS/MS) and an activity table are read or skipped, each named; a folder of libraries only says what it holds; a
    named MSP library or a lone MGF is refused naming the file."""
    folder = tmp_path / "lab"
    folder.mkdir()
    for name in (MSDIALR, "bioactivity_msms.mgf", "case_study_bioactivity.csv"):
        shutil.copy(test_data / name, folder / name)
    assert main(["ingest", str(folder), "--out", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert f"{MSDIALR}: 5 columns -> 4 accessions x 1 replicate, 1 blank skipped" in out
    assert "skipped: bioactivity_msms.mgf (an MGF that no quant table among the inputs pairs with" in out
    assert "skipped: case_study_bioactivity.csv (a FERMO activity table" in out
    libraries = tmp_path / "libs"
    libraries.mkdir()
    shutil.copy(test_data / "case_study_MSMS.mgf", libraries / "x.mgf")
    assert main(["ingest", str(libraries), "--out", str(tmp_path / "ev2")]) == 2
    assert "x.mgf, line 1: an MGF that no quant table among the inputs pairs with" in capsys.readouterr().err
    msp = Path(__file__).resolve().parents[2] / "ms2img" / "data" / "PhenolicsDB_pos.msp"
    assert main(["validate", str(msp), "--report-dir", str(tmp_path / "r")]) == 2
    assert "PhenolicsDB_pos.msp, line 1: a spectral library (MSP, reference spectra)" in capsys.readouterr().err


def test_validating_a_lab_export_in_a_project_leaves_the_pipeline_report_alone(test_data, tmp_path, monkeypatch):
    project(tmp_path, test_data / MSDIALR)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "validation.json").write_text("{}")  # the pipeline's, a dependency of every train stage
    assert main(["validate", "data/raw/exports"]) == 0
    assert (tmp_path / "reports" / "validation.json").read_text() == "{}"
    assert (tmp_path / "validation" / "exports" / "validation.html").is_file()


def test_fermo_activity_is_pointed_to_where_it_goes_from_assays_out_and_validate(test_data, tmp_path, capsys):
    exports = tmp_path / "fermo"
    exports.mkdir()
    for f in ("case_study_peak_table_quant_full.csv", "case_study_MSMS.mgf", "case_study_bioactivity.csv"):
        shutil.copy(test_data / f, exports)
    args = ["ingest", str(exports), "--out", str(tmp_path / "ev"), "--assays-out", str(tmp_path / "a.csv")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "case_study_bioactivity.csv is FERMO's activity table, which lists the active samples only" in err
    assert main(["ingest", str(exports), "--out", str(tmp_path / "ev")]) == 0
    capsys.readouterr()
    activity = exports / "case_study_bioactivity.csv"
    assert main(["validate", str(tmp_path / "ev"), "--assays", str(activity), "--report-dir", str(tmp_path / "r")]) == 2
    said = "case_study_bioactivity.csv, line 1: a FERMO activity table (sample_name, quant_data)"
    assert said in capsys.readouterr().err


def test_files_named_and_found_in_a_named_folder_are_read_once(test_data, tmp_path, capsys):
    """A lab names a folder and a file in it (or the MGF and metadata table it holds): each is read once, and what is
    used is never also listed as skipped; --no-sample-sheet keeps a metadata table in the folder unused."""
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(test_data / MSDIALR, lone)
    assert main(["ingest", str(lone), str(lone / MSDIALR), "--out", str(tmp_path / "e1")]) == 0
    assert f"{MSDIALR}: 5 columns -> 4 accessions x 1 replicate" in capsys.readouterr().out
    fermo = tmp_path / "fermo"
    fermo.mkdir()
    for f in ("case_study_peak_table_quant_full.csv", "case_study_MSMS.mgf", "case_study_group_metadata.csv"):
        shutil.copy(test_data / f, fermo)
    mgf, meta = (fermo / "case_study_MSMS.mgf").resolve(), fermo / "case_study_group_metadata.csv"
    args = ["ingest", str(fermo), "--out", str(tmp_path / "e2"), "--mgf", str(mgf), "--metadata", str(meta)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "skipped:" not in out and "samples: 1 Blank, 10 Sample" in out
    assert main(["ingest", str(fermo), "--out", str(tmp_path / "e3"), "--no-sample-sheet"]) == 0
    out = capsys.readouterr().out
    assert "samples: 11 Sample" in out and "skipped: case_study_group_metadata.csv" in out


def test_a_parent_folder_names_its_subfolders_that_hold_exports(test_data, tmp_path, capsys):
    """A lab points validate at the folder of its projects (real ../shared/data did this): the error names the
    subfolders that hold inputs, since folders are not searched recursively."""
    for name in ("run_a", "run_b"):
        (tmp_path / "projects" / name).mkdir(parents=True)
        shutil.copy(test_data / MSDIALR, tmp_path / "projects" / name)
    (tmp_path / "projects" / "notes").mkdir()
    assert main(["validate", str(tmp_path / "projects"), "--report-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "folder holds no" in err and "its subfolders do: run_a/, run_b/ (folders are not searched" in err
    assert "notes/" not in err


def test_training_repeats_the_replicate_hint_where_the_scores_are_made(tmp_path):
    """Without a sample sheet, six extracts injected four times train as 24 "extracts"; a flow run hid ingest's hint
    and every family scored AUC 1.000 on near-copies (real GNPS export): training says it again."""
    from flows.pipeline import _is_progress
    from ms2img.training.stage import replicate_warning

    rows = [(f"Hi{e:02d}_neg_{i}", f"Hi{e:02d}_neg_{i}", "1", "Sample") for e in (1, 5, 9, 16) for i in (1, 2, 3, 4)]
    manifest(rows).to_csv(tmp_path / "samples.csv", index=False)
    trained = [r[1] for r in rows]
    warning = replicate_warning(tmp_path, trained)
    assert warning and warning.startswith("16 accessions look like 4 extracts injected 4 times each")
    assert "every score here is optimistic" in warning
    assert replicate_warning(tmp_path, trained[::4]) is None  # only the accessions trained on count: one per extract
    grouped = [(f"Hi{e:02d}_neg_{i}", f"Hi{e:02d}", str(i), "Sample") for e in (1, 5, 9, 16) for i in (1, 2, 3, 4)]
    manifest(grouped).to_csv(tmp_path / "samples.csv", index=False)  # a sample sheet grouped them
    assert replicate_warning(tmp_path, ["Hi01", "Hi05", "Hi09", "Hi16"]) is None
    assert replicate_warning(tmp_path / "none", trained) is None and replicate_warning(None, trained) is None
    assert _is_progress("  hint: 24 accessions look like 6 extracts injected 4 times each (...)")
    assert _is_progress("  warning: accession 'A' averages 2 sample columns of 2 classes")
    # with a sheet, how injections became accessions is the line that says the merge happened
    assert _is_progress("  gnps_quant.csv: 24 columns -> 6 accessions x 4 replicates")
    assert _is_progress("  sample sheet: data/raw/exports/sample_sheet.csv")
    assert not _is_progress("  precursors without MS/MS: 12")
    # render's count of what the image cannot show (FERMO: siomycin A [M+H]+ at m/z 1648, one of the five features
    # that correlate best with activity, lies outside render.x_range) and the inputs ingest set aside
    assert _is_progress("  left out: 1,272 fragment events of precursors outside m/z 100-1500")
    assert _is_progress("  skipped: case_study_bioactivity.csv (a FERMO activity table (sample_name, quant_data): ...)")


def test_a_height_no_detector_reports_fails_at_its_line_in_ingest_and_validate(
    test_data, tmp_path, capsys, monkeypatch
):
    """msdialr's export with one height set to 1e30: ingest accepted it and `ms2img validate` then blamed a deleted
    temporary Parquet file; both now name the export, its line and column, and ingest writes nothing."""
    lines = (test_data / MSDIALR).read_bytes().split(b"\n")
    cells = lines[8].split(b"\t")  # line 9: feature 3; the sample columns start at column 33 (1a, 1b, ...)
    assert cells[0] == b"3" and cells[33] == b"4800"
    cells[33] = b"1e30"
    lines[8] = b"\t".join(cells)
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"\n".join(lines))
    monkeypatch.chdir(tmp_path)
    said = "huge.txt, line 9, column '1b': 1e30 is above 1e+12"
    assert main(["ingest", str(huge), "--out", "events"]) == 2
    assert said in capsys.readouterr().err and not (tmp_path / "events").exists()
    assert main(["validate", str(huge), "--report-dir", "r"]) == 2
    err = capsys.readouterr().err
    assert said in err and "ms2img-validate-" not in err


def test_a_dead_injection_of_the_gnps_export_is_named_with_what_its_extract_kept(shared_data, tmp_path, capsys):
    """Every height of one Hi01 injection zeroed: ingest still writes 6 accessions, and says which injection gave
    no precursor and that Hi01 kept 3 of its 4 replicates (it said nothing, and Hi01 trained on 3)."""
    export = shared_data / GNPS
    if not export.is_file():
        pytest.skip(f"{export} not available")
    lines = export.read_text().split("\n")
    names = lines[3].split("\t")
    dead = names.index("Hi01_neg_timsON_PASEF_2_1_2457")
    for i in range(4, len(lines)):
        if lines[i].strip():
            cells = lines[i].split("\t")
            cells[dead] = "0"
            lines[i] = "\t".join(cells)
    zeroed = tmp_path / "zeroed.txt"
    zeroed.write_text("\n".join(lines))
    rows, seen = ["sample,accession,replicate,type"], {}
    for n in names[24:]:
        acc = "blank" if n.startswith("EtOH") else n.split("_")[0]
        seen[acc] = seen.get(acc, 0) + 1
        rows.append(f"{n},{acc},{seen[acc]},{'Blank' if acc == 'blank' else 'Sample'}")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("\n".join(rows) + "\n")
    assert main(["ingest", str(zeroed), "--out", str(tmp_path / "ev"), "--sample-sheet", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "accessions written: 6" in out
    said = "warning: 1 injection(s) with no detected precursor (with MS/MS), left out: Hi01_neg_timsON_PASEF_2_1_2457"
    assert f"{said} (accession Hi01: 3 of 4 replicates kept)" in out


def test_a_spectral_library_given_as_mgf_is_named_for_what_it_is(test_data, tmp_path, capsys):
    """--mgf with FERMO's GNPS library (reference spectra, SCANS=1 in every block) said `second spectrum for feature
    '1'`; named as an input it is called a spectral library, and so it is now as --mgf."""
    library = tmp_path / "case_study_spectral_library.mgf"
    block = "BEGIN IONS\nPEPMASS=1649.45\nCHARGE=1\nMSLEVEL=2\nNAME=Siomycin_A\nSMILES=O=C(C)N\nSCANS=1\n{}\nEND IONS\n"
    library.write_text(block.format("1500.2 100") + block.format("825.1 40"))
    quant = test_data / "case_study_peak_table_quant_full.csv"
    said = f"{library}, line 1: a spectral library (reference spectra): it goes to `ms2img explain --library FILE`"
    assert main(["ingest", str(quant), "--mgf", str(library), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert said in err and "second spectrum" not in err
    assert main(["ingest", str(quant), str(library), "--out", str(tmp_path / "ev")]) == 2
    assert said in capsys.readouterr().err  # the same words as for an input


def test_the_replicate_hint_says_to_pass_the_project_sheet_that_exists(tmp_path, monkeypatch):
    """An export named by path is read without the project's data/raw/sample_sheet.csv (only a folder picks it up):
    the hint said to create the sheet that was there; it now says to pass it, and to fill it when it lists none."""
    monkeypatch.chdir(tmp_path)
    rows = [(f"Hi{e:02d}_neg_{i}", f"Hi{e:02d}_neg_{i}", "1", "Sample") for e in (1, 5) for i in (1, 2, 3)]
    m = manifest(rows, source="data/raw/exports/table.txt")
    hint = replicate_hint(m, ("Sample",))
    assert hint and hint.endswith("(sample, accession, replicate, type; data/raw/sample_sheet.csv in a project)")
    sheet = tmp_path / "data" / "raw" / "sample_sheet.csv"
    sheet.parent.mkdir(parents=True)
    sheet.write_text("sample,accession,replicate,type\n")  # `ms2img init`'s template
    hint = replicate_hint(m, ("Sample",))
    assert hint and hint.endswith(
        "give each group one accession in data/raw/sample_sheet.csv (sample, accession, replicate, type) and pass it: "
        "--sample-sheet data/raw/sample_sheet.csv"
    )
    sheet.write_text("sample,accession,replicate,type\n" + "".join(f"{s},{s[:4]},{s[-1]},Sample\n" for s, *_ in rows))
    hint = replicate_hint(m, ("Sample",))
    assert hint and hint.endswith(
        "if they are replicates, pass the sample sheet that groups them: --sample-sheet data/raw/sample_sheet.csv"
    )


def test_ingest_polarity_labels_an_mzmine_table_and_refuses_an_export_of_the_other_mode(test_data, tmp_path, capsys):
    """The lab user: a model trained on FERMO's MZmine table had polarity unknown, so serving took a negative-mode
    request. `--polarity` (ingest.polarity) labels the ions an input leaves unknown, and an export that says the
    other mode is refused with one line naming it."""
    import pyarrow.parquet as pq

    args = ["ingest", str(test_data / "case_study_peak_table_quant_full.csv"), "--mgf",
            str(test_data / "case_study_MSMS.mgf")]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "auto")]) == 0
    assert "polarity:" not in capsys.readouterr().out  # the table and its MGF do not say
    assert main([*args, "--out", str(tmp_path / "pos"), "--polarity", "positive"]) == 0
    assert "  polarity: positive" in capsys.readouterr().out
    polarity = {p for f in (tmp_path / "pos").glob("*.parquet") for p in pq.read_table(f, columns=["polarity"])[0]
                .to_pylist()}  # fmt: skip
    assert polarity == {"positive"}
    export = test_data / "MSDIAL_Alignment_result_LC-MS.txt"  # positive ions, as its adducts say
    assert main(["ingest", str(export), "--out", str(tmp_path / "neg"), "--polarity", "negative"]) == 2
    err = capsys.readouterr().err
    assert f"{export.name}: it labels ions positive, but ingest.polarity says negative" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "neg").exists()


def test_training_says_when_the_labels_follow_the_sample_class(test_data, tmp_path, capsys):
    """FERMO: the 4 active extracts are the 4 of strain group S (metadata `attribute`); the lab user's model scored AUC
    1.000 and nothing said it may have learnt the group. Training now says so; a class with both labels clears it."""
    import pandas as pd

    from ms2img.training.stage import class_confound_warning

    exports = tmp_path / "fermo"
    exports.mkdir()
    for f in ("case_study_peak_table_quant_full.csv", "case_study_MSMS.mgf", "case_study_group_metadata.csv"):
        shutil.copy(test_data / f, exports)
    assert main(["ingest", str(exports), "--out", str(tmp_path / "events")]) == 0
    capsys.readouterr()
    active = pd.read_csv(test_data / "case_study_bioactivity.csv")["sample_name"].str.removesuffix(".mzXML")
    samples = pd.read_csv(tmp_path / "events" / "samples.csv", dtype=str)
    trained = samples.loc[samples["type"] == "Sample", "accession"]
    labels = pd.Series(trained.isin(set(active)).astype(int).to_numpy(), index=trained.to_numpy())
    warning = class_confound_warning(tmp_path / "events", labels)
    assert warning and warning.startswith("the labels follow the sample class exactly (")
    assert "S: 4 high" in warning and "C: 3 low" in warning and "cross-validation cannot see it" in warning
    mixed = labels.copy()
    mixed[samples.loc[samples["class"] == "C", "accession"].iloc[0]] = 1  # one C extract active too
    assert class_confound_warning(tmp_path / "events", mixed) is None
    assert class_confound_warning(None, labels) is None
