"""``ingest`` and ``ms2img ingest``: dispatch, outputs, manifest, blank subtraction, stale files, CLI."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from io_builders import MSDIAL_ROWS, msdial_lines, write_lines

from ms2img.cli import main
from ms2img.errors import ConfigError, InputFileError
from ms2img.io.assay_table import read_csv_strings
from ms2img.io.ingest import MANIFEST, ingest
from ms2img.io.inputs import plan
from ms2img.io.msdial import read_msdial
from ms2img.io.raw import no_intensity
from ms2img.io.schema import EVENT_COLUMNS, SAMPLE_COLUMNS, read_events

MSDIALR = "MSDIAL_Alignment_result_LC-MS.txt"


def sort(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["accession", "replicate", "feature_id", "fragment_mz"]).reset_index(drop=True)


def test_round_trip_msdial(test_data, tmp_path):
    out = tmp_path / "events"
    summary = ingest([test_data / MSDIALR], out)
    assert sorted(p.name for p in out.iterdir()) == ["1a.parquet", "1b.parquet", "2a.parquet", "2b.parquet", MANIFEST]
    expected = read_msdial(test_data / MSDIALR).events
    expected = expected[expected["accession"] != "blank"]
    back = read_events(out, optional=True)
    pd.testing.assert_frame_equal(sort(back), sort(expected))
    assert list(read_events(out).columns) == EVENT_COLUMNS  # downstream sees the canonical columns only
    assert summary.accessions == 4 and summary.events == len(expected)
    assert summary.samples == {"Sample": 4, "Blank": 1}
    manifest = pd.read_csv(out / MANIFEST, dtype=str, keep_default_na=False)
    assert list(manifest.columns) == SAMPLE_COLUMNS and len(manifest) == 5  # blanks are listed, not written
    assert "accessions written: 4" in summary.format()


def test_fermo_pair_with_explicit_mgf_and_sheet(test_data, tmp_path):
    groups = pd.read_csv(test_data / "case_study_group_metadata.csv")
    sheet = tmp_path / "sheet.csv"
    pd.DataFrame(
        {
            "sample": groups["sample_name"],
            "accession": groups["sample_name"].str.replace(".mzXML", "", regex=False),
            "type": groups["attribute"].map(lambda a: "Blank" if a == "BLANK" else "Sample"),
            "class": groups["attribute"],
        }
    ).to_csv(sheet, index=False)
    out = tmp_path / "events"
    summary = ingest(
        [test_data / "case_study_peak_table_quant_full.csv"],
        out,
        sample_sheet=sheet,
        mgf=test_data / "case_study_MSMS.mgf",
    )
    assert summary.accessions == 10 and summary.samples == {"Sample": 10, "Blank": 1}
    assert summary.precursors_without_msms == 2
    assert not (out / "D3_H3_mod.parquet").exists()
    assert read_events(out)["feature_id"].nunique() <= 141

    sub = ingest(
        [test_data / "case_study_peak_table_quant_full.csv"],
        tmp_path / "sub",
        sample_sheet=sheet,
        mgf=test_data / "case_study_MSMS.mgf",
        blank_subtraction=True,
    )
    assert 0 < sub.events < summary.events and sub.blank_removed > 0


def test_quant_pairs_with_mgf_of_same_stem(quant_pair, tmp_path):
    quant, _ = quant_pair
    summary = ingest([quant], tmp_path / "out")
    assert summary.accessions == 2
    assert [j.mgf.name for j in plan([quant])] == ["quant.mgf"]


def test_raw_files_and_content_sniffing(test_data, mzml_file, tmp_path):
    disguised = tmp_path / "looks_like_text.txt"
    shutil.copy(test_data / "testdata.mzml", disguised)  # sniffed by content, not extension
    summary = ingest([mzml_file, disguised], tmp_path / "out")
    assert summary.accessions == 2 and summary.warnings == {no_intensity(mzml_file): 1}
    assert sorted(read_events(tmp_path / "out")["accession"].unique()) == ["looks_like_text", "run"]


def test_folder_of_per_accession_exports(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    for acc in ("ACC1", "ACC2"):
        write_lines(folder / f"{acc}.txt", msdial_lines())
    out = tmp_path / "events"
    summary = ingest([folder], out, sample_types=("Sample", "QC"))
    assert sorted(p.name for p in out.glob("*.parquet")) == ["ACC1.parquet", "ACC2.parquet"]
    ev = read_events(out)
    assert sorted(ev["replicate"].unique()) == ["qc", "s1", "s2"]  # blank column never becomes training data
    assert summary.samples == {"Sample": 4, "QC": 2, "Blank": 2}
    manifest = pd.read_csv(out / MANIFEST, dtype=str)
    assert set(manifest.loc[manifest["type"] == "Blank", "accession"]) == {"ACC1", "ACC2"}


def test_single_export_folder_means_file_mode_and_explicit_single_file_column_mode(msdial_file, tmp_path):
    assert plan([msdial_file])[0].accession_from == "column"
    assert plan([msdial_file.parent])[0].accession_from == "file"
    other = write_lines(tmp_path / "other.txt", msdial_lines())
    assert {j.accession_from for j in plan([msdial_file, other])} == {"file"}


def test_blank_subtraction_threshold(msdial_file, tmp_path):
    # feature 1: blank 10, s1 1000 (kept at fold 5 and 100); feature 3: blank 400, s1 500, s2 600 (dropped at 5)
    summary = ingest([msdial_file], tmp_path / "a", blank_subtraction=True, blank_fold=5.0)
    ev = read_events(tmp_path / "a")
    assert set(ev.loc[ev.accession == "s1", "feature_id"]) == {"1"}
    assert "s2" not in set(ev["accession"]) or ev.loc[ev.accession == "s2"].empty
    assert (tmp_path / "a" / "s2.parquet").exists()  # the accession is kept, with no events
    assert summary.blank_removed == 2
    ingest([msdial_file], tmp_path / "b", blank_subtraction=True, blank_fold=1.0)
    ev = read_events(tmp_path / "b")
    assert set(ev.loc[ev.accession == "s1", "feature_id"]) == {"1", "3"}


def test_stale_parquet_removed_only_with_replace(msdial_file, tmp_path):
    out = tmp_path / "events"
    out.mkdir()
    (out / "gone.parquet").write_bytes(b"old")
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"would remove 1 accession\(s\).*\(gone\).*--replace"):
        ingest([msdial_file], out)
    assert sorted(p.name for p in out.iterdir()) == ["gone.parquet", "notes.txt"]
    summary = ingest([msdial_file], out, replace=True)
    assert summary.stale_removed == ["gone.parquet"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "s1.parquet", "s2.parquet", MANIFEST]


def test_same_accession_and_replicate_twice_is_an_error(msdial_file, tmp_path):
    copies = []
    for folder in ("a", "b"):  # two exports of one name: one accession from two files
        (tmp_path / folder).mkdir()
        copies.append(shutil.copy(msdial_file, tmp_path / folder))
    with pytest.raises(InputFileError, match="already used|same accession"):
        ingest(copies, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    summary = ingest([msdial_file, msdial_file], tmp_path / "once")  # one file named twice is read once
    assert summary.files == 1


def test_bad_arguments(msdial_file, tmp_path):
    with pytest.raises(ConfigError):
        ingest([msdial_file], tmp_path / "o", sample_types=("Blank",))
    with pytest.raises(ConfigError):
        ingest([msdial_file], tmp_path / "o", blank_fold=0)
    with pytest.raises(InputFileError, match="not found"):
        ingest([tmp_path / "missing.txt"], tmp_path / "o")
    lone = (
        write_lines(tmp_path / "lone" / "t.csv", ["id,mz,rt,datafile:a:height", "1,100,1,5"])
        if (tmp_path / "lone").mkdir() is None
        else None
    )
    with pytest.raises(InputFileError, match=r"which MGF holds this quant table.s spectra\? none found"):
        ingest([lone], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cli_summary_and_error_exit(msdial_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: built-in defaults
    rc = main(["ingest", str(msdial_file), "--out", str(tmp_path / "cli"), "--sample-types", "sample,qc"])
    out = capsys.readouterr().out
    assert rc == 0 and "accessions written: 3" in out
    params = tmp_path / "params.yaml"
    params.write_text("ingest:\n  sample_types: [Sample]\n  blank_subtraction: true\n  blank_fold: 5.0\n")
    rc = main(["ingest", str(msdial_file), "--out", str(tmp_path / "cli2"), "--params", str(params)])
    assert rc == 0 and "removed by blank subtraction: 2" in capsys.readouterr().out
    bad = write_lines(tmp_path / "bad.txt", msdial_lines()[:-1] + ["3\t3.5\t400.3"])
    rc = main(["ingest", str(bad), "--out", str(tmp_path / "cli3")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{bad}, line 8" in err and "Traceback" not in err
    assert not (tmp_path / "cli3").exists()
    with pytest.raises(SystemExit):
        main(["ingest", str(msdial_file)])  # --out is required


def test_synthetic_cohort_if_available(tmp_path):
    synth = pytest.importorskip("ms2img.synth")
    try:
        synth.make_cohort(tmp_path / "cohort", accessions=3, replicates=3, seed=1)
    except Exception as exc:  # noqa: BLE001 - another module's work in progress must not fail the reader tests
        pytest.skip(f"make_cohort unavailable: {exc}")
    out = tmp_path / "events"
    summary = ingest([tmp_path / "cohort" / "exports"], out)
    assert summary.accessions == 3
    ev = read_events(out)
    assert ev.groupby("accession")["replicate"].nunique().eq(3).all()


def test_raw_replicates_merged_into_one_accession_by_sheet(mzml_file, tmp_path):
    second = tmp_path / "run2.mzML"
    shutil.copy(mzml_file, second)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,replicate\nrun.mzML,ACC,r1\nrun2,ACC,r2\n")
    out = tmp_path / "out"
    summary = ingest([mzml_file, second], out, sample_sheet=sheet)
    assert sorted(p.name for p in out.glob("*.parquet")) == ["ACC.parquet"]
    ev = read_events(out)
    assert ev.groupby("replicate").size().to_dict() == {"r1": 6, "r2": 6}
    assert "sample sheet or metadata rows matching no input" not in summary.warnings and not summary.silent_injections
    # a row naming a run that is not among these inputs (a project sheet covers every export; one was ingested by
    # path) is counted in a warning; a row close to an input the sheet leaves unlisted is a typo: its line
    sheet.write_text("sample,accession,replicate\nrun.mzML,ACC,r1\nrun2,ACC,r2\nother_batch.mzML,X,1\n")
    summary = ingest([mzml_file, second], tmp_path / "out2", sample_sheet=sheet)
    assert summary.warnings["sample sheet or metadata rows matching no input"] == 1
    sheet.write_text("sample,accession,replicate\nrun.mzML,ACC,r1\nrun_2,ACC,r2\n")
    with pytest.raises(InputFileError, match=r"sheet\.csv, line 3: sample 'run_2' names no .* closest: 'run2\.mzML'"):
        ingest([mzml_file, second], tmp_path / "out3", sample_sheet=sheet)
    assert not (tmp_path / "out3").exists()


def test_names_spelt_decomposed_by_macos_join_their_composed_spelling(mzml_file, tmp_path):
    """macOS writes file names decomposed ('e' + a combining accent), Excel on Windows composed: the two look identical,
    and the sheet listed none of a Mac's files and 'Café' became two accessions. Names are NFC wherever read."""
    import unicodedata

    composed, decomposed = "Café", unicodedata.normalize("NFD", "Café")
    assert composed != decomposed
    runs = [tmp_path / f"{decomposed}_1.mzML", tmp_path / f"{composed}_2.mzML"]
    for run in runs:
        shutil.copy(mzml_file, run)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"sample,accession,replicate\n{composed}_1.mzML,{composed},1\n{decomposed}_2,{decomposed},2\n")
    summary = ingest(runs, tmp_path / "out", sample_sheet=sheet)
    events = read_events(tmp_path / "out")
    assert set(events["accession"]) == {composed} and set(events["replicate"]) == {"1", "2"}
    assert "sample sheet or metadata rows matching no input" not in summary.warnings
    assays = tmp_path / "assays.csv"
    assays.write_text(f"accession,DPPH\n{decomposed},1.5\n", encoding="utf-8")
    assert list(read_csv_strings(assays)["accession"]) == [composed]


