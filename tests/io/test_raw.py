"""Raw DDA mzML / mzXML."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ms2img.io.raw import _ms1_intensity, no_intensity, read_raw
from ms2img.io.sample_sheet import read_sample_sheet

MZML = "171103_PMA_TK_QC_04-4to5min.mzML"
MZXML = "DOM_b.mzXML"


def per_scan(events: pd.DataFrame) -> pd.DataFrame:
    return events.groupby("feature_id", sort=False).first()


def test_mzml_slice_has_381_ms2_scans(test_data):
    result = read_raw(test_data / MZML)
    scans = per_scan(result.events)
    assert len(scans) == 381 and result.precursors_without_msms == 0
    assert (scans["precursor_mz"] > 0).all()
    assert scans["rt_min"].between(4.0, 5.0).all()
    assert set(scans["polarity"]) == {"positive"}
    assert scans.index[0] == "2122"  # "controllerType=0 controllerNumber=1 scan=2122"
    # no precursor intensity in this file: taken from the preceding MS1 scan (10 ppm), else 0 and counted
    missing = int((scans["precursor_intensity"] == 0).sum())
    assert missing == result.warnings[no_intensity(test_data / MZML)] and missing <= 5
    assert result.samples.iloc[0][["accession", "replicate", "type"]].tolist() == [MZML[:-5], "1", "Sample"]


def test_mzxml_has_434_ms2_scans_in_minutes(test_data):
    result = read_raw(test_data / MZXML, accession="DOM", replicate="b")
    scans = per_scan(result.events)
    assert len(scans) == 434
    assert (scans["precursor_mz"] > 0).all() and (scans["precursor_intensity"] > 0).all()
    assert scans["rt_min"].between(434 / 60, 540 / 60).all()  # 434 to 539 s in the file
    assert set(result.events["accession"]) == {"DOM"} and set(result.events["replicate"]) == {"b"}


def test_a_space_before_the_extension_is_not_part_of_the_accession(test_data, tmp_path):
    """'ProbeA .mzXML' gave accession 'ProbeA ', which assays.csv, validate and the activity files read as 'ProbeA'."""
    named = tmp_path / "ProbeA .mzXML"
    named.write_bytes((test_data / MZXML).read_bytes())
    assert set(read_raw(named).events["accession"]) == {"ProbeA"}


def test_matchms_mzml_precursor_intensity_from_file(test_data):
    result = read_raw(test_data / "testdata.mzml")
    scans = per_scan(result.events)
    assert len(scans) == 10 and result.warnings == {}
    assert scans.loc["2", "precursor_intensity"] == pytest.approx(1754290.0)
    assert scans.loc["2", "precursor_mz"] == pytest.approx(207.159239418523)
    assert scans.loc["2", "rt_min"] == pytest.approx(0.616304 / 60)  # seconds in the file


@pytest.mark.parametrize("fixture", ["mzml_file", "mzxml_file"])
def test_precursor_intensity_rules(request, fixture):
    path = request.getfixturevalue(fixture)
    result = read_raw(path)
    scans = per_scan(result.events)
    assert scans["precursor_intensity"].to_dict() == {"2": 7777.0, "3": 1234.0, "4": 0.0}
    assert result.warnings == {no_intensity(path): 1} and path.name in no_intensity(path)
    np.testing.assert_allclose(scans["rt_min"], [61.2 / 60, 62.4 / 60, 63.6 / 60])
    assert result.events.groupby("feature_id").size().to_dict() == {"2": 2, "3": 1, "4": 3}


def test_ms1_lookup_is_within_10_ppm():
    ms1 = (np.array([100.0, 200.0, 300.0]), np.array([1.0, 2.0, 3.0]))
    assert _ms1_intensity(ms1, 200.0019) == 2.0  # 9.5 ppm
    assert _ms1_intensity(ms1, 200.0021) == 0.0  # 10.5 ppm
    assert _ms1_intensity(ms1, 50.0) == 0.0
    assert _ms1_intensity(None, 200.0) == 0.0


def test_sample_sheet_maps_file_name(mzml_file, tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("sample,accession,replicate,type\nrun.mzML,ACC1,inj2,QC\n")
    result = read_raw(mzml_file, sample_sheet=read_sample_sheet(sheet))
    assert result.samples.iloc[0][["accession", "replicate", "type"]].tolist() == ["ACC1", "inj2", "QC"]
    assert set(result.events["accession"]) == {"ACC1"}
