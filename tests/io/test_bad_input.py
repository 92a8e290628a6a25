"""Malformed inputs: every reader raises InputFileError naming the file and the 1-based line, and ingest
leaves the output folder exactly as it was."""

from __future__ import annotations

import copy
import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from io_builders import (
    QUANT_HEADER,
    QUANT_ROWS,
    RAW_SCANS,
    SAMPLES,
    mgf_lines,
    msdial_lines,
    mzml_text,
    mzxml_text,
)

from ms2img.errors import InputFileError
from ms2img.io.fbmn import read_fbmn
from ms2img.io.ingest import ingest
from ms2img.io.msdial import read_msdial
from ms2img.io.raw import read_raw
from ms2img.io.sample_sheet import read_sample_sheet

JUNK = np.random.default_rng(0).bytes(4096)


def text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def edit(lines: list[str], line: int, old: str, new: str) -> list[str]:
    """Replace ``old`` by ``new`` on 1-based ``line``."""
    out = list(lines)
    assert old in out[line - 1], (old, out[line - 1])
    out[line - 1] = out[line - 1].replace(old, new, 1)
    return out


def line_of(content: bytes, marker: bytes) -> int:
    return content[: content.index(marker)].count(b"\n") + 1


@dataclass
class Case:
    kind: str  # msdial | quant | mgf | mzML | mzXML | sheet
    content: bytes
    line: int | None  # None: any line (random bytes)
    words: str = ""


MS = msdial_lines()
Q = [QUANT_HEADER, *QUANT_ROWS]
G = mgf_lines()
MZML = mzml_text(RAW_SCANS).encode()
MZXML = mzxml_text(RAW_SCANS).encode()


def raw_with(scan_edit: Callable[[list[dict]], None], fmt: str) -> bytes:
    scans = copy.deepcopy(RAW_SCANS)
    scan_edit(scans)
    return (mzml_text(scans) if fmt == "mzML" else mzxml_text(scans)).encode()


def _set(i: int, key: str, value):
    return lambda scans: scans[i].__setitem__(key, value)


