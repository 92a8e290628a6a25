"""Spectral libraries (MSP, MGF) read through matchms: the one reader for annotation and the synthetic cohort.

Any MSP (NIST text: ``NAME``, ``PRECURSORMZ``, ``PRECURSORTYPE``, ``IONMODE``, ``Num Peaks`` and "mz int" lines;
MassBank's ``MassBank_NISTformat.msp``, an MS-DIAL MSP, PhenolicsDB) or MGF (``PEPMASS``, ``NAME`` or ``TITLE``,
``IONMODE``) file; ``BEGIN IONS`` in the first 20,000 characters means MGF. Records without a precursor m/z or a
positive peak are skipped, as both readers this one replaced did. Polarity comes from the ion mode, else the adduct,
else the sign of the charge, each judged by :func:`ms2img.io.schema.polarity_of` (the one polarity rule).

matchms forgives what it should not: an MSP record with fewer peaks than its ``Num Peaks`` swallows the next
record, a file that ends inside a record loses it, and the errors it does raise name no line. So the spectra it
yields are counted against the records the file declares, and on any mismatch or error a line scan names the
first bad line (:class:`ms2img.errors.InputFileError`, one line: ``<file>, line <n>: <problem>``).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ms2img.errors import InputFileError
from ms2img.io.schema import polarity_of

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # the bundled libraries (see its ATTRIBUTION.md)
MGF_MARK = "BEGIN IONS"


@dataclass
class LibrarySpectrum:
    """One reference MS/MS spectrum as the file gives it (intensities in the file's units)."""

    name: str
    precursor_mz: float
    polarity: str  # "positive", "negative" or "unknown"
    mz: np.ndarray
    intensity: np.ndarray
    rt: float | None = None
    formula: str = ""
    inchikey: str = ""
    smiles: str = ""
    source: str = ""  # the file name
    adduct: str = ""

    @property
    def peaks(self) -> np.ndarray:
        """(n, 2) float32 m/z and intensity: the layout ms_entropy indexes."""
        return np.column_stack([self.mz.astype(np.float32), self.intensity.astype(np.float32)])


def read_library(path: str | Path) -> list[LibrarySpectrum]:
    """Every usable spectrum of an MSP or MGF file (by content); a malformed file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "spectral library not found (an MSP or MGF file expected)")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(20000)
    except OSError as exc:
        raise InputFileError(path, f"cannot read library ({exc.strerror or exc})") from None
    is_mgf = MGF_MARK in head.upper()
    with warnings.catch_warnings():  # pyteomics imports psims, which warns about an optional HDF5 plugin
        warnings.simplefilter("ignore")
        from matchms.importing import load_from_mgf, load_from_msp
    logging.getLogger("matchms").setLevel(logging.ERROR)
    loader = load_from_mgf if is_mgf else load_from_msp
    try:
        found = list(loader(str(path), metadata_harmonization=False))
    except Exception as exc:  # noqa: BLE001 - matchms and pyteomics raise many types (RuntimeError, KeyError, ...)
        raise _malformed(path, is_mgf, f"{exc.__class__.__name__}: {' '.join(str(exc).split())}") from None
    if len(found) != _declared(path, is_mgf):
        raise _malformed(path, is_mgf, f"matchms read {len(found)} of the records the file declares")
    out = [spec for spec in (_spectrum(s, path.name) for s in found if s is not None) if spec is not None]
    if not out:
        raise InputFileError(path, "no spectrum with a precursor m/z and peaks (not an MSP or MGF library?)")
    return out


def _spectrum(s, source: str) -> LibrarySpectrum | None:
    """A matchms spectrum as a :class:`LibrarySpectrum`; None without a precursor m/z or a positive peak."""
    md = s.metadata
    prec = _float(md.get("precursor_mz", md.get("pepmass")))
    mz = np.asarray(s.peaks.mz, dtype=float)
    it = np.asarray(s.peaks.intensities, dtype=float)
    keep = it > 0
    if prec is None or not keep.any():
        return None
    adduct = str(md.get("adduct") or md.get("precursortype") or md.get("precursor_type") or md.get("ion") or "")
    pol = "unknown"
    for clue in (md.get("ionmode"), md.get("ion_mode"), md.get("polarity"), adduct, _signed(md.get("charge"))):
        pol = polarity_of(str(clue or ""))
        if pol != "unknown":
            break
    name = md.get("compound_name") or md.get("name") or md.get("title") or "unnamed"
    return LibrarySpectrum(
        name=str(name), precursor_mz=prec, polarity=pol, mz=mz[keep], intensity=it[keep],
        rt=_float(md.get("retention_time")), formula=str(md.get("formula") or ""),
        inchikey=str(md.get("inchikey") or ""), smiles=str(md.get("smiles") or ""), source=source, adduct=adduct,
    )  # fmt: skip


def _float(value: object) -> float | None:
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    try:
        return float(str(value).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def _signed(charge: object) -> str:
    """A charge as polarity_of reads it: ``+1`` / ``-2``; "" when zero or absent (matchms gives [0] for none)."""
    if isinstance(charge, list | tuple | np.ndarray):
        charge = charge[0] if len(charge) else None
    try:
        c = int(charge)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(charge or "")
    return f"{c:+d}" if c else ""


def _declared(path: Path, is_mgf: bool) -> int:
    """How many records the file declares: ``BEGIN IONS`` lines (MGF) or ``Num Peaks`` lines (MSP)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    pattern = r"^\s*BEGIN IONS\s*$" if is_mgf else r"^\s*num peaks\s*:"
    return len(re.findall(pattern, text, flags=re.IGNORECASE | re.MULTILINE))


def _malformed(path: Path, is_mgf: bool, detail: str) -> InputFileError:
    """The first bad line the scan finds; the reader's own words when the scan finds none."""
    found = (_mgf_problem if is_mgf else _msp_problem)(path)
    if found is None:
        return InputFileError(path, f"malformed {'MGF' if is_mgf else 'MSP'} library ({detail})")
    line, problem = found
    return InputFileError(path, problem, line=line)


def _msp_problem(path: Path) -> tuple[int, str] | None:
    """Line and problem of the first MSP line matchms would misread (its own line tests decide)."""
    from matchms.importing.load_from_msp import contains_metadata, get_peak_values

    left, start = None, 0  # peaks still owed by the record whose Num Peaks is at line ``start``
    n = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            if contains_metadata(line):
                if left:
                    return start, f"record lists fewer peaks than its 'Num Peaks' (line {n} starts the next)"
                key, _, value = line.partition(":")
                if key.strip().lower() == "num peaks":
                    try:
                        left, start = int(value), n
                    except ValueError:
                        return n, f"'Num Peaks' is not a whole number: {value.strip()!r}"
                    if left < 1:
                        return n, "'Num Peaks' must be at least 1"
                continue
            if left is None:
                return n, f"peaks before 'Num Peaks', or not an MSP line: {line[:60]!r}"
            try:
                mz, _ = get_peak_values(line.split('"')[0])
            except RuntimeError:
                return n, f"a peak line needs m/z and intensity pairs: {line[:60]!r}"
            left -= len(mz)
            if left < 0:
                return start, f"record lists more peaks than its 'Num Peaks' (line {n})"
            left = left or None
    if left:
        return start, f"file ends {left} peak(s) short of this record's 'Num Peaks'"
    return None


def _mgf_problem(path: Path) -> tuple[int, str] | None:
    """Line and problem of the first MGF line pyteomics (under matchms) cannot read."""
    start = 0  # line of the open BEGIN IONS; 0 outside a spectrum
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                return n, "not UTF-8 text (save the MGF as UTF-8)"
            upper = line.upper()
            if upper == MGF_MARK:
                if start:
                    return n, f"BEGIN IONS inside the spectrum that starts at line {start} (END IONS missing?)"
                start = n
            elif upper == "END IONS":
                start = 0
            elif start and line and line[0] not in "#;!/":
                key, eq, value = line.partition("=")
                if eq and key.strip().upper() == "PEPMASS" and _float(value) is None:
                    return n, f"PEPMASS is not a number: {value.strip()!r}"
                if not eq:
                    try:
                        [float(v) for v in line.split()[:2]]  # pyteomics skips a lone m/z, fails on text
                    except ValueError:
                        return n, f"a peak line needs an m/z and an intensity: {line[:60]!r}"
    if start:
        return start, "spectrum has no END IONS"
    return None
