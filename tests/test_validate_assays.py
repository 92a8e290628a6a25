"""assays.csv: a constant assay column (one value for every accession) fails validation, not training."""

from __future__ import annotations

import pytest
from test_validate import ACCESSIONS, edit_events, failed_message, make_events, run

from ms2img.io import schema
from ms2img.validation import validate_assays

CONSTANT = "accession,DPPH,TPC\nACC1,0.5,1\nACC2,0.50,2\nACC3,5e-1,3\n"


@pytest.fixture
def cohort(tmp_path):
    """test_validate's cohort (three clean accessions); each test writes its own assays.csv."""
    events = tmp_path / "data" / "events"
    for i, acc in enumerate(ACCESSIONS):
        schema.write_events(make_events(acc, seed=i), events / schema.accession_filename(acc))
    assays = tmp_path / "data" / "assays.csv"
    assays.write_text("accession,DPPH,TPC\nACC1,0.1,12\nACC2,0.5,3.5e1\nACC3,0.9,-4\n", encoding="utf-8")
    return {"events": events, "assays": assays, "reports": tmp_path / "reports", "root": tmp_path}


def _constant_failures(result) -> list:
    return [f for f in result.failures if f.expectation == "expect_column_unique_value_count_to_be_between"]


def test_constant_assay_column_fails_naming_file_column_and_value(cohort):
    cohort["assays"].write_text(CONSTANT, encoding="utf-8")
    res = validate_assays(cohort["assays"], accessions=ACCESSIONS, assays=["DPPH", "TPC"])
    (failure,) = res.failures
    assert failure.column == "DPPH" and failure.values == ["0.5"] and failure.file == str(cohort["assays"])
    line = failure.describe()
    assert "assays.csv" in line and "'DPPH'" in line and "0.5" in line and "constant" in line, line
    entries = {e["check"]: e for e in res.expectations}
    assert entries["DPPH not constant"]["success"] is False and entries["TPC not constant"]["success"] is True


@pytest.mark.parametrize("policy", ["fail", "quarantine"])
def test_constant_column_blocks_both_policies(cohort, policy):
    """Quarantine moves bad events files but cannot mend assays.csv: assays failures fail the run either way."""
    cohort["assays"].write_text(CONSTANT, encoding="utf-8")
    if policy == "quarantine":
        edit_events(cohort, "ACC2", fragment_intensity=(1, -3.0))
    msg = failed_message(cohort, policy=policy)
    assert "assays.csv" in msg and "DPPH not constant" in msg and "0.5" in msg, msg
    assert len(list(cohort["events"].glob("*.parquet"))) == 3  # a failed run moves nothing


def test_only_the_columns_asked_for_are_checked(cohort):
    cohort["assays"].write_text(CONSTANT, encoding="utf-8")
    assert validate_assays(cohort["assays"], accessions=ACCESSIONS, assays=["TPC"]).success


@pytest.mark.parametrize(
    ("csv_text", "constant"),
    [
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,,2\nACC3,1,3\n", True),  # empty cell: "not empty" fails, still constant
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,NaN,2\nACC3,1,3\n", True),  # NaN: the regex fails, still constant
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,,2\nACC3,2,3\n", False),  # two values around an empty cell
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,,2\nACC3,n/a,3\n", False),  # one number is not "constant"
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,1e400,2\nACC3,1,3\n", True),  # overflow: the magnitude check's
    ],
)
def test_missing_and_unreadable_cells_keep_their_own_checks(cohort, csv_text, constant):
    """NaN handling as before: empty and non-numeric cells fail their own checks and are not values here."""
    cohort["assays"].write_text(csv_text, encoding="utf-8")
    res = validate_assays(cohort["assays"], accessions=ACCESSIONS, assays=["DPPH", "TPC"])
    others = [f for f in res.failures if f not in _constant_failures(res)]
    assert others and {f.column for f in others} == {"DPPH"}  # the empty / NaN / n/a / 1e400 cells, as before
    assert bool(_constant_failures(res)) is constant


def test_a_varied_cohort_still_passes(cohort):
    assert run(cohort).success
