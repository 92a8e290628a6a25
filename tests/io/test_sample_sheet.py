"""Sample sheet reading and validation."""

from __future__ import annotations

import gzip

import pytest

from ms2img.errors import InputFileError
from ms2img.io.sample_sheet import (
    SHEET_COLUMNS,
    index_sheet,
    read_sample_sheet,
    resolve,
    strip_raw_extension,
    type_changes,
)


def write(tmp_path, text, name="sheet.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_reads_and_fills_defaults(tmp_path):
    path = write(tmp_path, "sample,accession,type\nHi01_a,Hi01,sample\nHi01_b,Hi01,\nEtOH,blank1,BLANK\n")
    sheet = read_sample_sheet(path)
    assert list(sheet.columns) == SHEET_COLUMNS
    assert sheet["replicate"].tolist() == ["Hi01_a", "Hi01_b", "EtOH"]  # defaults to the sample name
    assert sheet["type"].tolist() == ["Sample", "", "Blank"]  # "": the input's own type decides
    assert sheet["class"].tolist() == ["", "", ""]
    index = index_sheet(sheet)
    assert resolve(index, "Hi01_b", "d", "1", "Blank")["type"] == "Blank"  # an export's own File type is kept
    assert resolve(index, "Hi01_b", "d", "1", "Sample")["type"] == "Sample"  # an input without one: Sample
    assert type_changes(index, {"Hi01_a": "Blank", "Hi01_b": "Blank", "EtOH": "Blank"}) == ["Hi01_a: Blank -> Sample"]


def test_column_order_and_case_do_not_matter(tmp_path):
    path = write(tmp_path, "Class,Type,Replicate,Accession,Sample\nS,QC,r1,A,a.mzML\n")
    sheet = read_sample_sheet(path)
    assert sheet.iloc[0].to_dict() == {
        "sample": "a.mzML",
        "accession": "A",
        "replicate": "r1",
        "type": "QC",
        "class": "S",
    }


def test_resolve_matches_with_or_without_raw_extension(tmp_path):
    sheet = read_sample_sheet(write(tmp_path, "sample,accession,replicate\nx_01,X,1\ny_01.mzXML,Y,2\n"))
    index = index_sheet(sheet)
    assert resolve(index, "x_01.mzML", "d", "1", "Sample")["accession"] == "X"
    assert resolve(index, "y_01", "d", "1", "Sample")["replicate"] == "2"
    assert resolve(index, "other", "d", "9", "Blank") == {
        "sample": "other",
        "accession": "d",
        "replicate": "9",
        "type": "Blank",
        "class": "",
    }
    assert strip_raw_extension("a.b.mzML") == "a.b" and strip_raw_extension("a.b") == "a.b"
    assert strip_raw_extension("ProbeA .mzXML") == "ProbeA"  # a space before the extension is not the accession's


@pytest.mark.parametrize(
    "content, line, words",
    [
        ("sample,replicate\na,1\n", 1, "missing column(s) ['accession']"),
        ("sample;accession\na;A\n", 1, "comma-separated"),
        ("sample,accession\na,A\nb,B\na,C\n", 4, "duplicate sample 'a' (first on line 2: 'a')"),
        ("sample,accession,type\na,A,Sampel\n", 2, "unknown type 'Sampel'"),
        ("sample,accession\na,A\n,B\n", 3, "empty sample"),
        ("sample,accession,replicate\na,A,1\nb,A,1\n", 3, "already used on line 2"),
        ("sample,accession\na,A,extra\n", 2, "has 3 fields"),
        ("sample,accession,sample\na,A,b\n", 1, "duplicate column"),
        ("", 1, "empty"),
        ("sample,accession\n", 1, "no samples"),
        ("sample,accession\na,A\nb,B\x01\n", 3, "binary"),
        (gzip.compress(b"sample,accession\na,A\n"), 1, "gzip"),
    ],
)
def test_bad_sheets_name_file_and_line(tmp_path, content, line, words):
    path = write(tmp_path, content)
    with pytest.raises(InputFileError) as err:
        read_sample_sheet(path)
    assert err.value.path == str(path) and err.value.line == line
    assert words in str(err.value)
    assert str(err.value).startswith(f"{path}, line {line}")


def test_two_rows_for_one_sample_differing_only_by_extension_fail(tmp_path):
    """``a.mzML`` and ``a.mzXML`` name one sample column: the exact name won and the other row was ignored."""
    from ms2img.io.metadata import read_sample_metadata

    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,replicate\na.mzML,A,1\nb,B,1\na.mzXML,C,1\n")
    with pytest.raises(
        InputFileError, match=r"sheet\.csv, line 4: duplicate sample 'a\.mzXML' \(first on line 2: 'a\.mzML'\)"
    ):
        read_sample_sheet(sheet)
    meta = tmp_path / "groups.csv"
    meta.write_text("sample_name,attribute\n5440.mzXML,A2\n5441.mzXML,A2\n5440.mzML,BLANK\n")
    with pytest.raises(
        InputFileError, match=r"groups\.csv, line 4: duplicate sample\(s\) \['5440'\] \('5440\.mzXML' on line 2\)"
    ):
        read_sample_metadata(meta)


def test_a_metadata_activity_column_reads_na_as_not_measured_and_refuses_other_text(tmp_path):
    """One NA, '#N/A' or decimal comma in a GNPS metadata activity column made it silently stop being an assay."""
    from ms2img.io.metadata import read_sample_metadata

    head = "filename\tATTRIBUTE_BioactivityIC50\tATTRIBUTE_Activity_class\n"
    meta = tmp_path / "metadata.tsv"
    meta.write_text(head + "a.mzML\t12.5\tactive\nb.mzML\tNA\tinactive\nc.mzML\t3\tactive\n")
    _, activity = read_sample_metadata(meta)
    assert list(activity.columns) == ["sample", "BioactivityIC50"]  # the class words are not an assay
    values = activity["BioactivityIC50"].tolist()
    assert values[0] == 12.5 and values[1] != values[1] and values[2] == 3.0  # NA: not measured (NaN)
    meta.write_text("filename\tATTRIBUTE_activity_group\tATTRIBUTE_Bioactivity\na.mzML\tG1\t12.5\nb.mzML\tG2\tNA\n")
    sheet, activity = read_sample_metadata(meta)  # G1/G2 is a group (the class), not a column of bad numbers
    assert sheet["class"].tolist() == ["G1", "G2"] and list(activity.columns) == ["sample", "Bioactivity"]
    for cell in ("#N/A", "4,5"):
        meta.write_text(head + f"a.mzML\t12.5\tactive\nb.mzML\t{cell}\tinactive\n")
        with pytest.raises(InputFileError, match=rf"line 3, column 'ATTRIBUTE_BioactivityIC50': '{cell}'"):
            read_sample_metadata(meta)


def test_a_semicolon_side_table_is_refused_for_its_delimiter(tmp_path):
    """Excel in a decimal-comma locale saves ';': FERMO's activity and GNPS metadata said 'no sample column'."""
    from ms2img.io.activity import read_activity
    from ms2img.io.metadata import read_sample_metadata

    for name, text, read in (
        ("activity.csv", "sample_name;quant_data\na.mzXML;8\n", lambda p: read_activity(p, "activity")),
        ("metadata.csv", "filename;ATTRIBUTE_Bioactivity\na.mzXML;8\n", read_sample_metadata),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(InputFileError, match=rf"{name}, line 1: header is semicolon-separated: save it comma-"):
            read(tmp_path / name)
