"""Great Expectations validation: every problem is reported with its file, row/line and expectation."""

from __future__ import annotations

import json
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ms2img.cli import main
from ms2img.errors import ConfigError, InputFileError, ValidationFailed
from ms2img.io import schema
from ms2img.validation import (
    options_from_params,
    read_csv_strings,
    run_validation,
    validate_assays,
    validate_events,
)
from ms2img.validation import report as report_mod

ACCESSIONS = ["ACC1", "ACC2", "ACC3"]
ASSAYS = ["DPPH", "TPC"]
N = 12  # fragments per accession


def make_events(accession: str, n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    precursor = rng.uniform(200, 1200, n)
    return schema.events_from_arrays(
        accession=accession,
        replicate="r1",
        feature_id=np.arange(n) // 3,
        precursor_mz=precursor,
        rt_min=rng.uniform(0, 20, n),
        precursor_intensity=rng.uniform(1e3, 1e6, n),
        fragment_mz=precursor * rng.uniform(0.1, 0.99, n),
        fragment_intensity=rng.uniform(0, 1e4, n),
        polarity="positive",
    )


@pytest.fixture
def cohort(tmp_path: Path) -> dict[str, Path]:
    """data/events/<ACC>.parquet for three clean accessions + a matching assays.csv."""
    events = tmp_path / "data" / "events"
    for i, acc in enumerate(ACCESSIONS):
        schema.write_events(make_events(acc, seed=i), events / schema.accession_filename(acc))
    assays = tmp_path / "data" / "assays.csv"
    assays.write_text("accession,DPPH,TPC\nACC1,0.1,12\nACC2,0.5,3.5e1\nACC3,0.9,-4\n", encoding="utf-8")
    return {"events": events, "assays": assays, "reports": tmp_path / "reports", "root": tmp_path}


def edit_events(cohort: dict[str, Path], accession: str, **cells) -> None:
    """Set cells of one accession's file: ``column=(row, value)`` or ``column=([rows], value)``."""
    path = cohort["events"] / schema.accession_filename(accession)
    df = pd.read_parquet(path)
    for column, (rows, value) in cells.items():
        df.loc[rows, column] = value
    df.to_parquet(path, index=False)


def run(cohort: dict[str, Path], policy: str = "fail", **kw):
    kw.setdefault("assays", ASSAYS)
    return run_validation(cohort["events"], cohort["assays"], cohort["reports"], policy, **kw)


def failed_message(cohort, **kw) -> str:
    with pytest.raises(ValidationFailed) as info:
        run(cohort, **kw)
    return str(info.value)


# ------------------------------------------------------------------------------------------- clean cohort


def test_clean_cohort_passes_and_writes_reports(cohort):
    rep = run(cohort)
    assert rep.success and rep.failures == []
    assert rep.remaining_accessions == ACCESSIONS
    s = rep.summary()
    assert s["files"] == 3 and s["rows"] == 3 * N and s["failed_expectations"] == 0 and s["success"] is True
    assert s["evaluated_expectations"] >= 20
    data = json.loads(rep.json_path.read_text())
    assert data["success"] is True and data["events"]["statistics"]["rows"] == 3 * N
    assert {e["expectation"] for e in data["events"]["expectations"]} >= {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_in_set",
    }
    assert rep.html_path.read_text().startswith("<!DOCTYPE html>")


def test_the_same_events_give_the_same_json_report(cohort):
    """validation.json is a dependency of every train stage: validating the same events again (a re-run ingest)
    must leave it byte-identical, or every assay retrains; the clock time goes to the HTML only."""
    first = run(cohort).json_path.read_bytes()
    time.sleep(1.1)  # a clock time in the JSON (seconds) would differ now
    second = run(cohort)
    assert second.json_path.read_bytes() == first
    assert "created" in second.html_path.read_text()


def test_fragment_within_tolerance_passes(cohort):
    df = pd.read_parquet(cohort["events"] / "ACC1.parquet")
    df.loc[2, "fragment_mz"] = df.loc[2, "precursor_mz"] + 0.04  # isotope / calibration slack
    df.to_parquet(cohort["events"] / "ACC1.parquet", index=False)
    assert run(cohort, fragment_tolerance_da=0.05).success


# ------------------------------------------------------------------------------------------ events problems


@pytest.mark.parametrize(
    ("cells", "expectation", "check"),
    [
        ({"precursor_mz": (3, np.nan)}, "expect_column_values_to_not_be_null", "no missing values in precursor_mz"),
        ({"fragment_mz": (3, np.nan)}, "expect_column_values_to_not_be_null", "no missing values in fragment_mz"),
        ({"fragment_intensity": (3, -5.0)}, "expect_column_values_to_be_between", "fragment_intensity >= 0"),
        ({"precursor_intensity": (3, np.inf)}, "expect_column_values_to_be_between", "precursor_intensity >= 0"),
        ({"precursor_mz": (3, -5.0)}, "expect_column_values_to_be_between", "precursor_mz within [0, 10000]"),
        ({"precursor_mz": (3, 12500.0)}, "expect_column_values_to_be_between", "precursor_mz within [0, 10000]"),
        ({"rt_min": (3, -1.0)}, "expect_column_values_to_be_between", "rt_min >= 0"),
        ({"polarity": (3, "pos")}, "expect_column_values_to_be_in_set", "polarity in"),
        ({"replicate": (3, None)}, "expect_column_values_to_not_be_null", "no missing values in replicate"),
    ],
)
def test_events_problem_names_file_row_and_expectation(cohort, cells, expectation, check):
    edit_events(cohort, "ACC2", **cells)
    msg = failed_message(cohort)
    assert "ACC2.parquet, row 3:" in msg
    assert expectation in msg and check in msg
    assert "validation.html" in msg


def test_fragment_above_precursor_reported_with_rows_and_context(cohort):
    df = pd.read_parquet(cohort["events"] / "ACC3.parquet")
    df.loc[[4, 7, 9], "fragment_mz"] = df.loc[[4, 7, 9], "precursor_mz"] + 1.0
    df.to_parquet(cohort["events"] / "ACC3.parquet", index=False)
    with pytest.raises(ValidationFailed) as info:
        run(cohort)
    msg = str(info.value)
    assert "ACC3.parquet, rows 4, 7, 9:" in msg  # 3 of 12 fragments: 25% > the 17% of a noisy real export
    assert "share of fragments above the precursor <= 0.2" in msg and "expect_column_values_to_be_between" in msg
    (failure,) = info.value.report.failures
    assert failure.rows == [4, 7, 9] and failure.unexpected_count == 3 and failure.accession == "ACC3"
    assert failure.values == pytest.approx([3 / 12], abs=1e-5)
    assert failure.context[0]["fragment_mz"] == pytest.approx(failure.context[0]["precursor_mz"] + 1.0)


def test_few_fragments_above_precursor_are_physics_counted_not_fatal(cohort):
    """13C isotopes / co-isolated ions: a share under validate.max_above_precursor_share passes and is reported."""
    df = pd.read_parquet(cohort["events"] / "ACC3.parquet")
    df.loc[[4, 7], "fragment_mz"] = df.loc[[4, 7], "precursor_mz"] + 1.003
    df.to_parquet(cohort["events"] / "ACC3.parquet", index=False)
    report = run(cohort, max_above_precursor_share=0.2)
    assert report.success and not report.failures
    stats = report.events.statistics
    assert stats["fragments_above_precursor"] == 2 and stats["accessions_with_fragments_above_precursor"] == 1
    per = {r["accession"]: r for r in report.events.physics["per_accession"]}
    assert per["ACC3"]["above_precursor"] == 2 and per["ACC3"]["first_rows"] == [4, 7]
    assert per["ACC1"]["above_precursor"] == 0
    assert "2 fragments above their precursor" in report.message
    data = json.loads(report.json_path.read_text())
    assert data["summary"]["fragments_above_precursor"] == 2
    assert data["events"]["above_precursor"]["per_accession"][2]["above_precursor_share"] == pytest.approx(2 / 12, 1e-4)
    assert "Fragments above the precursor" in report.html_path.read_text()


def test_absurd_intensity_fails_with_file_row_value(cohort):
    edit_events(cohort, "ACC2", fragment_intensity=(6, 1e308))
    msg = failed_message(cohort)
    assert "ACC2.parquet, row 6:" in msg and "fragment_intensity >= 0, finite and <= 1e+12" in msg and "1e+308" in msg
    assert run(cohort, max_intensity=1e309).success  # the limit is a parameter


def test_zero_intensity_fragments_are_a_warning(cohort):
    edit_events(cohort, "ACC1", fragment_intensity=([1, 2], 0.0))
    report = run(cohort)
    assert report.success
    (warning,) = report.events.warnings
    assert warning.unexpected_count == 2 and warning.rows == [1, 2] and "fragment_intensity > 0" in warning.check
    assert "warnings: 2 rows" in report.message


def test_rows_are_positions_in_their_own_file(cohort):
    """The table is validated concatenated; indices must map back to each file, not the global row."""
    edit_events(cohort, "ACC1", fragment_intensity=(0, -1.0))
    edit_events(cohort, "ACC3", fragment_intensity=([0, N - 1], -1.0))
    res = validate_events(cohort["events"])
    by_file = {Path(f.file).name: f.rows for f in res.failures}
    assert by_file == {"ACC1.parquet": [0], "ACC3.parquet": [0, N - 1]}
    assert res.failed_accessions == ["ACC1", "ACC3"]


def test_value_list_capped_with_full_count(tmp_path):
    df = make_events("BIG", n=50)
    df["fragment_intensity"] = -1.0
    res = validate_events(df, source="big")
    (failure,) = res.failures
    assert failure.unexpected_count == 50 and len(failure.rows) == report_mod.MAX_LISTED
    assert "(+45 more)" in failure.describe()


def test_broken_files_reported_once_per_file(cohort):
    (cohort["events"] / "ACC4.parquet").write_bytes(b"not parquet")
    schema.write_events(make_events("ACC5").iloc[:0], cohort["events"] / "ACC5.parquet")
    make_events("ACC6").drop(columns=["fragment_mz"]).to_parquet(cohort["events"] / "ACC6.parquet")
    res = validate_events(cohort["events"])
    got = {(Path(f.file).name, f.check) for f in res.failures}
    assert got == {
        ("ACC4.parquet", "file readable as Parquet"),
        ("ACC5.parquet", "at least one row per accession"),
        ("ACC6.parquet", "canonical columns present"),
    }
    assert next(f for f in res.failures if f.file.endswith("ACC6.parquet")).values == ["fragment_mz"]


def test_no_events_files_is_an_input_error(tmp_path):
    with pytest.raises(InputFileError, match="no events Parquet files"):
        validate_events(tmp_path)


# ------------------------------------------------------------------------------------------ assays problems


@pytest.mark.parametrize(
    ("csv_text", "assays", "where", "expectation", "value"),
    [
        # non-numeric cells are read as text, so reported as written, on the line an editor shows
        ('accession,DPPH,TPC\nACC1,0.1,1\nACC2,"0,5",2\nACC3,3,3\n', ASSAYS, "line 3", "match_regex", "'0,5'"),
        ("accession,DPPH,TPC\nACC1,0.1,1\n\nACC2,n.d.,2\nACC3,3,3\n", ASSAYS, "line 4", "match_regex", "'n.d.'"),
        ("accession,DPPH,TPC\nACC1,0.1,1\nACC2,1.2.3,2\nACC3,3,3\n", ASSAYS, "line 3", "match_regex", "'1.2.3'"),
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,2,2\nACC3,3,3\nACC2,4,4\n", ASSAYS, "lines 3, 5", "be_unique", "'ACC2'"),
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,2,2\n", ASSAYS, "assays.csv:", "contain_set", "'ACC3'"),
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,2,2\nACC3,3,3\nACC9,1,1\n", ASSAYS, "line 5", "be_in_set", "'ACC9'"),
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,2,2\nACC3,3,3\n", [*ASSAYS, "TFC"], "line 1", "to_exist", "'TFC'"),
    ],
)
def test_assays_problem_names_line_and_expectation(cohort, csv_text, assays, where, expectation, value):
    cohort["assays"].write_text(csv_text, encoding="utf-8")
    msg = failed_message(cohort, assays=assays)
    first = next(part for part in msg.split("; ") if expectation in part)
    assert "assays.csv" in first and where in first and value in first, msg


def test_ragged_assays_row_is_an_input_error(cohort):
    """More fields than the header is a malformed file (e.g. an unquoted decimal comma), not a finding."""
    cohort["assays"].write_text("accession,DPPH,TPC\nACC1,0.1,1\nACC2,0,5,2\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"assays.csv, line 3: 4 fields but the header has 3"):
        run(cohort)


@pytest.mark.parametrize("header", ["accession,DPPH,TPC,", "accession,,DPPH,TPC"])
def test_assays_header_with_an_unnamed_column_is_an_input_error(cohort, header):
    """A trailing comma (Excel) gave an empty column name that crashed the check suite with a pydantic traceback."""
    cohort["assays"].write_text(f"{header}\nACC1,0.1,1\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"assays.csv, line 1: column \d of the header has no name"):
        run(cohort)


def test_assay_values_not_coerced(tmp_path):
    path = tmp_path / "assays.csv"
    path.write_bytes("\ufeffaccession,DPPH\r\nA, 1.5 \r\n\r\nB,1e3\r\nC,inf\r\n".encode())
    df = read_csv_strings(path)
    assert list(df.index) == [2, 4, 5] and df.loc[2, "DPPH"] == "1.5"
    res = validate_assays(path, accessions=["A", "B", "C"], assays=["DPPH"])
    (failure,) = res.failures
    assert failure.rows == [5] and failure.values == ["inf"] and failure.row_kind == "line"


def test_all_non_accession_columns_are_assays_by_default(tmp_path):
    path = tmp_path / "assays.csv"
    path.write_text("accession,DPPH,notes\nA,1,good\n", encoding="utf-8")
    assert not validate_assays(path).success
    assert validate_assays(path, assays=["DPPH"]).success


# ------------------------------------------------------------------------------------------------ policy


def test_quarantine_moves_only_the_bad_accession(cohort):
    schema.write_events(make_events("ACC4", seed=4), cohort["events"] / "ACC4.parquet")
    with cohort["assays"].open("a") as fh:
        fh.write("ACC4,0.2,7\n")
    edit_events(cohort, "ACC2", fragment_intensity=(1, -3.0))
    rep = run(cohort, policy="quarantine")
    assert rep.success
    qdir = cohort["root"] / "data" / "quarantine"
    assert sorted(p.name for p in cohort["events"].iterdir()) == ["ACC1.parquet", "ACC3.parquet", "ACC4.parquet"]
    assert [p.name for p in qdir.iterdir()] == ["ACC2.parquet"]
    assert rep.remaining_accessions == ["ACC1", "ACC3", "ACC4"]
    data = json.loads(rep.json_path.read_text())
    (q,) = data["quarantined"]
    assert q["accession"] == "ACC2" and q["checks"] == ["fragment_intensity >= 0, finite and <= 1e+12"]
    assert q["moved_to"].endswith("quarantine/ACC2.parquet")
    assert "ACC2" in rep.html_path.read_text()
    # a second run accepts the quarantined accession still listed in assays.csv
    again = run(cohort, policy="quarantine")
    assert again.success and again.previously_quarantined == ["ACC2"] and again.quarantined == []


def test_quarantine_leaving_too_few_accessions_fails_and_moves_nothing(cohort):
    edit_events(cohort, "ACC1", fragment_intensity=(1, -3.0))
    edit_events(cohort, "ACC2", rt_min=(0, -1.0))
    with pytest.raises(ValidationFailed, match="only 1 accession"):
        run(cohort, policy="quarantine")
    assert len(list(cohort["events"].glob("*.parquet"))) == 3
    data = json.loads((cohort["reports"] / "validation.json").read_text())
    assert data["quarantine_candidates"] == ["ACC1", "ACC2"] and data["quarantined"] == []


def test_quarantine_still_fails_on_assays(cohort):
    edit_events(cohort, "ACC1", fragment_intensity=(1, -3.0))
    cohort["assays"].write_text("accession,DPPH,TPC\nACC1,1,1\nACC2,x,2\nACC3,3,3\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"assays.csv, line 3"):
        run(cohort, policy="quarantine")
    assert len(list(cohort["events"].glob("*.parquet"))) == 3


def test_unknown_policy(cohort):
    with pytest.raises(ConfigError):
        run(cohort, policy="ignore")


# ----------------------------------------------------------------------------------------------- reports


class _Checker(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack: list[str] = []
        self.tables = 0
        self.text = []

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br"):
            self.stack.append(tag)
        self.tables += tag == "table"

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack[-5:], tag)
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_reports_are_valid_json_and_html(cohort):
    cohort["assays"].write_text(
        "accession,DPPH,TPC\nACC1,<script>alert(1)</script>,1\nACC2,2,2\nACC3,3,3\n", encoding="utf-8"
    )
    edit_events(cohort, "ACC2", precursor_mz=(0, np.nan))
    with pytest.raises(ValidationFailed):
        run(cohort)
    text = (cohort["reports"] / "validation.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert data["success"] is False
    files = {Path(f["file"]).name: f for f in data["events"]["failures"] + data["assays"]["failures"]}
    assert files["ACC2.parquet"]["rows"] == [0] and files["ACC2.parquet"]["values"] == ["NaN"]
    assert files["assays.csv"]["rows"] == [2] and files["assays.csv"]["row_kind"] == "line"
    page = (cohort["reports"] / "validation.html").read_text()
    assert "<script>" not in page  # values are escaped
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [] and checker.tables >= 4
    assert "ACC2.parquet" in "".join(checker.text)


def test_failed_write_leaves_previous_reports_intact(cohort, monkeypatch):
    first = run(cohort)
    old_json, old_html = first.json_path.read_text(), first.html_path.read_text()

    def boom(_data):
        raise RuntimeError("disk full while rendering")

    monkeypatch.setattr(report_mod, "render_html", boom)
    edit_events(cohort, "ACC1", fragment_intensity=(0, -1.0))
    with pytest.raises(RuntimeError, match="disk full"):
        run(cohort)
    assert first.json_path.read_text() == old_json and first.html_path.read_text() == old_html
    assert sorted(p.name for p in cohort["reports"].iterdir()) == ["validation.html", "validation.json"]


def test_validate_dataframe_and_summary(cohort):
    df = pd.concat([make_events("A"), make_events("B", seed=1)], ignore_index=True)
    df.loc[N + 2, "fragment_intensity"] = -1.0  # row 2 of B, row N + 2 of the frame
    res = validate_events(df, source="memory")
    (failure,) = res.failures
    assert failure.file == "memory" and failure.rows == [N + 2] and res.failed_accessions == ["B"]


def test_options_from_params():
    opts = options_from_params(
        {"validate": {"policy": "quarantine", "mz_min": 50, "mz_max": 1500}, "labels": {"assays": ["DPPH"]}}
    )
    assert opts == {"policy": "quarantine", "mz_range": (50.0, 1500.0), "fragment_tolerance_da": 0.05,
                    "assays": ["DPPH"], "max_intensity": 1e12, "max_above_precursor_share": 0.2}  # fmt: skip
    with pytest.raises(ConfigError):
        options_from_params({"validate": {"policy": "warn"}})
    with pytest.raises(ConfigError):
        options_from_params({"labels": {"assays": "DPPH"}})


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_pass_and_fail(cohort, capsys, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("validate:\n  policy: fail\n  mz_max: 2000\nlabels:\n  assays: [DPPH, TPC]\n")
    argv = ["validate", str(cohort["events"]), "--assays", str(cohort["assays"]),
            "--report-dir", str(cohort["reports"]), "--params", str(params)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "validation passed" in out and "validation.html" in out and "validation.json" in out

    edit_events(cohort, "ACC3", fragment_mz=(5, 2500.0))  # beyond the params' mz_max
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ms2img validate: error: validation failed")
    assert "ACC3.parquet, row 5" in err and "validation.html" in err

    assert main([*argv, "--policy", "quarantine"]) == 0
    assert "quarantined 1: ACC3" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["1e13", "-2e12", "1e400"])
def test_absurd_assay_value_names_accession_and_value(tmp_path, value):
    path = tmp_path / "assays.csv"
    path.write_text(f"accession,DPPH\nA,0.5\nB,{value}\nC,1\n", encoding="utf-8")
    res = validate_assays(path, accessions=["A", "B", "C"], assays=["DPPH"])
    assert not res.success
    lines = [f.describe() for f in res.failures]
    assert len(lines) == 1 and "line 3" in lines[0] and "'B'" in lines[0] and value in lines[0], lines


# -- assays.csv: a constant assay column (one value for every accession) fails validation, not training

CONSTANT = "accession,DPPH,TPC\nACC1,0.5,1\nACC2,0.50,2\nACC3,5e-1,3\n"


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
    ("csv_text", "constant", "unreadable"),
    [
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,,2\nACC3,1,3\n", True, False),  # empty cell: a warning, still constant
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,NaN,2\nACC3,1,3\n", True, False),  # NaN: not measured, still constant
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,n.d.,2\nACC3,1,3\n", True, True),  # n.d.: the regex fails, constant
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,,2\nACC3,2,3\n", False, False),  # two values around an empty cell
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,,2\nACC3,n.d.,3\n", False, True),  # one number is not "constant"
        ("accession,DPPH,TPC\nACC1,1,1\nACC2,1e400,2\nACC3,1,3\n", True, True),  # overflow: the magnitude check's
    ],
)
def test_missing_and_unreadable_cells_keep_their_own_checks(cohort, csv_text, constant, unreadable):
    """Non-numeric cells fail their own checks, empty ones (not measured) are a warning; neither is a value here."""
    cohort["assays"].write_text(csv_text, encoding="utf-8")
    res = validate_assays(cohort["assays"], accessions=ACCESSIONS, assays=["DPPH", "TPC"])
    others = [f for f in res.failures if f not in _constant_failures(res)]
    assert bool(others) is unreadable and {f.column for f in others} <= {"DPPH"}  # the n.d. / 1e400 cells
    assert bool(_constant_failures(res)) is constant


def test_an_assay_not_measured_on_every_accession_passes_with_a_warning(cohort):
    """An empty cell is "not measured" (training leaves that accession out of that assay): a lab that has not run
    every assay on every extract is told where, not stopped before training."""
    cohort["assays"].write_text("accession,DPPH,TPC\nACC1,0.1,1\nACC2,,2\nACC3,3,3\n", encoding="utf-8")
    res = validate_assays(cohort["assays"], accessions=ACCESSIONS, assays=["DPPH", "TPC"])
    assert res.success and not res.failures
    [warning] = res.warnings
    assert warning.column == "DPPH" and warning.unexpected_count == 1
    assert run(cohort).success


def test_a_varied_cohort_still_passes(cohort):
    assert run(cohort).success


def test_cli_validates_a_lab_export_as_ingest_would_read_it(test_data, capsys, tmp_path, monkeypatch):
    """`ms2img validate` on the real MS-DIAL alignment export a lab has (not an events folder): it is read with
    ingest's defaults into a temporary folder and validated; quarantine, which moves files, is refused."""
    monkeypatch.chdir(tmp_path)
    export = test_data / "MSDIAL_Alignment_result_LC-MS.txt"
    assert main(["validate", str(export), "--report-dir", str(tmp_path / "reports")]) == 0
    out = capsys.readouterr().out
    assert "a lab export, read as `ms2img ingest` would" in out and "validation passed" in out
    # what ingest would print of the export, before the verdict (the lab user found validate silent on these)
    assert "  precursors without MS/MS: " in out and "  retention time: " in out and "  polarity: positive" in out
    assert "  not detected (height 0 or empty): 442 feature x sample cells" in out  # of 230 features x 5 columns
    assert (tmp_path / "reports" / "validation.json").exists() and not list(tmp_path.glob("*.parquet"))
    assert main(["validate", str(export), "--policy", "quarantine"]) == 2
    assert "ingest the export first" in capsys.readouterr().err


def test_a_lab_exports_report_names_files_that_exist(test_data, capsys, tmp_path, monkeypatch):
    """The report of a lab export named rows of /tmp/ms2img-validate-*/events/2a.parquet, a folder deleted before
    the user could read it (the msdialr demo's two zero-intensity fragments; a failed share check alike): every
    file a failure or warning names must be there to open, and a second run replaces it."""
    monkeypatch.chdir(tmp_path)
    export = test_data / "MSDIAL_Alignment_result_LC-MS.txt"
    for _ in range(2):
        assert main(["validate", str(export)]) == 0
        capsys.readouterr()
    report = json.loads((tmp_path / "validation" / export.name / "validation.json").read_text(encoding="utf-8"))
    named = [w["file"] for w in report["events"]["warnings"] + report["events"]["failures"]]
    assert len(named) == 2 and all(Path(f).is_file() for f in named), named
    assert all("ms2img-validate-" not in f for f in named)


def test_an_export_that_no_longer_reads_replaces_the_passing_report(test_data, capsys, tmp_path, monkeypatch):
    """A truncated re-export kept the earlier 'validation passed' report in validation/<export>/: the report of
    the latest reading must say it failed, naming the file and line, and the error must still reach the user."""
    monkeypatch.chdir(tmp_path)
    export = tmp_path / test_data.joinpath("MSDIAL_Alignment_result_LC-MS.txt").name
    shutil.copy(test_data / export.name, export)
    assert main(["validate", str(export)]) == 0
    capsys.readouterr()
    export.write_text("".join(export.read_text(encoding="utf-8").splitlines(keepends=True)[:6])[:-40], "utf-8")
    assert main(["validate", str(export)]) == 2
    err = capsys.readouterr().err
    report = json.loads((tmp_path / "validation" / export.name / "validation.json").read_text(encoding="utf-8"))
    assert report["success"] is False and export.name in err
    (failure,) = report["events"]["failures"]
    assert failure["suite"] == "read" and failure["message"].split(":")[0] in err
    # a mistyped path is one line and leaves no report folder of its own behind (the fuzzer found validation/nope/)
    assert main(["validate", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt: file not found" in capsys.readouterr().err and not (tmp_path / "validation" / "nope.txt").exists()


def test_a_missing_assay_column_says_what_the_header_holds(cohort):
    """A misspelt header read as "column 'TPC' present: 1 unexpected, values 'TPC'", as if 'TPC' were the bad value
    (a semicolon-separated one is refused as it is read: tests/training/test_labels.py)."""
    body = "".join(f"\n{a},1,2" for a in ACCESSIONS)
    cohort["assays"].write_text("accession,DPPH,TCP" + body + "\n", encoding="utf-8")
    msg = failed_message(cohort)
    words = "no column 'TPC' in the header ['accession', 'DPPH', 'TCP'] (did you mean 'TCP'?)"
    assert words in msg and "unexpected, values 'TPC'" not in msg, msg


def test_a_misspelt_accession_header_is_one_problem_not_also_an_assay(cohort):
    """'acession,DPPH,TPC' also read 'acession' as an assay: a second failure listing every accession name."""
    cohort["assays"].write_text(cohort["assays"].read_text().replace("accession,", "acession,", 1), encoding="utf-8")
    msg = failed_message(cohort, assays=None)
    assert "no column 'accession' in the header ['acession', 'DPPH', 'TPC'] (did you mean 'acession'?)" in msg, msg
    assert "on 'acession'" not in msg and "values 'ACC1'" not in msg, msg


def test_a_misspelt_accession_row_is_paired_with_the_events_accession_it_means(cohort):
    """'ACC02' without events and 'ACC2' without a row were two unrelated lines: the first now names the second."""
    text = cohort["assays"].read_text().replace("\nACC2,", "\nACC02,")
    cohort["assays"].write_text(text, encoding="utf-8")
    msg = failed_message(cohort)
    assert "values 'ACC02' ('ACC02' is probably 'ACC2', which has events but no row)" in msg, msg


def test_exports_without_an_assay_row_are_told_to_add_one_with_empty_cells(cohort):
    """New exports before their assays are run: the failure listed them but not the cure (a row, cells empty)."""
    text = "\n".join(line for line in cohort["assays"].read_text().splitlines() if not line.startswith("ACC3,"))
    cohort["assays"].write_text(text + "\n", encoding="utf-8")
    msg = failed_message(cohort)
    assert "values 'ACC3' (add a row for each; empty cells mean not measured (e.g. 'ACC3,,'))" in msg, msg


def test_an_assay_measured_on_fewer_than_two_accessions_fails(cohort):
    """Empty cells are "not measured" (a warning); a column left (almost) empty would pass and stop training at
    labelling after render, so it fails here."""
    cohort["assays"].write_text("accession,DPPH,TPC\nACC1,1,\nACC2,2,\nACC3,3,4\n", encoding="utf-8")
    msg = failed_message(cohort)
    assert "TPC measured on at least 2 accessions (1 of 3: nothing to train on)" in msg, msg


def test_a_missing_assay_is_not_taken_for_a_misspelt_other_assay(cohort):
    cohort["assays"].write_text("accession,DPPH,TFC\nACC1,1,2\nACC2,2,3\nACC3,3,4\n", encoding="utf-8")
    msg = failed_message(cohort, assays=["DPPH", "TFC", "TPC"])
    assert "no column 'TPC' in the header ['accession', 'DPPH', 'TFC']" in msg and "did you mean" not in msg, msg


def test_assays_saved_in_windows_1252_read_and_utf16_fails_naming_the_file(tmp_path):
    """Excel's 'CSV' on Windows writes Windows-1252 (an accession 'Écorce' failed as 'not UTF-8 text' with no line);
    it reads as ingest's tables do. UTF-16 ('Unicode text') fails in one line naming the file."""
    from ms2img.training.labels import read_assays

    latin = tmp_path / "assays.csv"
    latin.write_bytes("accession,DPPH\n\xc9corce,1.5\nRoot,2\n".encode("cp1252"))
    assert read_csv_strings(latin)["accession"].tolist() == ["\xc9corce", "Root"]
    assert read_assays(latin)["DPPH"].tolist() == [1.5, 2.0]
    wide = tmp_path / "wide.csv"
    wide.write_bytes("accession,DPPH\nA,1\n".encode("utf-16"))
    with pytest.raises(InputFileError, match=r"wide\.csv"):
        read_csv_strings(wide)


def test_validating_the_current_folder_says_where_the_report_cannot_go(test_data, capsys, tmp_path, monkeypatch):
    """`ms2img validate .` inside an export folder: the events beside the report would lie inside the export, which
    ingest refuses with a message about an '--out' that validate does not have; say what to do instead."""
    export = tmp_path / "exports"
    export.mkdir()
    shutil.copy(test_data / "MSDIAL_Alignment_result_LC-MS.txt", export)
    monkeypatch.chdir(export)
    assert main(["validate", "."]) == 2
    err = capsys.readouterr().err
    assert "inside the export folder" in err and "--report-dir" in err and "--out" not in err, err
    assert main(["validate", ".", "--report-dir", str(tmp_path / "elsewhere")]) == 0
