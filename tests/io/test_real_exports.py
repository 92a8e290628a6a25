"""Real lab exports go through ingest + validate; bioactivity-guided layouts; what ingest refuses, in one line."""

from __future__ import annotations

import errno
import json
import re

import numpy as np
import pandas as pd
import pytest
from io_builders import META, MSDIAL_ROWS, msdial_lines, write_lines

from ms2img.cli import main
from ms2img.errors import ConfigError, InputFileError
from ms2img.io import ingest as ingest_mod
from ms2img.io.fbmn import read_fbmn, read_optimus
from ms2img.io.ingest import MANIFEST, ingest
from ms2img.io.metadata import read_sample_metadata
from ms2img.io.msdial import MISSING_HEIGHT_WARNING, read_msdial
from ms2img.io.schema import read_events
from ms2img.validation import run_validation

MSDIALR = "MSDIAL_Alignment_result_LC-MS.txt"
GNPS = "gnps_msdial_pasef_arabidopsis/GnpsTable_1_20198191357_PASEF.txt"


def sort(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["accession", "replicate", "feature_id", "fragment_mz"]).reset_index(drop=True)


# ------------------------------------------------------------------------------------------- real exports


def test_msdialr_export_ingests_and_validates_with_above_precursor_counts(test_data, tmp_path):
    events = tmp_path / "events"
    ingest([test_data / MSDIALR], events)
    report = run_validation(events, report_dir=tmp_path / "reports")
    assert report.success, report.message
    per = {r["accession"]: r for r in report.events.physics["per_accession"]}
    assert set(per) == {"1a", "1b", "2a", "2b"}
    assert sum(r["above_precursor"] > 0 for r in per.values()) == 4  # one such peak in each sample (+0.08 Da)
    assert all(r["above_precursor_share"] < 0.05 for r in per.values())
    data = json.loads((tmp_path / "reports" / "validation.json").read_text())
    assert data["summary"]["fragments_above_precursor"] == sum(r["above_precursor"] for r in per.values())
    assert "fragments above their precursor" in report.message


def test_gnps_pasef_export_ingests_and_validates(shared_data, tmp_path):
    path = shared_data / GNPS
    if not path.is_file():
        pytest.skip(f"{path} not available")
    events = tmp_path / "events"
    summary = ingest([path], events)
    assert summary.accessions == 24 and summary.samples == {"Sample": 24, "Blank": 5}
    report = run_validation(events, report_dir=tmp_path / "reports")
    assert report.success, report.message
    st = report.events.statistics
    assert st["accessions_with_fragments_above_precursor"] == 24 and st["fragments_above_precursor"] > 500
    assert st["max_above_precursor_share"] < 0.05


def test_fast_reader_matches_line_reader(test_data, tmp_path):
    """The pyarrow path and the line-by-line path (taken for blank lines) give the same events."""
    fast = read_msdial(test_data / MSDIALR)
    text = (test_data / MSDIALR).read_bytes().replace(b"\r\n", b"\n")
    lines = text.split(b"\n")
    slow_file = tmp_path / "with_blank.txt"
    slow_file.write_bytes(b"\n".join(lines[:7] + [b""] + lines[7:]))  # a blank line forces the careful path
    slow = read_msdial(slow_file)
    pd.testing.assert_frame_equal(sort(fast.events), sort(slow.events))


# ------------------------------------------------------------------------------------------ sample types


def qc_blank_only(tmp_path):
    meta = {k: v for k, v in META.items()}
    meta["File type"] = ["QC", "QC", "QC", "Blank", "NA"]
    return write_lines(tmp_path / "qc_only.txt", msdial_lines(meta=meta))


def test_qc_and_blank_only_export_tells_which_types_and_flag(tmp_path, capsys, monkeypatch):
    path = qc_blank_only(tmp_path)
    with pytest.raises(InputFileError) as err:
        ingest([path], tmp_path / "out")
    msg = str(err.value)
    assert "3 QC" in msg and "1 Blank" in msg and "--sample-types QC" in msg
    assert not (tmp_path / "out").exists()
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "--sample-types QC" in capsys.readouterr().err
    assert main(["ingest", str(path), "--out", str(tmp_path / "out"), "--sample-types", "QC"]) == 0


# ------------------------------------------------------------------------------------ bioactivity layouts


