"""MZmine / GNPS FBMN quant table + MGF."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from io_builders import mgf_lines, write_lines

from ms2img.errors import InputFileError
from ms2img.io.fbmn import read_fbmn

QUANT = "case_study_peak_table_quant_full.csv"
MGF = "case_study_MSMS.mgf"


@pytest.fixture(scope="module")
def fermo_sheet(test_data, tmp_path_factory):
    """The FERMO group metadata as a sample sheet: BLANK -> type Blank, the group -> class."""
    groups = pd.read_csv(test_data / "case_study_group_metadata.csv")
    sheet = pd.DataFrame(
        {
            "sample": groups["sample_name"],
            "accession": groups["sample_name"].str.replace(".mzXML", "", regex=False),
            "replicate": "1",
            "type": groups["attribute"].map(lambda a: "Blank" if a == "BLANK" else "Sample"),
            "class": groups["attribute"],
        }
    )
    path = tmp_path_factory.mktemp("fermo") / "sheet.csv"
    sheet.to_csv(path, index=False)
    return path


def test_fermo_join(test_data):
    result = read_fbmn(test_data / QUANT, test_data / MGF)
    ev = result.events
    assert ev["feature_id"].nunique() == 141  # every MGF spectrum joined to its quant row
    assert result.precursors_without_msms == 143 - 141
    assert result.warnings == {}
    heights = pd.read_csv(test_data / QUANT).filter(regex=r"^datafile:.*:height$")
    assert heights.shape == (143, 11)
    assert result.undetected_cells == int((~(heights.fillna(0) > 0)).to_numpy().sum()) > 1000  # 0 or empty: counted
    assert len(result.samples) == 11 and set(result.samples["type"]) == {"Sample"}
    assert "5440_5439_mod" in set(ev["accession"])
    row = ev[(ev.accession == "5440_5439_mod") & (ev.feature_id == "1")].iloc[0]
    assert row["precursor_mz"] == pytest.approx(268.9976) and row["rt_min"] == pytest.approx(1.88)
    assert row["precursor_intensity"] == pytest.approx(6800)  # datafile:5440_5439_mod.mzXML:height


def test_an_mgf_cut_short_is_reported_with_its_count(test_data, tmp_path):
    """Half of FERMO's MGF (its first 70 spectra): 73 of 143 features lose their MS/MS, far more than the 2 an
    intact export lacks, and ingest says so, naming the MGF (the whole MGF gives no warning: test above)."""
    lines = (test_data / MGF).read_text().splitlines()
    ends = [i for i, line in enumerate(lines) if line.strip() == "END IONS"]
    half = write_lines(tmp_path / "half.mgf", lines[: ends[69] + 1])
    result = read_fbmn(test_data / QUANT, half)
    assert result.precursors_without_msms == 73
    [(said, n)] = result.warnings.items()
    assert n == 73 and "no spectrum in half.mgf" in said


def test_a_missing_begin_ions_is_named_at_the_first_line_it_leaves_outside(test_data, tmp_path):
    """The lab user: a deleted BEGIN IONS was reported 46 lines later, at the next END IONS."""
    from ms2img.errors import InputFileError

    lines = (test_data / MGF).read_text().splitlines()
    second = [i for i, line in enumerate(lines) if line.strip() == "BEGIN IONS"][1]
    cut = write_lines(tmp_path / "cut.mgf", lines[:second] + lines[second + 1 :])
    nxt = next(i for i in range(second, len(lines) - 1) if lines[i + 1].strip())  # first non-blank line after it
    with pytest.raises(InputFileError, match="between blocks, outside BEGIN IONS ... END IONS") as info:
        read_fbmn(test_data / QUANT, cut)
    assert f"line {nxt + 1}" in str(info.value)  # 1-based: the first line the missing BEGIN IONS left outside


def test_fermo_with_group_sheet_has_10_samples_and_1_blank(test_data, fermo_sheet):
    from ms2img.io.sample_sheet import read_sample_sheet

    result = read_fbmn(test_data / QUANT, test_data / MGF, sample_sheet=read_sample_sheet(fermo_sheet))
    m = result.samples
    assert (m["type"] == "Sample").sum() == 10 and (m["type"] == "Blank").sum() == 1
    assert m.loc[m["type"] == "Blank", "accession"].tolist() == ["D3_H3_mod"]
    assert m.set_index("accession").loc["5434_5433_mod", "class"] == "S"


def test_small_pair_empty_height_means_not_detected(quant_pair):
    quant, mgf = quant_pair
    result = read_fbmn(quant, mgf)
    assert result.samples["sample"].tolist() == ["a.mzML", "b.mzML"]  # heights chosen over areas
    assert result.samples["accession"].tolist() == ["a", "b"]
    ev = result.events
    assert set(ev.loc[ev.accession == "b", "feature_id"]) == {"3"}  # empty height for feature 1 in b
    assert ev.loc[ev.accession == "a", "precursor_intensity"].tolist() == [1000, 1000, 500, 500, 500]
    assert set(ev["polarity"]) == {"negative"}  # CHARGE=1-
    assert result.precursors_without_msms == 1  # feature 2 has no spectrum
    assert result.warnings == {"MGF spectra without a quant-table row": 1}  # feature 99


def test_mzmine2_gnps_style_columns_and_scans_key(tmp_path):
    quant = write_lines(
        tmp_path / "mz2.csv",
        [
            "row ID,row m/z,row retention time,x_01.mzML Peak area,x_02.mzML Peak area,",
            "5,250.5,3.2,100,0,",
            "6,350.5,4.2,0,200,",
        ],
    )
    mgf = write_lines(
        tmp_path / "mz2.mgf",
        mgf_lines(
            {"5": ["60 1", "70 2"], "6": ["80 3"]}, key="SCANS", extra=("ION=[M+H]+",), pepmass={"5": 250.5, "6": 350.5}
        ),
    )
    result = read_fbmn(quant, mgf)
    ev = result.events
    assert result.samples["sample"].tolist() == ["x_01.mzML", "x_02.mzML"]
    assert ev.groupby("accession")["feature_id"].unique().map(list).to_dict() == {"x_01": ["5"], "x_02": ["6"]}
    assert set(ev["polarity"]) == {"positive"}


@pytest.mark.parametrize(
    ("prefix", "title"), [(b"\xef\xbb\xbf", b"TITLE=Quercetin"), (b"", b"TITLE=Querc\xe9tine")], ids=["bom", "cp1252"]
)
def test_mgf_saved_with_a_bom_or_in_windows_1252_reads_as_the_scan_does(quant_pair, tmp_path, prefix, title):
    """Notepad's UTF-8 BOM made pyteomics miss the first block ('pyteomics read 2 spectra, the file has 3 blocks'),
    a Windows-1252 title a UnicodeDecodeError; the file's structure check already reads both."""
    quant, mgf = quant_pair
    plain = read_fbmn(quant, mgf).events
    lines = mgf.read_bytes().split(b"\n")
    lines.insert(1, title)
    edited = tmp_path / "edited.mgf"
    edited.write_bytes(prefix + b"\r\n".join(lines))
    pd.testing.assert_frame_equal(read_fbmn(quant, edited).events, plain)


