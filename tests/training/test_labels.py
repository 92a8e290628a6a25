"""Labels, the assay loader, image/label alignment and accession-grouped folds."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from ms2img.errors import ConfigError, InputFileError
from ms2img.training.labels import (
    check_cv_feasible,
    class_counts,
    make_labels,
    read_assays,
)


def _assays(values: dict[str, list], n: int | None = None) -> pd.DataFrame:
    n = n or len(next(iter(values.values())))
    return pd.DataFrame({"accession": [f"A{i:03d}" for i in range(n)], **values})


# ---------------------------------------------------------------------------------------------------------------
# read_assays
# ---------------------------------------------------------------------------------------------------------------


def test_read_assays_ok(tmp_path):
    p = tmp_path / "assays.csv"
    p.write_text("accession,DPPH,TPC\nS1,1.5,\nS2, 2 ,3\n\nS3,NA,4e1\n", encoding="utf-8")
    df = read_assays(p)
    assert list(df.columns) == ["accession", "DPPH", "TPC"]
    assert df["accession"].tolist() == ["S1", "S2", "S3"]
    assert df["DPPH"].tolist()[:2] == [1.5, 2.0] and np.isnan(df["DPPH"].iloc[2])
    assert np.isnan(df["TPC"].iloc[0]) and df["TPC"].iloc[2] == 40.0
    assert df["DPPH"].dtype == "float64"


def test_read_assays_accepts_bom_and_case(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes("\ufeffAccession,DPPH\nS1,1\nS2,2\n".encode())
    df = read_assays(p)
    assert list(df.columns) == ["accession", "DPPH"]


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("id,DPPH\nS1,1\n", ["no 'accession' column", "line 1", "['id', 'DPPH']"]),
        ("accession,DPPH\nS1,1\nS2,abc\n", ["line 3", "column 'DPPH'", "'abc'", "not a finite number"]),
        ("accession,DPPH\nS1,1\nS2,inf\n", ["line 3", "'inf'"]),
        ("accession,DPPH\nS1,1\nS2,2\n\nS1,3\n", ["line 5", "'S1'", "more than once", "[2, 5]"]),
        ("accession,DPPH\nS1,1\n,2\n", ["line 3", "no accession"]),
        ("accession\nS1\n", ["no assay columns"]),
        ("accession,DPPH,DPPH\nS1,1,2\n", ["line 1", "duplicate column names ['DPPH']"]),
        ("accession,DPPH,dpph\nS1,1,2\n", ["line 1", "duplicate column names ['DPPH', 'dpph']"]),
        ("accession,DPPH\nS1,1\nS2,n.d.\n", ["line 3", "'n.d.'", "not a finite number"]),
        ("", ["is empty"]),
        ("accession,DPPH\n", ["no data rows"]),
        ("accession,DPPH\nS1,1\nS2,2,3\n", ["line 3", "3 fields but the header has 2"]),
        ("accession,DPPH,TPC\nS1,1,2\nS2,2\n", ["line 3", "2 fields but the header has 3", "cut short"]),
    ],
)
def test_read_assays_errors(tmp_path, text, fragments):
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputFileError) as exc:
        read_assays(p)
    msg = str(exc.value)
    assert msg.startswith(str(p))
    for frag in fragments:
        assert frag in msg, (frag, msg)


@pytest.mark.parametrize(
    "text",
    [
        "Accession,DPPH\nS1,1\nS2,NA\nS3,3\n",
        "accession,DPPH,dpph\nS1,1,1\nS2,2,2\n",
        "accession,DPPH\nS1,1\nS2,n.d.\n",
        "accession,DPPH\n\n",  # a header alone: validate passed it, training refused it
    ],
)
def test_training_and_validation_read_one_file_the_same_way(tmp_path, text):
    """``ms2img validate`` passed what training refused (``DPPH,dpph``) and refused what it read (``Accession``,
    ``NA`` for not measured): both now read the text with one reader, so they accept and refuse the same files."""
    from ms2img.validation import validate_assays

    p = tmp_path / "assays.csv"
    p.write_text(text, encoding="utf-8")
    try:
        read_assays(p)
        trained = True
    except InputFileError:
        trained = False
    try:
        validated = not validate_assays(p).failures
    except InputFileError:
        validated = False
    assert trained == validated


def test_read_assays_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_assays(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------------------------
# make_labels
# ---------------------------------------------------------------------------------------------------------------


def test_thresholds_exact_at_boundaries():
    # min 0, max 100: 40 -> 0.4 and 60 -> 0.6 exactly; both are dropped (strict < and >)
    df = _assays({"DPPH": [0, 10, 39.999, 40, 50, 60, 60.001, 90, 100]})
    lab = make_labels(df, "DPPH", low=0.4, high=0.6)
    assert list(lab.columns) == ["accession", "value", "normalized", "label"]
    assert lab["value"].tolist() == [0, 10, 39.999, 60.001, 90, 100]
    assert lab["label"].tolist() == [0, 0, 0, 1, 1, 1]
    assert lab["label"].dtype == "int64"
    assert lab.attrs["n_middle"] == 3 and lab.attrs["n_missing"] == 0


def test_min_max_normalisation_and_order():
    values = [5.0, -3.0, 11.0, 2.0, 9.0, -1.0]
    df = _assays({"TPC": values})
    lab = make_labels(df, "TPC", low=0.45, high=0.55)
    expected = {f"A{i:03d}": (v + 3.0) / 14.0 for i, v in enumerate(values)}
    for acc, norm in zip(lab["accession"], lab["normalized"], strict=True):
        assert norm == pytest.approx(expected[acc])
    assert lab["normalized"].min() == 0.0 and lab["normalized"].max() == 1.0
    # input order preserved (A000 = 0.571 is high, A003 = 0.357 low)
    assert lab["accession"].tolist() == ["A000", "A001", "A002", "A003", "A004", "A005"]
    assert lab["label"].tolist() == [1, 0, 1, 0, 1, 0]
    assert lab.attrs["min"] == -3.0 and lab.attrs["max"] == 11.0


def test_nan_values_dropped_with_warning(caplog):
    df = _assays({"DPPH": [0, np.nan, 1, 2, np.nan, 10, 9, 8]})
    with caplog.at_level(logging.WARNING, logger="ms2img.training.labels"):
        lab = make_labels(df, "DPPH")
    assert "2 of 8 accessions have no value" in caplog.text
    assert "A001" not in lab["accession"].tolist() and "A004" not in lab["accession"].tolist()
    assert lab.attrs["n_missing"] == 2
    assert class_counts(lab) == {"low": 3, "high": 3}


def test_accession_index_accepted():
    df = _assays({"DPPH": [0, 1, 9, 10]}).set_index("accession")
    assert make_labels(df, "DPPH")["label"].tolist() == [0, 0, 1, 1]


def test_unknown_assay_lists_available():
    df = _assays({"DPPH": [0, 1, 9, 10], "TPC": [1, 2, 3, 4]})
    with pytest.raises(ConfigError) as exc:
        make_labels(df, "elastase")
    assert "unknown assay 'elastase'" in str(exc.value) and "DPPH, TPC" in str(exc.value)
    with pytest.raises(ConfigError, match="did you mean 'DPPH'"):
        make_labels(df, "dpph")


@pytest.mark.parametrize(
    "low, high, fragment",
    [
        (0.6, 0.4, "must be smaller than labels.high"),
        (0.5, 0.5, "must be smaller than labels.high"),
        (-0.1, 0.6, "labels.low = -0.1 must be a number in [0, 1]"),
        (0.4, 1.5, "labels.high = 1.5 must be a number in [0, 1]"),
        (float("nan"), 0.6, "labels.low"),
    ],
)
def test_bad_thresholds(low, high, fragment):
    df = _assays({"DPPH": [0, 1, 9, 10]})
    with pytest.raises(ConfigError) as exc:
        make_labels(df, "DPPH", low=low, high=high)
    assert fragment in str(exc.value)


def test_constant_assay():
    df = _assays({"DPPH": [3.0, 3.0, np.nan, 3.0]})
    with pytest.raises(ConfigError, match=r"assay 'DPPH' is constant \(3 for all 3 accessions\)"):
        make_labels(df, "DPPH")


def test_too_few_values():
    df = _assays({"DPPH": [3.0, np.nan, np.nan]})
    with pytest.raises(ConfigError, match="has 1 accession"):
        make_labels(df, "DPPH")


def test_class_with_fewer_than_two():
    df = _assays({"DPPH": [0, 5, 6, 7, 8, 10]})  # only A000 below 0.4
    with pytest.raises(ConfigError) as exc:
        make_labels(df, "DPPH")
    msg = str(exc.value)
    assert "fewer than 2 accessions" in msg and "'low': 1" in msg and "'high': 3" in msg
    assert "widen the thresholds" in msg


def test_duplicate_accessions_and_non_numeric():
    df = pd.DataFrame({"accession": ["a", "b", "a"], "DPPH": [0, 1, 2]})
    with pytest.raises(ConfigError, match="more than once: 'a'"):
        make_labels(df, "DPPH")
    df = pd.DataFrame({"accession": ["a", "b", "c"], "DPPH": ["0", "x", "2"]})
    with pytest.raises(ConfigError, match="non-numeric"):
        make_labels(df, "DPPH")
    df = pd.DataFrame({"accession": ["a", "b", "c"], "DPPH": [0, np.inf, 2]})
    with pytest.raises(ConfigError, match="infinite values for accession"):
        make_labels(df, "DPPH")


def test_cv_feasibility():
    lab = make_labels(_assays({"DPPH": [0, 1, 2, 8, 9, 10, 10, 10]}), "DPPH")
    assert class_counts(lab) == {"low": 3, "high": 5}
    check_cv_feasible(lab, 3)
    with pytest.raises(ConfigError) as exc:
        check_cv_feasible(lab, 5)
    msg = str(exc.value)
    assert "5-fold cross-validation needs at least 5 labelled accessions per class" in msg
    assert "{'low': 3, 'high': 5}" in msg
    with pytest.raises(ConfigError, match="needs at least 4"):
        make_labels(_assays({"DPPH": [0, 1, 2, 8, 9, 10, 10, 10]}), "DPPH", n_splits=4)
    with pytest.raises(ConfigError, match=r"cv.folds = 1 must be an integer >= 2"):
        check_cv_feasible(lab, 1)
    assert class_counts(np.array([1, 1, 0])) == {"low": 1, "high": 2}


def test_assays_with_classic_mac_line_endings_read_as_before(tmp_path):
    """Excel for Mac's "CSV (Macintosh)" ends lines with a lone CR: training and validation both read it (they did
    before read_text_lines, which splits on LF only), on the lines an editor shows."""
    from ms2img.validation.assays import read_csv_strings, validate_assays

    p = tmp_path / "assays.csv"
    p.write_bytes(b"accession,DPPH\rS1,1.5\rS2,2\r\rS3,n.d.\r")
    assert read_csv_strings(p).index.tolist() == [2, 3, 5]
    with pytest.raises(InputFileError, match="line 5"):
        read_assays(p)
    p.write_bytes(b"accession,DPPH\rS1,1.5\rS2,2\rS3,3\r")
    assert read_assays(p)["DPPH"].tolist() == [1.5, 2.0, 3.0]
    assert not validate_assays(p).failures


def test_a_semicolon_csv_with_decimal_commas_is_named_as_such(tmp_path):
    """A European Excel's CSV: ';' between fields, ',' in the numbers. '1,5' split the row in two and both readers
    said only "2 fields but the header has 1"; the separator is what to fix."""
    from ms2img.validation.assays import validate_assays

    p = tmp_path / "assays.csv"
    p.write_text("accession;DPPH\nS1;1,5\nS2;2\n", encoding="utf-8")
    for read in (read_assays, validate_assays):
        with pytest.raises(InputFileError, match=r"line 1: header is semicolon-separated: save it comma-separated"):
            read(p)


def test_a_quoted_cell_spanning_lines_keeps_its_line_break(tmp_path):
    """read_csv_strings reads a list of lines: without their ends a quoted cell over two lines lost the break, and a
    stray quote glued the rest of the file into one value ('1.5A2,2A3,3')."""
    from ms2img.validation.assays import read_csv_strings

    p = tmp_path / "assays.csv"
    p.write_text('accession,DPPH,note\nS1,1,"two\nlines"\nS2,2,x\n', encoding="utf-8")
    table = read_csv_strings(p)
    assert table["note"].tolist() == ["two\nlines", "x"] and table.index.tolist() == [3, 4]
    p.write_text('accession,DPPH\nS1,"1.5\nS2,2\nS3,3\n', encoding="utf-8")
    with pytest.raises(InputFileError, match=r"'1\.5\\nS2,2\\nS3,3'"):
        read_assays(p)
