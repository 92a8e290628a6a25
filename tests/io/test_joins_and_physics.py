"""Joins that check themselves and physics-aware validation (issue 25): precursor charge from every format,
fragments judged against the singly charged mass, an m/z range that covers real instruments, quant/MGF m/z
agreement, RT units, mixed polarities refused, and the FERMO case study through ingest + validate as a lab would."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from io_builders import MSDIAL_ROWS, mgf_lines, msdial_lines, write_lines

from ms2img.cli import main
from ms2img.errors import ConfigError, InputFileError
from ms2img.io.fbmn import read_fbmn
from ms2img.io.ingest import ingest
from ms2img.io.msdial import read_msdial
from ms2img.io.raw import read_raw
from ms2img.io.schema import (
    PROTON_MASS,
    charge_from_adduct,
    charge_from_text,
    events_from_arrays,
    read_events,
    singly_charged_mz,
)
from ms2img.validation import run_validation, validate_events
from ms2img.validation.events import DEFAULT_MZ_RANGE

QUANT = "case_study_peak_table_quant_full.csv"
MGF = "case_study_MSMS.mgf"
MSDIALR = "MSDIAL_Alignment_result_LC-MS.txt"
GNPS = "gnps_msdial_pasef_arabidopsis/GnpsTable_1_20198191357_PASEF.txt"
GNPS_MGF = "gnps_msdial_pasef_arabidopsis/GnpsMgf_1_20198191357_PASEF.mgf"
REPO_PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


# ----------------------------------------------------------------------------------------------- charge


@pytest.mark.parametrize(
    ("adduct", "z"),
    [("[M+2H]2+", 2), ("[M-2H]2-", 2), ("[M+H]+", 1), ("[M+K-2H]-", 1), ("[2M+H]+", 1), ("Unknown", 0), (None, 0)],
)
def test_charge_from_adduct(adduct, z):
    assert charge_from_adduct(adduct) == z


@pytest.mark.parametrize(("text", "z"), [("2", 2), ("2+", 2), ("1-", 1), ("0+", 0), ("", 0), (float("nan"), 0)])
def test_charge_from_text(text, z):
    assert charge_from_text(text) == z


def test_singly_charged_mass_of_a_doubly_charged_ion():
    """[M+2H]2+ at m/z 500 is M = 998.985: [M+H]+ = 999.993 (negative ions: add the protons back)."""
    pos, neg = singly_charged_mz(np.array([500.0, 500.0]), np.array([2, 2]), np.array([False, True]))
    assert pos == pytest.approx(1000 - PROTON_MASS) and neg == pytest.approx(1000 + PROTON_MASS)
    assert singly_charged_mz(np.array([500.0]), np.array([1]))[0] == 500.0


def test_msdial_adduct_charge_reaches_the_events(tmp_path):
    rows = [
        MSDIAL_ROWS[0],
        MSDIAL_ROWS[1],
        (*MSDIAL_ROWS[2][:3], "[M+2H]2+", "100.5:10 650.5:20 780.5:30", *MSDIAL_ROWS[2][5:]),
    ]
    ev = read_msdial(write_lines(tmp_path / "z2.txt", msdial_lines(rows=rows))).events
    assert ev.groupby("feature_id")["charge"].first().to_dict() == {"1": 1, "3": 2}
    ingest([tmp_path / "z2.txt"], tmp_path / "out")
    assert set(read_events(tmp_path / "out", optional=True)["charge"]) == {1, 2}


def test_fermo_quant_charge_column_and_mgf_charge(test_data):
    result = read_fbmn(test_data / QUANT, test_data / MGF)
    z = result.events.groupby("feature_id")["charge"].first()
    assert (z == 2).sum() == 10 and set(z) == {1, 2}  # quant 'charge': 27 x 1, 10 x 2, 106 empty (MGF says 0+)
    assert z["13"] == 1


def test_mzml_precursor_charge_state(test_data):
    ev = read_raw(test_data / "171103_PMA_TK_QC_04-4to5min.mzML").events
    z = ev.groupby("feature_id")["charge"].first()
    assert set(z) == {1, 2} and (z == 2).sum() >= 1


# --------------------------------------------------------------------------------- above the precursor


def doubly_charged(charge: int | None) -> pd.DataFrame:
    """One [M+2H]2+ precursor at m/z 500.0 (M+H 998.99) with 4 fragments, 3 of them above m/z 500."""
    return events_from_arrays(
        accession="A",
        replicate="1",
        feature_id=np.zeros(4, dtype=int),
        precursor_mz=np.full(4, 500.0),
        rt_min=np.full(4, 5.0),
        precursor_intensity=np.full(4, 1e5),
        fragment_mz=np.array([300.0, 650.0, 820.0, 998.5]),
        fragment_intensity=np.full(4, 100.0),
        polarity="positive",
        charge=charge,
    )


def test_fragments_of_a_doubly_charged_precursor_are_judged_by_its_singly_charged_mass():
    one = validate_events(doubly_charged(None), source="z1")
    assert not one.success and one.physics["total_above"] == 3  # read as z = 1: 75% above, fails
    two = validate_events(doubly_charged(2), source="z2")
    assert two.success, [f.describe() for f in two.failures]
    assert two.physics["total_above"] == 0 and two.physics["total_explained_by_charge"] == 3
    assert two.statistics["fragments_above_precursor_mz_of_multiply_charged"] == 3
    beyond = doubly_charged(2)
    beyond.loc[3, "fragment_mz"] = 1000.5  # above M+H itself (13C isotope): counted, near
    res = validate_events(beyond, source="z2+")
    assert res.physics["total_above"] == 1 and res.physics["total_near"] == 1


def test_bad_charge_names_row():
    df = doubly_charged(2)
    df.loc[2, "charge"] = 0
    res = validate_events(df, source="mem")
    (failure,) = [f for f in res.failures if "charge" in f.check]
    assert failure.rows == [2] and "charge within [1, 100]" in failure.check


@pytest.mark.parametrize("cell", ["abc", "1.5", "2x"])
def test_quant_charge_cell_that_is_no_charge_names_line_and_value(tmp_path, cell):
    """'abc' was read as unknown (the MGF's CHARGE used) and '1.5' as 1, without a word."""
    quant = write_lines(
        tmp_path / "q.csv", ["id,mz,rt,charge,datafile:a.mzML:height", "1,200.1,1.5,1,10", f"3,400.3,3.5,{cell},5"]
    )
    mgf = write_lines(tmp_path / "q.mgf", mgf_lines(blocks={"1": ["50.1 100"], "3": ["100.5 10"]}))
    with pytest.raises(InputFileError, match=rf"q\.csv, line 3, column 'charge': '{re.escape(cell)}' is not a charge"):
        read_fbmn(quant, mgf)
    ok = write_lines(
        tmp_path / "ok.csv", ["id,mz,rt,charge,datafile:a.mzML:height", "1,200.1,1.5,2+,10", "3,400.3,3.5,,5"]
    )
    assert read_fbmn(ok, mgf).events["charge"].tolist()[0] == 2


# --------------------------------------------------------------------------------------------- m/z range


def test_default_mz_range_covers_real_fragments_and_rejects_absurd_ones():
    assert DEFAULT_MZ_RANGE[0] <= 0 and DEFAULT_MZ_RANGE[1] >= 6000  # FERMO: 2482.87; Orbitrap: up to 6000
    df = doubly_charged(2)
    df.loc[0, "fragment_mz"] = 2482.8665
    df.loc[0, "precursor_mz"] = 1242.0  # [M+2H]2+: its singly charged fragments reach 2483
    assert validate_events(df, source="mem").success
    df.loc[1, "fragment_mz"] = 25000.0
    res = validate_events(df, source="mem")
    assert any("fragment_mz within [0, 10000]" in f.check and f.rows == [1] for f in res.failures)
    assert validate_events(df, mz_range=(0, 30000), source="mem").physics["total_above"] == 1  # configurable


# ----------------------------------------------------------------------------------------- join checks


def shifted_mgf(src, dst, shift: float, ids: set[str] | None = None, drop_rt: bool = False):
    """The MGF with PEPMASS moved by ``shift`` (only for ``ids`` when given), optionally without RT lines."""
    out, fid = [], None
    for line in src.read_text().splitlines():
        if line.startswith("FEATURE_ID="):
            fid = line.split("=", 1)[1]
        if line.startswith("PEPMASS=") and (ids is None or fid in ids):
            line = f"PEPMASS={float(line.split('=', 1)[1]) + shift:.4f}"
        if drop_rt and line.startswith("RTIN"):
            continue
        out.append(line)
    dst.write_text("\n".join(out) + "\n")
    return dst


def test_mgf_of_another_processing_fails_naming_features_and_values(test_data, tmp_path):
    """13C-isotope features (+1.003 Da) joined by id: one line naming the features, both m/z and the MGF line."""
    mgf = shifted_mgf(test_data / MGF, tmp_path / "other.mgf", 1.0034, ids={"12", "13", "126"})
    with pytest.raises(InputFileError) as err:
        ingest([test_data / QUANT], tmp_path / "out", mgf=mgf)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{test_data / QUANT}, line ")
    assert "precursor m/z disagrees with" in msg and "for 3 of 141 joined features by more than 0.02 Da" in msg
    assert "ingest.join_mz_tol_da" in msg and "up to 1.003 Da" in msg
    assert re.search(r"feature 12: 596\.3193 vs PEPMASS 597\.3227 \(MGF line \d+\)", msg)
    assert not (tmp_path / "out").exists()
    assert ingest([test_data / QUANT], tmp_path / "ok", mgf=mgf, join_mz_tol_da=1.1).accessions == 11  # a param


@pytest.mark.parametrize("value", ["", "0", "-5"])
def test_a_pepmass_that_is_no_mz_fails_naming_the_block(test_data, tmp_path, value):
    """PEPMASS=0 (or empty, negative) was read as 'no PEPMASS' and the feature's m/z join went unchecked."""
    text = (test_data / MGF).read_text()
    first = re.search(r"(?m)^PEPMASS=.*$", text)
    mgf = tmp_path / "bad.mgf"
    mgf.write_text(text[: first.start()] + f"PEPMASS={value}" + text[first.end() :])
    with pytest.raises(InputFileError, match=r"bad\.mgf, line 1: PEPMASS '.*' of feature '126' is not an m/z > 0"):
        read_fbmn(test_data / QUANT, mgf)


def test_spectra_without_pepmass_are_counted_their_join_unchecked(test_data, tmp_path):
    """An MGF without PEPMASS cannot show it is another processing's: the unchecked joins are a warning."""
    mgf = tmp_path / "nopep.mgf"
    mgf.write_text(re.sub(r"(?m)^PEPMASS=.*\n", "", (test_data / MGF).read_text()))
    warnings = read_fbmn(test_data / QUANT, mgf).warnings
    assert warnings["joined spectra without PEPMASS in nopep.mgf (m/z not checked against the table)"] == 141
    assert not any("PEPMASS" in k for k in read_fbmn(test_data / QUANT, test_data / MGF).warnings)


def test_small_pepmass_rounding_is_within_tolerance(test_data, tmp_path):
    mgf = shifted_mgf(test_data / MGF, tmp_path / "rounded.mgf", 0.004)
    assert ingest([test_data / QUANT], tmp_path / "out", mgf=mgf).accessions == 11


def test_fermo_table_with_the_gnps_mgf_fails(test_data, shared_data, tmp_path, capsys, monkeypatch):
    mgf = shared_data / GNPS_MGF
    if not mgf.is_file():
        pytest.skip(f"{mgf} not available")
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(test_data / QUANT), "--mgf", str(mgf), "--out", "events"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "for 143 of 143 joined features" in err and "PEPMASS" in err


# ------------------------------------------------------------------------------------------------ RT units


def quant_in_seconds(test_data, tmp_path):
    df = pd.read_csv(test_data / QUANT, dtype=str, keep_default_na=False)
    df["rt"] = (df["rt"].astype(float) * 60).round(2).astype(str)
    path = tmp_path / "seconds.csv"
    df.to_csv(path, index=False)
    return path


def test_rt_in_seconds_is_detected_from_the_mgf_and_stated(test_data, tmp_path):
    minutes = read_fbmn(test_data / QUANT, test_data / MGF)
    assert minutes.rt_unit.startswith("minutes ('rt' = the MGF's RT in seconds / 60 for 141 features)")
    result = read_fbmn(quant_in_seconds(test_data, tmp_path), test_data / MGF)
    assert result.rt_unit.startswith("seconds") and "converted to minutes" in result.rt_unit
    np.testing.assert_allclose(result.events["rt_min"], minutes.events["rt_min"], atol=1e-3)
    assert result.events["rt_min"].max() < 20
    summary = ingest([tmp_path / "seconds.csv"], tmp_path / "out", mgf=test_data / MGF)
    assert "retention time: seconds.csv: seconds ('rt' = the MGF's RT in seconds" in summary.format()


def test_an_mgf_rtinseconds_written_in_minutes_keeps_the_table_in_minutes(test_data, tmp_path):
    """An MGF whose RTINSECONDS holds minutes equals the MZmine table's RT (always minutes): read as seconds, every
    RT was divided by 60 (runs of under 20 seconds). RTs that short cannot be seconds: both are minutes, and said."""
    text = (test_data / MGF).read_text()
    mgf = tmp_path / "minutes.mgf"
    mgf.write_text(re.sub(r"(?m)^RTINSECONDS=([\d.]+)", lambda m: f"RTINSECONDS={float(m.group(1)) / 60:.4f}", text))
    plain = read_fbmn(test_data / QUANT, test_data / MGF)
    result = read_fbmn(test_data / QUANT, mgf)
    assert result.rt_unit.startswith("minutes ('rt' = the MGF's RTINSECONDS") and "both are minutes" in result.rt_unit
    np.testing.assert_allclose(result.events["rt_min"], plain.events["rt_min"])


def test_rt_in_seconds_without_mgf_rt_is_told_by_its_values(test_data, tmp_path):
    mgf = shifted_mgf(test_data / MGF, tmp_path / "nort.mgf", 0.0, drop_rt=True)
    result = read_fbmn(quant_in_seconds(test_data, tmp_path), mgf)
    assert result.rt_unit.startswith("seconds ('rt' up to 1196") and result.events["rt_min"].max() < 20
    assert read_fbmn(test_data / QUANT, mgf).rt_unit.startswith("minutes ('rt' up to 19.94)")
    kept = read_fbmn(tmp_path / "seconds.csv", mgf, rt_unit="minutes")  # the param overrides
    assert kept.events["rt_min"].max() > 1000


# ---------------------------------------------------------------------------------------------- polarity


def negative_export(tmp_path):
    rows = [(*r[:3], "[M-H]-", *r[4:]) for r in MSDIAL_ROWS]
    return write_lines(tmp_path / "neg.txt", msdial_lines(rows=rows))


def test_mixed_polarities_are_refused_naming_the_files(tmp_path, capsys, monkeypatch):
    pos = write_lines(tmp_path / "pos.txt", msdial_lines())
    neg = negative_export(tmp_path)
    with pytest.raises(ConfigError) as err:
        ingest([pos, neg], tmp_path / "out")
    msg = str(err.value)
    assert "\n" not in msg and "positive ions in pos.txt; negative ions in neg.txt" in msg
    assert "--allow-mixed-polarity" in msg and "ingest.allow_mixed_polarity" in msg
    assert not (tmp_path / "out").exists()
    summary = ingest([pos, neg], tmp_path / "out", allow_mixed_polarity=True)
    assert summary.accessions == 2 and "polarity: negative and positive" in summary.format()
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", str(pos), str(neg), "--out", "cli"]) == 2
    assert "mix polarities" in capsys.readouterr().err
    assert main(["ingest", str(pos), str(neg), "--out", "cli", "--allow-mixed-polarity"]) == 0


def test_real_negative_and_positive_exports_are_refused(test_data, shared_data, tmp_path):
    gnps = shared_data / GNPS
    if not gnps.is_file():
        pytest.skip(f"{gnps} not available")
    with pytest.raises(ConfigError, match=r"positive ions in MSDIAL_Alignment_result_LC-MS\.txt; negative ions in "):
        ingest([test_data / MSDIALR, gnps], tmp_path / "out")


# ------------------------------------------------------------------------------------- FERMO, as a lab


def test_fermo_case_study_ingests_and_validates_with_default_params(test_data, tmp_path, capsys, monkeypatch):
    """Quant table + MGF copied into data/raw/exports of a project with the default params.yaml."""
    exports = tmp_path / "data" / "raw" / "exports"
    exports.mkdir(parents=True)
    shutil.copy(test_data / QUANT, exports)
    shutil.copy(test_data / MGF, exports)
    shutil.copy(REPO_PARAMS, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["ingest", "data/raw/exports", "--out", "data/events", "--replace"]) == 0
    out = capsys.readouterr().out
    assert "accessions written: 11" in out and "retention time: case_study_peak_table_quant_full.csv: minutes" in out
    assert main(["validate", "data/events", "--report-dir", "reports"]) == 0
    out = capsys.readouterr().out
    assert "validation passed: 11 accession(s)" in out
    assert "above the m/z of a multiply charged precursor but below its singly charged mass" in out
    report = run_validation("data/events", report_dir="reports")
    st = report.events.statistics
    assert st["fragments_above_precursor_mz_of_multiply_charged"] > 1000  # 2,057: the 10 [M+2H]2+ features
    assert 0.05 < st["max_above_precursor_share"] < 0.2  # 16.9%: weak noise peaks far above, in one sample
    assert read_events("data/events")["fragment_mz"].max() == pytest.approx(2776.3303)  # above 2000, in range


def test_join_tolerance_and_rt_unit_come_from_params(test_data, tmp_path, capsys, monkeypatch):
    mgf = shifted_mgf(test_data / MGF, tmp_path / "other.mgf", 1.0034, ids={"12"})
    monkeypatch.chdir(tmp_path)
    argv = ["ingest", str(test_data / QUANT), "--mgf", str(mgf), "--out", "events"]
    assert main(argv) == 2 and "for 1 of 141 joined features" in capsys.readouterr().err
    (tmp_path / "params.yaml").write_text("ingest:\n  join_mz_tol_da: 1.1\n  rt_unit: seconds\n")
    assert main(argv) == 0
    assert "seconds ('rt', as the layout or ingest.rt_unit says)" in capsys.readouterr().out
    assert main([*argv, "--rt-unit", "auto", "--join-mz-tol-da", "0.02"]) == 2  # flags over params
    (tmp_path / "params.yaml").write_text("ingest:\n  rt_unit: hours\n")
    assert main(argv) == 2 and "ingest.rt_unit must be one of auto, minutes, seconds" in capsys.readouterr().err


@pytest.mark.parametrize("column", ["mz", "rt", "id"])
def test_a_quant_column_named_twice_fails_naming_both(tmp_path, column):
    """Two 'mz' columns (a spreadsheet edit): the first was read without a word, perhaps the wrong one."""
    header = ["id", "mz", "rt", "datafile:a.mzML:height"]
    header.insert(header.index(column) + 1, column)
    row = {"id": "1", "mz": "200.1", "rt": "1.5", "datafile:a.mzML:height": "10"}
    quant = write_lines(tmp_path / "q.csv", [",".join(header), ",".join(row[h] for h in header)])
    mgf = write_lines(tmp_path / "q.mgf", mgf_lines(blocks={"1": ["50.1 100"]}))
    with pytest.raises(InputFileError, match=rf"q\.csv, line 1: column '{column}' appears 2 times in the header"):
        read_fbmn(quant, mgf)
