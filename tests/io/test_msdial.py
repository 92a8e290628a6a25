"""MS-DIAL alignment exports: the two real versions and layout variants."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from io_builders import META, MSDIAL_ROWS, SAMPLES, msdial_lines, write_lines

from ms2img.errors import InputFileError
from ms2img.io.msdial import read_msdial
from ms2img.io.sample_sheet import SHEET_TYPE_WARNING
from ms2img.io.schema import EVENT_COLUMNS

MSDIALR = "MSDIAL_Alignment_result_LC-MS.txt"
GNPS = "gnps_msdial_pasef_arabidopsis/GnpsTable_1_20198191357_PASEF.txt"


@pytest.fixture(scope="module")
def gnps_file(shared_data):
    path = shared_data / GNPS
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def expected_rows(path, skiprows, samples):
    """Fragment rows per sample computed independently with pandas: sum of peaks over detected features."""
    df = pd.read_csv(path, sep="\t", skiprows=skiprows, dtype=str, keep_default_na=False)
    peaks = df["MS/MS spectrum"].map(lambda s: len(s.split()))
    return {s: int(peaks[df[s].astype(float) > 0].sum()) for s in samples}


def test_msdialr_demo_samples_blank_and_summary_columns(test_data):
    result = read_msdial(test_data / MSDIALR)
    m = result.samples
    assert m["sample"].tolist() == ["1a", "1b", "2a", "2b", "blank"]  # the 6 summary columns are ignored
    assert m["type"].tolist() == ["Sample"] * 4 + ["Blank"]
    assert m["class"].tolist() == ["1", "1", "2", "2", "blank"]
    assert m["accession"].tolist() == m["sample"].tolist() and set(m["replicate"]) == {"1"}
    assert (m["source"] == str(test_data / MSDIALR)).all()

    ev = result.events
    assert list(ev.columns) == [*EVENT_COLUMNS, "charge"]  # the optional column readers fill
    counts = ev.groupby("accession").size().to_dict()
    assert counts == expected_rows(test_data / MSDIALR, 4, ["1a", "1b", "2a", "2b", "blank"])
    assert ev["feature_id"].nunique() == 230
    assert set(ev["polarity"]) == {"positive"}
    first = ev[(ev.feature_id == "0")].groupby("accession")["precursor_intensity"].first()
    assert first["1a"] == 558 and first["blank"] == 33
    assert ev.loc[ev.feature_id == "0", "precursor_mz"].iloc[0] == pytest.approx(73.06504)
    assert ev.loc[ev.feature_id == "0", "rt_min"].iloc[0] == pytest.approx(4.613)
    assert ev["fragment_intensity"].min() >= 0 and ev["fragment_mz"].min() > 0


def test_gnps_export_24_samples_in_two_classes_and_5_blanks(gnps_file):
    t0 = time.perf_counter()
    result = read_msdial(gnps_file)
    elapsed = time.perf_counter() - t0
    m = result.samples
    samples = m[m["type"] == "Sample"]
    assert len(samples) == 24 and (m["type"] == "Blank").sum() == 5 and len(m) == 29
    assert samples["class"].value_counts().to_dict() == {
        "Plant_ArabidopsisThaliana_WT_ControlTemp_Ctr": 12,
        "Plant_ArabidopsisThaliana_WT_HighTemp_Ctr": 12,
    }
    ev = result.events
    assert set(ev["polarity"]) == {"negative"}
    assert ev["feature_id"].nunique() == 842
    assert ev.groupby("accession").size().to_dict() == expected_rows(gnps_file, 3, m["sample"].tolist())
    assert elapsed < 2.0, f"reading the GNPS export took {elapsed:.2f} s"


def test_gnps_sample_sheet_groups_injections_into_accessions(gnps_file, tmp_path):
    names = read_msdial(gnps_file).samples["sample"]
    sheet = pd.DataFrame(
        {
            "sample": names,
            "accession": names.str.split("_").str[0],
            "replicate": names.str.rsplit("_", n=1).str[1],
            "type": np.where(names.str.startswith("EtOH"), "Blank", "Sample"),
            "class": "",
        }
    )
    result = read_msdial(gnps_file, sample_sheet=sheet)
    samples = result.samples[result.samples["type"] == "Sample"]
    assert sorted(samples["accession"].unique()) == ["Hi01", "Hi05", "Hi09", "Hi16", "Hi20", "Hi24"]
    assert samples.groupby("accession").size().eq(4).all()
    assert samples["class"].str.startswith("Plant_").all()  # the file's Class row is kept when the sheet has none
    assert result.events.groupby("accession")["replicate"].nunique()["Hi01"] == 4


def test_small_export_zero_height_and_empty_msms(msdial_file):
    result = read_msdial(msdial_file)
    assert result.samples["sample"].tolist() == ["s1", "s2", "qc", "blank"]  # "A" (type NA) ignored
    assert result.samples["type"].tolist() == ["Sample", "Sample", "QC", "Blank"]
    assert result.precursors_without_msms == 1
    ev = result.events
    assert "2" not in set(ev["feature_id"])  # empty MS/MS cell -> no rows
    assert set(ev.loc[ev.accession == "s2", "feature_id"]) == {"3"}  # height 0 -> not detected
    s1 = ev[ev.accession == "s1"]
    assert s1["fragment_mz"].tolist() == [50.1, 80.2, 100.5, 150.5, 200.5]
    assert s1["precursor_intensity"].tolist() == [1000, 1000, 500, 500, 500]
    assert s1["polarity"].tolist() == ["positive"] * 5


def test_accession_from_file(msdial_file):
    result = read_msdial(msdial_file, accession_from="file")
    assert set(result.samples["accession"]) == {"export"}
    assert result.samples["replicate"].tolist() == ["s1", "s2", "qc", "blank"]
    assert set(result.events["accession"]) == {"export"}


def test_type_row_and_adduct_ion_name_of_other_versions(tmp_path):
    meta = {k: v for k, v in META.items() if k != "Batch ID"}
    lines = msdial_lines(meta=meta, type_label="Type", adduct_column="Adduct ion name")
    result = read_msdial(write_lines(tmp_path / "v.txt", lines, newline="\r\n"))
    assert result.samples["type"].tolist() == ["Sample", "Sample", "QC", "Blank"]
    assert set(result.events["polarity"]) == {"positive"}


def test_no_metadata_rows_needs_a_sample_sheet(tmp_path):
    path = write_lines(tmp_path / "plain.txt", msdial_lines(meta={}))
    with pytest.raises(InputFileError, match="sample sheet") as err:
        read_msdial(path)
    assert err.value.line == 1
    sheet = pd.DataFrame(
        {
            "sample": ["s1", "s2"],
            "accession": ["X", "X"],
            "replicate": ["a", "b"],
            "type": ["Sample", "Sample"],
            "class": ["", ""],
        }
    )
    result = read_msdial(path, sample_sheet=sheet)
    assert result.samples["sample"].tolist() == ["s1", "s2"]
    assert set(result.events["accession"]) == {"X"}


def test_summary_columns_with_sample_names_are_still_ignored(tmp_path):
    # a summary column named like a sample ("s1") must not clash: selection is by type, not by name
    samples = SAMPLES[:-1] + ["s1"]
    path = write_lines(tmp_path / "dup_summary.txt", msdial_lines(samples=samples))
    assert read_msdial(path).samples["sample"].tolist() == ["s1", "s2", "qc", "blank"]


def test_unknown_accession_mode_is_rejected(msdial_file):
    with pytest.raises(ValueError, match="accession_from"):
        read_msdial(msdial_file, accession_from="folder")


def test_rows_match_builder(msdial_file):
    # guard for the builder the bad-input tests edit: line 6 is feature 1
    lines = msdial_file.read_text().splitlines()
    assert lines[5].startswith("1\t") and len(lines) == 5 + len(MSDIAL_ROWS)


def test_windows_1252_export_is_read(tmp_path):
    lines = msdial_lines()
    lines[5] = lines[5].replace("Unknown", "Querc\u00e9tin 50 \u00b5M")  # bytes that are not UTF-8
    path = tmp_path / "win.txt"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    assert read_msdial(path).samples["sample"].tolist() == ["s1", "s2", "qc", "blank"]


def test_sample_sheet_path_is_accepted(msdial_file, tmp_path):
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,replicate\ns1,X,a\ns2,X,b\n")
    result = read_msdial(msdial_file, sample_sheet=sheet)
    assert result.samples["accession"].tolist() == ["X", "X", "qc", "blank"]


def test_sheet_without_types_keeps_the_export_file_types_and_a_changed_type_is_counted(tmp_path):
    path = write_lines(tmp_path / "export.txt", msdial_lines())
    untyped = tmp_path / "untyped.csv"
    untyped.write_text("sample,accession\ns1,X\ns2,Y\nblank,B\n")
    result = read_msdial(path, sample_sheet=untyped)
    assert result.samples["type"].tolist() == ["Sample", "Sample", "QC", "Blank"]  # the blank stays a blank
    assert result.warnings == {}
    typed = tmp_path / "typed.csv"
    typed.write_text("sample,accession,type\ns1,X,Sample\nblank,B,Sample\n")
    result = read_msdial(path, sample_sheet=typed)
    assert result.samples["type"].tolist() == ["Sample", "Sample", "QC", "Sample"]  # the sheet decides
    assert result.warnings == {SHEET_TYPE_WARNING: 1}


@pytest.mark.parametrize("name", ["Average Mz", "MS/MS spectrum"])
def test_duplicated_header_column_is_rejected(tmp_path, name):
    lines = msdial_lines()
    h = len(META)
    header = lines[h].split("\t")
    at = header.index(name)
    lines = [
        "\t".join(f[: at + 1] + f[at : at + 1] + f[at + 1 :]) for f in (ln.split("\t") for ln in lines)
    ]  # the column twice, metadata rows padded alike
    path = write_lines(tmp_path / "dup.txt", lines)
    with pytest.raises(InputFileError, match=rf"dup.txt, line {h + 1}, column '{name}': .*duplicate"):
        read_msdial(path)


def test_duplicate_summary_column_names_are_still_fine(test_data):
    assert len(read_msdial(test_data / "MSDIAL_Alignment_result_LC-MS.txt").samples) == 5


def test_unknown_sample_type_is_refused_naming_cell_unless_a_sample_sheet_types_the_column(tmp_path):
    """A misspelt File type would silently drop a sample column: refused with file, line, column and value; a sample
    sheet that gives the column a type decides instead."""
    meta = {**META, "File type": ["Sampel", "Sample", "QC", "Blank", "NA"]}
    path = write_lines(tmp_path / "typo.txt", msdial_lines(meta=meta))
    with pytest.raises(InputFileError, match=r"typo.txt, line 2, column 's1': unknown sample type 'Sampel'"):
        read_msdial(path)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,type\ns1,s1,Sample\n")
    result = read_msdial(path, sample_sheet=sheet)
    assert result.samples["sample"].tolist() == ["s1", "s2", "qc", "blank"]
    assert result.samples.set_index("sample").loc["s1", "type"] == "Sample" and result.warnings == {}


@pytest.mark.parametrize("cell", ["", "Standard"])
def test_a_sample_column_without_a_type_is_warned_about_and_a_sheet_types_it(tmp_path, caplog, cell):
    """An empty File type cell dropped a sample without a word, even when the sample sheet listed it as a Sample (and
    then warned that the sheet's row matched no input); a Standard column is skipped unless the sheet types it."""
    meta = {**META, "File type": [cell, "Sample", "QC", "Blank", "NA"]}
    path = write_lines(tmp_path / "untyped.txt", msdial_lines(meta=meta))
    result = read_msdial(path)
    assert result.samples["sample"].tolist() == ["s2", "qc", "blank"]
    warned = [r.getMessage() for r in caplog.records if "empty File type cell" in r.getMessage()]
    expected = f"{path}: 1 column(s) with an empty File type cell (line 2) skipped: s1; give them a type in the export"
    assert (warned == [f"{expected} or a sample sheet"]) == (cell == "")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,type\ns1,s1,Sample\n")
    typed = read_msdial(path, sample_sheet=sheet)
    assert typed.samples["sample"].tolist() == ["s1", "s2", "qc", "blank"]
    assert typed.samples.set_index("sample").loc["s1", "type"] == "Sample"
    assert (typed.events["accession"] == "s1").any()


@pytest.mark.parametrize("blank", ["", "\t" * 10, " ", "  \t "])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_blank_body_lines_are_skipped_and_later_errors_name_the_editor_line(tmp_path, blank, newline):
    lines = msdial_lines()
    plain = read_msdial(write_lines(tmp_path / "plain.txt", lines)).events
    lines.insert(6, blank)  # between features 1 and 2 (line 7 of the file)
    result = read_msdial(write_lines(tmp_path / "blank.txt", lines, newline=newline))
    pd.testing.assert_frame_equal(result.events, plain)
    lines[8] = lines[8].replace("400.3", "4o0.3")  # feature 3, now on line 9
    with pytest.raises(InputFileError, match=r"line 9.*Average Mz.*4o0\.3"):
        read_msdial(write_lines(tmp_path / "bad.txt", lines, newline=newline))


def test_heights_read_in_one_cast_still_name_the_bad_cell_and_count_markers(tmp_path):
    lines = msdial_lines()
    lines[6] = lines[6].replace("\t2500\t0\t", "\t25oo\t0\t")  # feature 2, column qc (line 7)
    with pytest.raises(InputFileError, match=r"line 7.*'qc'.*25oo"):
        read_msdial(write_lines(tmp_path / "bad.txt", lines))
    lines = msdial_lines()
    lines[5] = lines[5].replace("\t0\t800\t", "\tNA\t800\t")  # s2 of feature 1
    lines[7] = lines[7].replace("\t400\t", "\tnan\t")  # blank of feature 3
    result = read_msdial(write_lines(tmp_path / "na.txt", lines))
    assert sum(result.warnings.values()) == 2
    plain = read_msdial(write_lines(tmp_path / "plain.txt", msdial_lines())).events
    assert len(result.events) == len(plain) - 3  # the blank's 3 fragments of feature 3 (s2 of feature 1 was 0)


@pytest.mark.parametrize("shift", [1, -1])
def test_metadata_rows_shifted_by_a_cell_are_refused_not_read_against_the_neighbour(tmp_path, shift):
    """Metadata rows moved one cell right (or left) of the header keep their width, but would give each sample its
    neighbour's File type and Class (the blank trained as a sample, a sample dropped as the label): refused,
    naming the line and the column the label is in."""
    lines = msdial_lines()
    for i in range(len(META)):
        cells = lines[i].split("\t")
        lines[i] = "\t".join([""] + cells[:-1] if shift > 0 else cells[1:] + [""])
    path = write_lines(tmp_path / "shifted.txt", lines)
    with pytest.raises(InputFileError, match=rf"shifted.txt, line 1: metadata label .Class. .*shifted by \{shift:+d}"):
        read_msdial(path)


def test_an_export_cut_short_inside_its_header_names_the_header_line(tmp_path):
    """It blamed line 1: 'metadata row has 53 fields, the header (line 4) has 49'."""
    lines = msdial_lines()
    header = lines[4].split("\t")
    path = tmp_path / "cut.txt"
    path.write_text("\n".join([*lines[:4], "\t".join(header[: len(header) - 3])]), encoding="utf-8")
    with pytest.raises(InputFileError, match=r"cut\.txt, line 5: .*the file ends in its header \(line 5\), cut short"):
        read_msdial(path)
