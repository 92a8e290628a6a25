"""The one spectral-library reader (ms2img.io.library): polarity by the one rule, malformed files as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ms2img.errors import InputFileError
from ms2img.io.library import DATA_DIR, read_library


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bundled_files_read_with_their_polarity():
    neg = read_library(DATA_DIR / "PhenolicsDB_neg.msp")
    assert len(neg) == 168 and {s.polarity for s in neg} == {"negative"} and {s.adduct for s in neg} == {"[M-H]-"}
    assert all(s.rt is not None and s.peaks.shape == (len(s.mz), 2) for s in neg)
    mixed = read_library(DATA_DIR / "testdata.mgf")  # IONMODE=n/a with CHARGE=0: unknown
    assert {s.polarity for s in mixed} == {"negative", "positive", "unknown"}


def test_polarity_from_adduct_then_charge(tmp_path):
    msp = _write(tmp_path, "a.msp", ["NAME: A", "PRECURSORMZ: 100.5", "PRECURSORTYPE: [M+H]+", "Num Peaks: 1", "50 10"])
    assert [(s.name, s.polarity, s.precursor_mz) for s in read_library(msp)] == [("A", "positive", 100.5)]
    mgf = _write(tmp_path, "b.mgf", ["BEGIN IONS", "PEPMASS=200.5", "CHARGE=1-", "TITLE=t", "60 1", "0 0", "END IONS"])
    (spec,) = read_library(mgf)
    assert (spec.name, spec.polarity, spec.peaks.tolist()) == ("t", "negative", [[60.0, 1.0]])


@pytest.mark.parametrize(
    ("name", "lines", "where"),
    [
        ("short.msp", ["NAME: A", "PRECURSORMZ: 1", "Num Peaks: 3", "50 10", "", "NAME: B", "Num Peaks: 1", "7 5"],
         "line 3: record lists fewer peaks"),
        ("odd.msp", ["NAME: A", "PRECURSORMZ: 1", "Num Peaks: 2", "50 10", "60"], "line 5: a peak line needs"),
        ("word.msp", ["NAME: A", "PRECURSORMZ: 1", "Num Peaks: two", "50 10"], "line 3: 'Num Peaks' is not a whole"),
        ("ends.msp", ["NAME: A", "PRECURSORMZ: 1", "Num Peaks: 3", "50 10"], "line 3: file ends 2 peak(s) short"),
        ("table.msp", ["a,b,c", "1,2,3"], "line 1: peaks before 'Num Peaks'"),
        ("peak.mgf", ["BEGIN IONS", "PEPMASS=100.5", "50 10", "abc 10", "END IONS"], "line 4: a peak line needs"),
        ("open.mgf", ["BEGIN IONS", "PEPMASS=1", "5 1", "BEGIN IONS", "PEPMASS=2", "6 1", "END IONS"],
         "line 4: BEGIN IONS inside the spectrum that starts at line 1"),
        ("cut.mgf", ["BEGIN IONS", "PEPMASS=1", "5 1", "END IONS", "BEGIN IONS", "PEPMASS=2", "6 1"],
         "line 5: spectrum has no END IONS"),
        ("mass.mgf", ["BEGIN IONS", "PEPMASS=abc", "5 1", "END IONS"], "line 2: PEPMASS is not a number"),
    ],
)  # fmt: skip
def test_malformed_library_is_one_line_naming_file_and_line(tmp_path, name, lines, where):
    path = _write(tmp_path, name, lines)
    with pytest.raises(InputFileError) as exc:
        read_library(path)
    message = str(exc.value)
    assert message.startswith(f"{path}, {where}") and "\n" not in message


def test_missing_or_empty_library(tmp_path):
    with pytest.raises(InputFileError, match="spectral library not found"):
        read_library(tmp_path / "nope.msp")
    with pytest.raises(InputFileError, match="no spectrum with a precursor m/z and peaks"):
        read_library(_write(tmp_path, "empty.msp", ["NAME: A", "COMMENT: no peaks here"]))
