"""What every reader returns, plus the plumbing readers share (safe text loading, the sample manifest)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ms2img.errors import InputFileError
from ms2img.io.schema import SAMPLE_COLUMNS

_GZIP, _ZIP, _BZ2, _XZ = b"\x1f\x8b", b"PK\x03\x04", b"BZh", b"\xfd7zXZ"
# Control characters that never occur in a text export (tab, CR, LF and form feed are allowed).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass
class ReadResult:
    """One input's events (every sample incl. blanks and QC) and its sample manifest.

    ``precursors_without_msms`` counts features / MS2 scans that gave no fragments; ``warnings`` counts
    recoverable problems by kind (e.g. a precursor intensity that could not be found).
    """

    events: pd.DataFrame
    samples: pd.DataFrame
    source: Path
    precursors_without_msms: int = 0
    warnings: dict[str, int] = field(default_factory=dict)
    aligned: bool = True  # feature ids are shared across samples (needed for blank subtraction)


def make_manifest(rows: list[dict]) -> pd.DataFrame:
    """A sample manifest with exactly ``SAMPLE_COLUMNS`` (all strings) from a list of row dicts."""
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    return df.fillna("").astype(str).reset_index(drop=True)


def line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def check_not_binary(path: Path, data: bytes) -> None:
    """Reject empty and compressed/binary files with a message naming the file and line."""
    if not data.strip():
        raise InputFileError(path, "file is empty", line=1)
    for magic, kind in ((_GZIP, "gzip"), (_ZIP, "zip"), (_BZ2, "bzip2"), (_XZ, "xz")):
        if data.startswith(magic):
            raise InputFileError(path, f"file is {kind}-compressed; decompress it first", line=1)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputFileError(path, "binary data (NUL byte), not a text file", line=line_of_offset(data, nul))


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a text file (line ``i`` of the editor is ``lines[i - 1]``), rejecting binary content.

    UTF-8 (with or without BOM) first, then Windows-1252 (MS-DIAL on Windows). Lines are split on ``\\n`` only
    and a trailing ``\\r`` is removed, so line numbers match what an editor shows.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    data = path.read_bytes()
    check_not_binary(path, data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise InputFileError(
                path, "not a text file (undecodable bytes)", line=line_of_offset(data, exc.start)
            ) from None
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise InputFileError(path, "binary data (control characters), not a text file", line=line)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
