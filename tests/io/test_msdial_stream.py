"""MS-DIAL exports read a block of lines at a time: the same result, errors and Parquet bytes as the whole file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from io_builders import msdial_lines, write_lines

import ms2img.io.ingest as ingest_mod
from ms2img.errors import InputFileError
from ms2img.io import msdial
from ms2img.io.ingest import PARQUET_OPTIONS, ingest, write_parquet_pieces
from ms2img.io.msdial import read_msdial
from ms2img.io.result import AlignedFeatures

MSDIALR = "MSDIAL_Alignment_result_LC-MS.txt"
GNPS = "gnps_msdial_pasef_arabidopsis/GnpsTable_1_20198191357_PASEF.txt"


def whole_file(monkeypatch, *args, **kwargs):
    """``read_msdial`` with the block reader off: the whole-file reader alone (the reference)."""
    with monkeypatch.context() as m:
        m.setattr(msdial, "_read_blocks", lambda *a: (None, None))
        return read_msdial(*args, **kwargs)


def streamed(monkeypatch, *args, **kwargs):
    """``read_msdial`` that must take the block reader (the whole-file reader would raise)."""

    def refuse(*a):
        raise AssertionError("the block reader declined a plain file")

    with monkeypatch.context() as m:
        m.setattr(msdial, "_read_whole", refuse)
        return read_msdial(*args, **kwargs)


def assert_same(a, b) -> None:
    assert a.table.equals(b.table)  # values, order, schema and dictionaries
    assert np.array_equal(a.sample_of_row, b.sample_of_row)
    assert a.samples.equals(b.samples)
    assert a.warnings == b.warnings
    assert a.precursors_without_msms == b.precursors_without_msms


def body_line_bytes(path) -> float:
    lines = path.read_bytes().split(b"\n")
    h = next(i for i, ln in enumerate(lines) if ln.startswith(b"Alignment ID"))
    return float(np.mean([len(ln) + 1 for ln in lines[h + 1 :] if ln]))


@pytest.fixture
def real_exports(test_data, shared_data):
    paths = [test_data / MSDIALR]
    if (shared_data / GNPS).is_file():
        paths.append(shared_data / GNPS)
    return paths


@pytest.mark.parametrize("rows", [1, 2, 7])
@pytest.mark.parametrize("mode", ["column", "file"])
def test_blocks_of_any_size_give_the_whole_file_result(real_exports, monkeypatch, rows, mode):
    for path in real_exports if rows > 1 else real_exports[:1]:  # a block per line: the small export only
        reference = whole_file(monkeypatch, path, accession_from=mode, expand_types=("Sample",))
        size = 1 if rows == 1 else int(rows * body_line_bytes(path))
        assert_same(
            streamed(monkeypatch, path, accession_from=mode, expand_types=("Sample",), block_bytes=size), reference
        )
    rng = np.random.default_rng(7)
    for size in rng.integers(1, 20_000, size=4):  # block ends falling anywhere
        got = streamed(monkeypatch, real_exports[0], accession_from=mode, block_bytes=int(size))
        assert_same(got, whole_file(monkeypatch, real_exports[0], accession_from=mode))


def test_one_line_per_block_with_a_sample_sheet(test_data, tmp_path, monkeypatch):
    path = test_data / MSDIALR
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,replicate,type\n1a,one,1,Sample\n1b,one,2,Sample\n2a,two,1,Sample\n")
    got = streamed(monkeypatch, path, sample_sheet=sheet, block_bytes=1)
    assert_same(got, whole_file(monkeypatch, path, sample_sheet=sheet))


def test_line_blocks_cut_whole_lines_and_keep_end_blank_lines_together(tmp_path):
    data = b"".join(b"%d\tx%s\r\n" % (i, b"y" * (i % 13)) for i in range(200)) + b"\r\n\r\n\n"
    path = tmp_path / "lines.bin"
    path.write_bytes(data)
    for size in (1, 5, 17, 64, 1000, 10**6):
        with path.open("rb") as fh:
            blocks = list(msdial._line_blocks(fh, fh.read(11), size))
        assert b"".join(b for b, _ in blocks) == data
        assert [last for _, last in blocks] == [False] * (len(blocks) - 1) + [True]
        for block, last in blocks[:-1]:
            assert block.endswith(b"\n") and (len(block) >= size or last)
        assert blocks[-1][0].endswith(b"\r\n\r\n\n")  # the blank lines at the end stay in the last block
        assert all(not b.startswith((b"\r", b"\n")) for b, _ in blocks)


def edited(path, out, edits: dict[int, dict[str, str]], extra: bytes = b"", encoding="utf-8"):
    """A copy of an export with cells replaced: ``{data row (0-based): {column: text}}``."""
    lines = path.read_bytes().split(b"\n")
    h = next(i for i, ln in enumerate(lines) if ln.startswith(b"Alignment ID"))
    header = lines[h].rstrip(b"\r").decode().split("\t")
    for r, cells in edits.items():
        fields = lines[h + 1 + r].split(b"\t")
        for name, text in cells.items():
            fields[header.index(name)] = text.encode(encoding)
        lines[h + 1 + r] = b"\t".join(fields)
    out.write_bytes(b"\n".join(lines) + extra)
    return out


UNUSUAL = {  # files the block reader hands to the whole-file reader, which reads them
    "na_height_late": ({150: {"1b": "NA"}}, b""),
    "windows_1252_late": ({150: {"Metabolite name": "5\u00b5M"}}, b""),
    "trailing_blank_lines": ({}, b"\r\n\r\n\n"),
}


@pytest.mark.parametrize("case", sorted(UNUSUAL))
def test_unusual_files_give_the_whole_file_result(test_data, tmp_path, monkeypatch, case):
    edits, extra = UNUSUAL[case]
    enc = "cp1252" if "1252" in case else "utf-8"
    path = edited(test_data / MSDIALR, tmp_path / f"{case}.txt", edits, extra, enc)
    for size in (1, 3000):
        assert_same(read_msdial(path, block_bytes=size), whole_file(monkeypatch, path))


def test_blank_line_in_a_late_block_is_skipped_as_before(test_data, tmp_path, monkeypatch):
    lines = (test_data / MSDIALR).read_bytes().split(b"\n")
    lines.insert(200, b"\r")
    path = tmp_path / "blank.txt"
    path.write_bytes(b"\n".join(lines))
    result = read_msdial(path, block_bytes=1)
    assert_same(result, whole_file(monkeypatch, path))
    assert result.table.num_rows == read_msdial(test_data / MSDIALR).table.num_rows


BAD = {  # data row -> cells; the error names the file, the line and the value
    "mz_not_a_number": {150: {"Average Mz": "zz"}},
    "negative_height": {150: {"2a": "-5"}},
    "broken_msms": {150: {"MS/MS spectrum": "12.3:4 5x:6"}},
    "empty_id": {150: {"Alignment ID": " "}},
    "duplicate_id": {150: {"Alignment ID": "3"}},
    "two_errors": {20: {"1a": "-1"}, 150: {"Average Mz": "zz"}},  # the m/z column is checked first, as before
    "two_mz_errors": {20: {"Average Mz": "-1"}, 150: {"Average Mz": "zz"}},  # "not a number" comes first
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_errors_in_late_blocks_are_the_whole_file_errors(test_data, tmp_path, monkeypatch, case):
    path = edited(test_data / MSDIALR, tmp_path / f"{case}.txt", BAD[case])
    with pytest.raises(InputFileError) as ref:
        whole_file(monkeypatch, path)
    for size in (1, 2000, 1 << 24):
        with pytest.raises(InputFileError) as got:
            read_msdial(path, block_bytes=size)
        assert str(got.value) == str(ref.value)
    assert str(path) in str(ref.value) and ", line " in str(ref.value)


def test_ragged_row_and_nul_byte_late_name_their_line(test_data, tmp_path):
    lines = (test_data / MSDIALR).read_bytes().split(b"\n")
    h = next(i for i, ln in enumerate(lines) if ln.startswith(b"Alignment ID"))
    ragged = list(lines)
    ragged[h + 151] = ragged[h + 151].rstrip(b"\r") + b"\textra\r"
    (tmp_path / "ragged.txt").write_bytes(b"\n".join(ragged))
    nul = list(lines)
    nul[h + 151] = nul[h + 151].replace(b"\t", b"\t\x00", 1)
    (tmp_path / "nul.txt").write_bytes(b"\n".join(nul))
    line = h + 152
    with pytest.raises(InputFileError, match=rf"ragged\.txt, line {line}: has \d+ fields, the header has"):
        read_msdial(tmp_path / "ragged.txt", block_bytes=1)
    with pytest.raises(InputFileError, match=rf"nul\.txt, line {line}: binary data \(NUL byte\)"):
        read_msdial(tmp_path / "nul.txt", block_bytes=1)


def test_write_parquet_pieces_writes_what_write_table_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_mod, "ROW_GROUP_ROWS", 100)
    rng = np.random.default_rng(3)
    n = 1234
    ids = pa.array([f"f{i}" for i in range(40)])
    table = pa.table(
        {
            "feature_id": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 40, n).astype(np.int32)), ids),
            "fragment_mz": pa.array(rng.random(n) * 500),
        }
    )
    cuts = np.sort(rng.choice(np.arange(1, n), size=15, replace=False))
    pieces = [table.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
    pq.write_table(table, tmp_path / "whole.parquet", row_group_size=100, **PARQUET_OPTIONS)
    assert write_parquet_pieces(iter(pieces), tmp_path / "pieces.parquet") == n
    assert (tmp_path / "pieces.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()


@pytest.mark.parametrize("folder", [False, True])
def test_ingest_streams_events_without_the_whole_table(test_data, tmp_path, monkeypatch, folder):
    """Each accession written row group by row group from the parsed features: the bytes of writing its slice
    of the whole events table at once."""
    monkeypatch.setattr(ingest_mod, "ROW_GROUP_ROWS", 500)
    monkeypatch.setattr(msdial, "STREAM_BLOCK_BYTES", 3000)
    src = test_data / MSDIALR
    if folder:  # several exports: each file one accession, its sample columns replicates (sample-major rows)
        inputs = tmp_path / "exports"
        inputs.mkdir()
        (inputs / "A.txt").write_bytes(src.read_bytes())
        write_lines(inputs / "B.txt", msdial_lines())
    else:
        inputs = src
    expected = {}
    for path in sorted(inputs.iterdir()) if folder else [inputs]:
        result = read_msdial(path, accession_from="file" if folder else "column", expand_types=("Sample",))
        table = result.table
        for acc in dict.fromkeys(table.column("accession").to_pylist()):
            rows = table.filter(pc.equal(table.column("accession").cast(pa.string()), acc))
            expected[acc] = tmp_path / f"expected-{acc}.parquet"
            pq.write_table(rows, expected[acc], row_group_size=500, **PARQUET_OPTIONS)

    def no_whole_table(self):
        raise AssertionError("ingest built the whole events table")

    monkeypatch.setattr(AlignedFeatures, "table", no_whole_table)
    summary = ingest([inputs], tmp_path / "events")
    assert summary.accessions == len(expected)
    for acc, path in expected.items():
        written = tmp_path / "events" / f"{acc}.parquet"
        assert written.read_bytes() == path.read_bytes(), acc
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in expected.values()) == summary.events


def test_parts_of_one_accession_from_two_exports_merge_a_row_group_at_a_time(test_data, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_mod, "ROW_GROUP_ROWS", 50)
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "demo.txt").write_bytes((test_data / MSDIALR).read_bytes())
    write_lines(exports / "built.txt", msdial_lines())
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("sample,accession,replicate,type\n1a,P,1,Sample\ns1,P,2,Sample\n")
    expected = []
    for path in sorted(exports.iterdir()):  # the order ingest reads a folder in
        table = read_msdial(path, sample_sheet=sheet, accession_from="file").table
        expected.append(table.filter(pc.equal(table.column("accession").cast(pa.string()), "P")))

    def whole_part(*args, **kwargs):
        raise AssertionError("a part was read whole")

    monkeypatch.setattr(ingest_mod.pq, "read_table", whole_part)
    ingest([exports], tmp_path / "events", sample_sheet=sheet, allow_mixed_polarity=True)
    written = pq.ParquetFile(tmp_path / "events" / "P.parquet")
    assert {written.metadata.row_group(i).num_rows for i in range(written.num_row_groups - 1)} == {50}
    got = written.read().to_pandas()
    want = pa.concat_tables(expected).to_pandas()
    assert got.astype(str).equals(want.astype(str)) and got.equals(want)