CASES = {
    # --- MS-DIAL export: lines 1-4 metadata, 5 header, 6-8 features
    "msdial-truncated": Case("msdial", text(MS[:-1] + [MS[-1][:14]]), 8, "fields"),
    "msdial-wrong-delimiter": Case("msdial", text([ln.replace("\t", ",") for ln in MS]), 5, "comma-separated"),
    "msdial-missing-header": Case("msdial", text(MS[:4] + MS[5:]), 1, "no header row"),
    "msdial-non-numeric-mz": Case("msdial", text(edit(MS, 6, "200.1", "2OO.1")), 6, "Average Mz"),
    "msdial-non-numeric-rt": Case("msdial", text(edit(MS, 8, "3.5", "n/a?")), 8, "Average Rt(min)"),
    "msdial-negative-height": Case("msdial", text(edit(MS, 7, "\t2000\t", "\t-2000\t")), 7, "negative"),
    "msdial-negative-msms-intensity": Case("msdial", text(edit(MS, 6, "50.1:100", "50.1:-100")), 6, "negative"),
    # a height or intensity no detector reports (MAX_INTENSITY, 1e12): the cell's line, not a validate error later
    "msdial-huge-height": Case("msdial", text(edit(MS, 7, "\t2000\t", "\t1e30\t")), 7, "1e30 is above 1e+12"),
    "msdial-huge-msms-intensity": Case("msdial", text(edit(MS, 6, "50.1:100", "50.1:2e13")), 6, "above 1e+12"),
    "msdial-utf16": Case("msdial", text(MS).decode().encode("utf-16"), 1, "UTF-16 text: save it as UTF-8"),
    "msdial-utf16-no-bom": Case("msdial", text(MS).decode().encode("utf-16-le"), 1, "UTF-16 text: save it as UTF-8"),
    "msdial-garbage-msms": Case("msdial", text(edit(MS, 8, "150.5:20", "150.5:20 %&!")), 8, "'%&!'"),
    "msdial-duplicate-samples": Case(
        "msdial", text(msdial_lines(samples=["s1", "s1", *SAMPLES[2:]])), 5, "duplicate sample column"
    ),
    "msdial-duplicate-id": Case("msdial", text(edit(MS, 7, "2\t", "1\t")), 7, "duplicate Alignment ID"),
    "msdial-missing-column": Case("msdial", text(edit(MS, 5, "Average Mz", "Avg Mz")), 5, "Average Mz"),
    "msdial-no-type-row": Case("msdial", text([MS[0], *MS[2:]]), 4, "'File type'"),
    "msdial-ragged-metadata": Case("msdial", text(edit(MS, 2, "\tNA", "")), 2, "metadata row"),
    "msdial-empty": Case("msdial", b"", 1, "empty"),
    "msdial-blank-lines": Case("msdial", b"\n\n  \n", 1, "empty"),
    "msdial-nul-byte": Case("msdial", text(MS).replace(b"\t2000\t", b"\t20\x0000\t", 1), 7, "binary"),
    "msdial-random-bytes": Case("msdial", JUNK, None),
    "msdial-gzip": Case("msdial", gzip.compress(text(MS)), 1, "gzip"),
    # --- quant CSV (valid MGF beside it): line 1 header, 2-4 features
    "quant-truncated": Case("quant", text(Q[:-1] + ["3,400.3,3.5,500"]), 4, "fields"),
    "quant-wrong-delimiter": Case("quant", text([ln.replace(",", ";") for ln in Q]), 1, "comma-separated"),
    "quant-missing-header": Case("quant", text(Q[1:]), 1, "'id'"),
    "quant-non-numeric-mz": Case("quant", text(edit(Q, 3, "300.2", "3OO.2")), 3, "'mz'"),
    "quant-negative-height": Case("quant", text(edit(Q, 4, ",600,", ",-600,")), 4, "negative"),
    "quant-huge-height": Case("quant", text(edit(Q, 4, ",600,", ",1.5e12,")), 4, "1.5e12 is above 1e+12"),
    "quant-utf16": Case("quant", text(Q).decode().encode("utf-16-be"), 1, "UTF-16 text"),
    "quant-duplicate-samples": Case(
        "quant", text(edit(Q, 1, "datafile:b.mzML:height", "datafile:a.mzML:height")), 1, "duplicate sample"
    ),
    "quant-duplicate-id": Case("quant", text(edit(Q, 4, "3,", "2,")), 4, "duplicate feature id"),
    "quant-empty": Case("quant", b"", 1, "empty"),
    "quant-random-bytes": Case("quant", JUNK, None),
    "quant-gzip": Case("quant", gzip.compress(text(Q)), 1, "gzip"),
    # --- MGF (valid quant table): block 1 is lines 1-8 with peaks on 6-7, block 2 begins on line 10
    "mgf-garbage-peak": Case("mgf", text(edit(G, 7, "80.2 50", "80.2 fifty")), 7, "not 'm/z intensity'"),
    "mgf-non-numeric-mz": Case("mgf", text(edit(G, 6, "50.1 100", "5O.1 100")), 6, "not 'm/z intensity'"),
    "mgf-negative-intensity": Case("mgf", text(edit(G, 7, "80.2 50", "80.2 -50")), 7, "negative"),
    "mgf-huge-intensity": Case("mgf", text(edit(G, 7, "80.2 50", "80.2 1e30")), 7, "above 1e+12"),
    "mgf-truncated": Case("mgf", text(G[:-2]), len(G) - 2, "truncated"),
    "mgf-missing-id": Case("mgf", text(edit(G, 2, "FEATURE_ID=1", "TITLE=x")), 1, "FEATURE_ID"),
    "mgf-duplicate-feature": Case("mgf", text(edit(G, 11, "FEATURE_ID=3", "FEATURE_ID=1")), 10, "second spectrum"),
    "mgf-no-blocks": Case("mgf", b"just text\n", 1, "BEGIN IONS"),
    "mgf-empty": Case("mgf", b"", 1, "empty"),
    "mgf-gzip": Case("mgf", gzip.compress(text(G)), 1, "gzip"),
    # --- mzML / mzXML
    "mzML-truncated": Case("mzML", MZML[: len(MZML) // 2], MZML[: len(MZML) // 2].count(b"\n") + 1, "truncated"),
    "mzML-broken-tag": Case(
        "mzML",
        MZML.replace(b"</scanList>", b"</scanLisst>", 1),
        line_of(MZML, b"</scanList>"),
        "malformed XML",
    ),
    "mzML-non-numeric-precursor": Case(
        "mzML", raw_with(_set(2, "pmz", "abc"), "mzML"), line_of(MZML, b'id="scan=3"'), "precursor m/z"
    ),
    "mzML-negative-intensity": Case(
        "mzML", raw_with(_set(3, "intensity", [1.0, -2.0, 3.0]), "mzML"), line_of(MZML, b'id="scan=4"'), "negative"
    ),
    "mzML-huge-intensity": Case(
        "mzML", raw_with(_set(3, "intensity", [1.0, 2e30, 3.0]), "mzML"), line_of(MZML, b'id="scan=4"'), "above 1e+12"
    ),
    "mzML-huge-precursor-intensity": Case(
        "mzML", raw_with(_set(1, "pint", 1e30), "mzML"), line_of(MZML, b'id="scan=2"'), "precursor intensity 1e+30"
    ),
    "mzML-not-xml": Case("mzML", b"hello\nworld\n", 1, "neither mzML nor mzXML"),
    "mzML-empty": Case("mzML", b"", 1, "empty"),
    "mzML-random-bytes": Case("mzML", JUNK, None),
    "mzML-gzip": Case("mzML", gzip.compress(MZML), 1, "gzip"),
    "mzXML-truncated": Case("mzXML", MZXML[:-40], MZXML[:-40].count(b"\n") + 1, "truncated"),
    "mzXML-non-numeric-precursor": Case(
        "mzXML", raw_with(_set(1, "pmz", "x1"), "mzXML"), line_of(MZXML, b'num="2"') + 1, "x1"
    ),
    "mzXML-negative-intensity": Case(
        "mzXML", raw_with(_set(2, "intensity", [-7.0]), "mzXML"), line_of(MZXML, b'num="3"'), "negative"
    ),
    "mzXML-random-bytes": Case("mzXML", JUNK, None),
    # --- sample sheet (valid export)
    "sheet-missing-columns": Case("sheet", b"sample\ns1\n", 1, "missing column"),
    "sheet-duplicate-sample": Case("sheet", b"sample,accession\ns1,A\ns1,B\n", 3, "duplicate sample"),
    "sheet-unknown-type": Case("sheet", b"sample,accession,type\ns1,A,Solvent\n", 2, "unknown type"),
    "sheet-random-bytes": Case("sheet", JUNK, None),
    "sheet-utf16": Case("sheet", "sample,accession\ns1,A\n".encode("utf-16"), 1, "UTF-16 text"),
}
NAMES = {
    "msdial": "bad.txt",
    "quant": "bad.csv",
    "mgf": "bad.mgf",
    "mzML": "bad.mzML",
    "mzXML": "bad.mzXML",
    "sheet": "sheet.csv",
}


def materialise(case: Case, folder: Path) -> tuple[Path, dict]:
    """Write the bad file (and any good partner it needs); return it and the ingest arguments that reach it."""
    folder.mkdir(parents=True, exist_ok=True)
    bad = folder / NAMES[case.kind]
    bad.write_bytes(case.content)
    good = folder / "good.txt"
    good.write_bytes(text(MS))
    if case.kind == "quant":
        (folder / "bad.mgf").write_bytes(text(G))
    if case.kind == "mgf":
        (folder / "bad.csv").write_bytes(text(Q))
        return bad, {"inputs": [good, folder / "bad.csv"]}
    if case.kind == "sheet":
        return bad, {"inputs": [good], "sample_sheet": bad}
    return bad, {"inputs": [good, bad]}


def read_with_reader(case: Case, bad: Path) -> None:
    folder = bad.parent
    if case.kind == "msdial":
        read_msdial(bad)
    elif case.kind == "quant":
        read_fbmn(bad, folder / "bad.mgf")
    elif case.kind == "mgf":
        read_fbmn(folder / "bad.csv", bad)
    elif case.kind == "sheet":
        read_sample_sheet(bad)
    else:
        read_raw(bad)


def check(err: InputFileError, bad: Path, case: Case) -> None:
    msg = str(err)
    assert err.path == str(bad), msg
    assert err.line is not None and err.line >= 1, msg
    if case.line is not None:
        assert err.line == case.line, msg
    assert msg.startswith(f"{bad}, line {err.line}"), msg
    assert case.words in msg, msg
    assert "Traceback" not in msg


@pytest.mark.parametrize("name", list(CASES))
def test_reader_names_file_and_line(name, tmp_path):
    case = CASES[name]
    bad, _ = materialise(case, tmp_path / "in")
    with pytest.raises(InputFileError) as err:
        read_with_reader(case, bad)
    check(err.value, bad, case)


@pytest.mark.parametrize("name", list(CASES))
def test_ingest_leaves_out_dir_untouched(name, tmp_path):
    case = CASES[name]
    bad, kwargs = materialise(case, tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "OLD.parquet").write_bytes(b"previous run")
    (out / "samples.csv").write_text("previous manifest\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(InputFileError) as err:
        ingest(out_dir=out, **kwargs)
    check(err.value, bad, case)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no partial output, no staging leftovers


def test_good_partner_files_are_valid(tmp_path):
    """The bad-input cases only break what they mean to: the unedited builders read cleanly."""
    folder = tmp_path / "ok"
    folder.mkdir()
    (folder / "x.txt").write_bytes(text(MS))
    (folder / "q.csv").write_bytes(text(Q))
    (folder / "q.mgf").write_bytes(text(G))
    (folder / "r.mzML").write_bytes(MZML)
    (folder / "r2.mzXML").write_bytes(MZXML)
    inputs = [folder / "x.txt", folder / "q.csv", folder / "r.mzML", folder / "r2.mzXML"]
    summary = ingest(inputs, tmp_path / "o", allow_mixed_polarity=True)  # q.mgf is CHARGE=1-, the rest positive
    assert summary.files == 4 and summary.accessions == 6


def test_a_utf8_bom_before_windows_1252_text_is_not_read_into_the_header(tmp_path):
    """A file saved with a UTF-8 BOM and later given a Windows-1252 byte (an edit in another tool) fell back to
    Windows-1252 with the BOM decoded as 'ï»¿': assays.csv had no 'accession' column."""
    from ms2img.io.text import read_text_lines
    from ms2img.training.labels import read_assays

    p = tmp_path / "assays.csv"
    p.write_bytes(b"\xef\xbb\xbfaccession,DPPH\n\xc9corce,1.5\nRoot,2\n")
    assert read_text_lines(p)[0] == "accession,DPPH"
    assert read_assays(p)["accession"].tolist() == ["\xc9corce", "Root"]