def test_mzmine2_activity_row_gives_events_and_assays(test_data, tmp_path):
    quant, mgf = test_data / "bioactivity_mzmine2_quant.csv", test_data / "bioactivity_msms.mgf"
    result = read_fbmn(quant, mgf)
    assert len(result.samples) == 11 and "BioactivityCHIKV" not in set(result.events["feature_id"])
    act = result.activity.set_index("sample")["CHIKV"]
    assert act["5434_5433_mod.mzXML"] == 8 and act["5456_5455_mod.mzXML"] == 7 and act["D3_H3_mod.mzXML"] == 0
    out = tmp_path / "events"
    summary = ingest([quant], out, mgf=mgf, assays_out=tmp_path / "assays.csv")
    assays = pd.read_csv(tmp_path / "assays.csv")
    assert list(assays.columns) == ["accession", "CHIKV"] and len(assays) == summary.accessions == 11
    assert assays.set_index("accession").loc["5452_5451_mod", "CHIKV"] == 8
    assert "assays: CHIKV" in summary.format()


def test_classic_mac_line_ends_read_like_unix_ones(test_data, tmp_path):
    """Excel for Mac's "CSV (Macintosh)" ends lines with a lone CR: the quant table and its MGF read the same (the
    csv module's 'universal-newline mode' error and 'no BEGIN IONS blocks' were all a lab saw), and so does an MS-DIAL
    export (it was 'no header row', or read only when not UTF-8)."""
    mgf = test_data / "bioactivity_msms.mgf"
    quant = test_data / "bioactivity_mzmine2_quant.csv"
    for src in (quant, mgf):
        (tmp_path / src.name).write_bytes(src.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    mac = read_fbmn(tmp_path / quant.name, tmp_path / mgf.name)
    pd.testing.assert_frame_equal(sort(mac.events), sort(read_fbmn(quant, mgf).events))
    msdial = test_data / "MSDIAL_Alignment_result_LC-MS.txt"
    (tmp_path / msdial.name).write_bytes(msdial.read_bytes().replace(b"\r\n", b"\r"))
    pd.testing.assert_frame_equal(read_msdial(tmp_path / msdial.name).events, read_msdial(msdial).events)


def test_integer_ids_written_as_floats_still_join_and_no_join_is_named(test_data, tmp_path):
    """A quant table re-saved by pandas writes row IDs as 1.0: nothing joined the MGF's FEATURE_ID=1 and the message
    blamed the MS/MS export; an MGF of another table is now named as such."""
    mgf = test_data / "bioactivity_msms.mgf"
    quant = test_data / "bioactivity_mzmine2_quant.csv"
    table = pd.read_csv(quant, dtype=str, keep_default_na=False)
    table["row ID"] = table["row ID"].where(~table["row ID"].str.fullmatch(r"\d+"), table["row ID"] + ".0")
    table.to_csv(tmp_path / "floats.csv", index=False)
    pd.testing.assert_frame_equal(
        sort(read_fbmn(tmp_path / "floats.csv", mgf).events), sort(read_fbmn(quant, mgf).events)
    )
    other = test_data / "case_study_MSMS.mgf"
    shifted = table.assign(
        **{"row ID": table["row ID"].str.replace(r"^(\d+)", lambda m: str(int(m[1]) + 5000), regex=True)}
    )
    shifted.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(InputFileError, match=r"other.csv, line 1: none of its .* is a FEATURE_ID or SCANS of"):
        read_fbmn(tmp_path / "other.csv", other)


def test_optimus_layout_reads_like_the_quant_table(test_data, tmp_path):
    mgf = test_data / "bioactivity_msms.mgf"
    optimus = read_optimus(test_data / "bioactivity_optimus.csv", mgf)
    quant = read_fbmn(test_data / "bioactivity_mzmine2_quant.csv", mgf)
    a, b = sort(optimus.events), sort(quant.events)
    pd.testing.assert_frame_equal(a.drop(columns=["rt_min"]), b.drop(columns=["rt_min"]))
    np.testing.assert_allclose(a["rt_min"], b["rt_min"], atol=0.01)  # RT in whole seconds in the header
    pd.testing.assert_frame_equal(optimus.activity, quant.activity)
    summary = ingest([test_data / "bioactivity_optimus.csv"], tmp_path / "ev", mgf=mgf, assays_out=tmp_path / "a.csv")
    assert summary.accessions == 11 and pd.read_csv(tmp_path / "a.csv")["CHIKV"].sum() == 31
    # a feature header with a decimal comma became an "assay" of that feature's heights, the feature dropped
    text = (test_data / "bioactivity_optimus.csv").read_text()
    first = next(c for c in text.splitlines()[0].split(",") if "(ID:" in c)
    bad = first.replace(".", ",", 1)
    (tmp_path / "bad.csv").write_text(text.replace(first, f'"{bad}"', 1))
    with pytest.raises(InputFileError, match=rf"line 1, column '{re.escape(bad)}': feature column .* is not '<m/z>"):
        read_optimus(tmp_path / "bad.csv", mgf)


def test_gnps_metadata_sets_types_classes_and_activity(test_data, tmp_path):
    meta = test_data / "bioactivity_gnps_metadata.tsv"
    sheet, activity = read_sample_metadata(meta)
    assert sheet.set_index("sample").loc["D3_H3_mod.mzXML", "type"] == "Blank"
    assert activity.set_index("sample").loc["5434_5433_mod.mzXML", "BioactivityCHIKV"] == 8
    out = tmp_path / "events"
    summary = ingest(
        [test_data / "bioactivity_optimus.csv"],
        out,
        mgf=test_data / "bioactivity_msms.mgf",
        metadata=meta,
        assays_out=tmp_path / "assays.csv",
    )
    assert summary.samples == {"Sample": 10, "Blank": 1} and summary.accessions == 10
    manifest = pd.read_csv(out / MANIFEST, dtype=str, keep_default_na=False)
    assert set(manifest["class"]) == {"C", "A2", "S", "V2", "BLANK"}
    assays = pd.read_csv(tmp_path / "assays.csv")
    assert len(assays) == 10 and "D3_H3_mod" not in set(assays["accession"])


# ------------------------------------------------------------------------------------- refused, one line


def test_two_inputs_mapping_to_one_accession(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_lines(folder / "ACC0001.txt", msdial_lines())
    write_lines(folder / "ACC0001.tsv", msdial_lines())
    with pytest.raises(
        InputFileError,
        match=r"ACC0001.t[xs][tv]: maps to the same accession 'ACC0001' as .*ACC0001.t[xs][tv] \(accession = ",
    ):
        ingest([folder], tmp_path / "out")


def test_export_without_any_fragments_is_refused(tmp_path):
    rows = [(*r[:4], "", *r[5:]) for r in MSDIAL_ROWS]
    path = write_lines(tmp_path / "nomsms.txt", msdial_lines(rows=rows))
    with pytest.raises(InputFileError, match=r"accession 's1' \(and 1 more: s2\) has no MS/MS fragments"):
        ingest([path], tmp_path / "out")


def test_nan_height_is_missing_with_a_warning(tmp_path):
    rows = [(*MSDIAL_ROWS[0][:5], "nan", *MSDIAL_ROWS[0][6:]), *MSDIAL_ROWS[1:]]
    path = write_lines(tmp_path / "nan.txt", msdial_lines(rows=rows))
    summary = ingest([path], tmp_path / "out")
    assert summary.warnings == {MISSING_HEIGHT_WARNING: 1}
    assert f"warning: {MISSING_HEIGHT_WARNING}: 1" in summary.format()
    ev = read_events(tmp_path / "out")
    assert "1" not in set(ev.loc[ev.accession == "s1", "feature_id"])  # read as not detected


def test_empty_height_cells_are_counted_as_missing(tmp_path):
    rows = [(*MSDIAL_ROWS[0][:5], "", *MSDIAL_ROWS[0][6:]), (*MSDIAL_ROWS[1][:5], " NA ", *MSDIAL_ROWS[1][6:])]
    path = write_lines(tmp_path / "empty.txt", msdial_lines(rows=[*rows, *MSDIAL_ROWS[2:]]))
    summary = ingest([path], tmp_path / "out")
    assert summary.warnings == {MISSING_HEIGHT_WARNING: 2}


@pytest.mark.parametrize("cell", ["inf", "1e400", "-5", "abc"])
def test_bad_height_names_file_line_and_value(tmp_path, cell):
    rows = [MSDIAL_ROWS[0], (*MSDIAL_ROWS[1][:6], cell, *MSDIAL_ROWS[1][7:]), MSDIAL_ROWS[2]]
    path = write_lines(tmp_path / "bad.txt", msdial_lines(rows=rows))
    with pytest.raises(InputFileError) as err:
        ingest([path], tmp_path / "out")
    assert str(err.value).startswith(f"{path}, line 7, column 's2'")


def test_out_is_a_file_one_line_error(msdial_file, tmp_path, capsys, monkeypatch):
    target = tmp_path / "events"
    target.write_text("not a folder")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        ingest([msdial_file], target)
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(msdial_file), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_disk_full_is_one_line_and_leaves_output(msdial_file, tmp_path, monkeypatch, capsys):
    out = tmp_path / "events"
    ingest([msdial_file], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(args[1]))

    def full_writer(where, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(where))

    monkeypatch.setattr(ingest_mod.pq, "write_table", full)
    monkeypatch.setattr(ingest_mod.pq, "ParquetWriter", full_writer)  # aligned exports: row group by row group
    with pytest.raises(InputFileError, match="no space left on device"):
        ingest([msdial_file], out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".events.")]  # no staging left
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(msdial_file), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and len(err.strip().splitlines()) == 1