def test_a_sample_sheet_typo_fails_naming_the_sheet_line_and_the_closest_column(msdial_file, tmp_path, capsys):
    """A misspelt sample name left its row unused and the real column an accession of its own (exit 0, a warning);
    the pipeline then failed blaming assays.csv. Blanks and QCs the sheet types still work, and a sheet that lists
    only some columns keeps the others as the input says (README: counted in a warning)."""
    sheet = tmp_path / "sheet.csv"
    good = "sample,accession,replicate,type\ns1,A,1,Sample\ns2,A,2,Sample\nqc,qc,1,QC\nblank,blank,1,Blank\n"
    sheet.write_text(good)
    summary = ingest([msdial_file], tmp_path / "ok", sample_sheet=sheet)
    assert summary.accessions == 1 and not summary.warnings
    sheet.write_text(good.replace("s2,A,2", "s_2,A,2"))
    args = ["ingest", str(msdial_file), "--out", str(tmp_path / "typo"), "--sample-sheet", str(sheet)]
    assert main(args) == 2
    err = capsys.readouterr().err
    said = f"{sheet}, line 3: sample 's_2' names no sample column or file of the inputs; closest: 's2', which the sheet"
    assert said in err and err.count("\n") == 1
    assert not (tmp_path / "typo").exists()
    sheet.write_text(good.replace("blank,blank,1,Blank", "blnak,blank,1,Blank"))  # a blank's row: the same
    with pytest.raises(InputFileError, match=r"line 5: sample 'blnak' .*closest: 'blank'"):
        ingest([msdial_file], tmp_path / "typo2", sample_sheet=sheet)
    sheet.write_text("sample,accession,type\nblank,blank,Blank\n")  # only re-types: the rest keep the export's say
    summary = ingest([msdial_file], tmp_path / "partial", sample_sheet=sheet)
    assert summary.accessions == 2 and summary.warnings == {
        "input samples the sample sheet or metadata does not list (kept as the input says: own accession, type)": 3
    }


