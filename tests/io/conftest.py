"""Fixtures for the reader tests: small, fully known input files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from io_builders import QUANT_HEADER, QUANT_ROWS, RAW_SCANS, mgf_lines, msdial_lines, mzml_text, mzxml_text, write_lines


@pytest.fixture
def msdial_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "export.txt", msdial_lines())


@pytest.fixture
def quant_pair(tmp_path: Path) -> tuple[Path, Path]:
    quant = write_lines(tmp_path / "quant.csv", [QUANT_HEADER, *QUANT_ROWS])
    mgf = write_lines(tmp_path / "quant.mgf", mgf_lines())
    return quant, mgf


@pytest.fixture
def mzml_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.mzML"
    path.write_text(mzml_text(RAW_SCANS), encoding="utf-8")
    return path


@pytest.fixture
def mzxml_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.mzXML"
    path.write_text(mzxml_text(RAW_SCANS), encoding="utf-8")
    return path