@pytest.mark.parametrize(
    ("param", "said"),
    [
        ("PEPMASS=190,0481", "PEPMASS '190,0481' is not an m/z"),
        ("CHARGE=abc", "CHARGE 'abc' is not a charge"),
        ("RTINSECONDS=1:05", "RTINSECONDS '1:05' is not a number of seconds"),
        ("MSLEVEL=two", "MSLEVEL 'two' is not a whole number"),
    ],
)
def test_an_mgf_parameter_pyteomics_would_misread_fails_on_its_line(quant_pair, tmp_path, param, said):
    """A decimal comma or a word in PEPMASS, CHARGE, RT or MSLEVEL failed as "not a readable MGF" on line 1 (or, for
    MSLEVEL, dropped the spectrum silently): the line and the value are named."""
    quant, mgf = quant_pair
    lines = mgf.read_text().splitlines()
    lines.insert(1, param)
    edited = tmp_path / "edited.mgf"
    edited.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError, match=rf"edited\.mgf, line 2: {re.escape(said)}"):
        read_fbmn(quant, edited)


def test_lower_case_block_markers_read_as_upper_case(quant_pair, tmp_path):
    """'begin ions' passed the structure scan but pyteomics read 0 spectra ('the file has 3 blocks')."""
    quant, mgf = quant_pair
    lower = tmp_path / "lower.mgf"
    lower.write_text(mgf.read_text().replace("BEGIN IONS", "begin ions").replace("END IONS", "end ions"))
    pd.testing.assert_frame_equal(read_fbmn(quant, lower).events, read_fbmn(quant, mgf).events)