def test_sheet_names_differing_from_the_inputs_only_in_case_fail(msdial_file, tmp_path):
    """'S2' for column 's2' is too short for the typo check's similarity (0.5) and left s2 an accession of its own
    with a warning; accession 'a' beside 'A' wrote a.parquet beside A.parquet, one file on macOS and Windows."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,replicate\ns1,A,1\nS2,A,2\n")
    with pytest.raises(InputFileError, match=r"sheet\.csv, line 3: sample 'S2' names no .* closest: 's2'"):
        ingest([msdial_file], tmp_path / "case", sample_sheet=sheet)
    sheet.write_text("sample,accession,replicate\ns1,A,1\ns2,a,1\n")
    with pytest.raises(ConfigError, match=r"accessions 'A' and 'a' would both be written to a\.parquet .*case"):
        ingest([msdial_file], tmp_path / "acc", sample_sheet=sheet)
    assert not (tmp_path / "case").exists() and not (tmp_path / "acc").exists()


def test_an_injection_without_a_detected_precursor_is_named_not_dropped_silently(quant_pair, tmp_path):
    """A dead injection (every height 0) gives no events; it used to vanish and its accession trained on fewer
    replicates than the sheet says. Ingest names it, with what its accession kept, and does not fail."""
    rows = [(*r[:5], r[5], "0", *r[7:]) for r in MSDIAL_ROWS]  # s2: not one precursor detected
    export = write_lines(tmp_path / "dead.txt", msdial_lines(rows=rows))
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,replicate\ns1,A,1\ns2,A,2\nqc,qc,1\nblank,blank,1\n")
    for blank_subtraction in (False, True):  # streamed per sample, and through the events table
        out = tmp_path / f"ev{blank_subtraction}"
        summary = ingest([export], out, sample_sheet=sheet, blank_subtraction=blank_subtraction)
        assert summary.silent_injections == ["s2 (accession A: 1 of 2 replicates kept)"]
        assert set(read_events(out)["replicate"]) == {"1"}
    line = "warning: 1 injection(s) with no detected precursor (with MS/MS), left out: s2 (accession A: 1 of 2 "
    assert line in summary.format()
    quant, mgf = quant_pair  # a quant table: sample b detects feature 2 (no spectrum in the MGF) and feature 3
    sheet.write_text("sample,accession,replicate\na.mzML,X,1\nb.mzML,X,2\n")
    summary = ingest([quant], tmp_path / "q", sample_sheet=sheet, mgf=mgf)
    assert summary.accessions == 1 and summary.silent_injections == []
    quant.write_text(quant.read_text().replace(",600,9", ",0,9"))  # now b detects feature 2 alone
    summary = ingest([quant], tmp_path / "q2", sample_sheet=sheet, mgf=mgf)
    assert summary.silent_injections == ["b.mzML (accession X: 1 of 2 replicates kept)"]


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_out_overlapping_an_input_is_rejected(tmp_path, where):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_lines(folder / "ACC1.txt", msdial_lines())
    inputs, out = {
        "same": ([folder], folder),
        "inside": ([folder], folder / "events"),
        "contains": ([folder / "ACC1.txt"], tmp_path),
    }[where]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=r"^--out .*: .*input"):
        ingest(inputs, out)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_stems_differing_only_in_case_are_one_accession(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_lines(folder / "ACC0001.txt", msdial_lines())
    write_lines(folder / "acc0001.txt", msdial_lines())
    with pytest.raises(InputFileError, match="acc0001.txt: maps to the same accession .*ACC0001.txt"):
        plan([folder])


def test_an_export_cut_inside_its_last_value_is_warned_about(test_data, tmp_path, caplog):
    """MS-DIAL ends every line with a line break: a copy cut inside the last height read 312.125 as 31 and passed."""
    text = (test_data / MSDIALR).read_bytes()
    assert text.endswith(b"\n")
    cut = tmp_path / "in" / MSDIALR
    cut.parent.mkdir()
    cut.write_bytes(text.rstrip(b"\r\n")[:-1])  # the last value loses its last digit
    summary = ingest([cut], tmp_path / "events")
    assert summary.warnings == {"exports ending inside a line (cut short?)": 1}
    lines = text.rstrip(b"\r\n").count(b"\n") + 1
    assert f"{cut}: the file ends inside line {lines} without a line break" in caplog.text
    whole = tmp_path / "whole" / MSDIALR
    whole.parent.mkdir()
    whole.write_bytes(text)
    assert not ingest([whole], tmp_path / "events2").warnings
