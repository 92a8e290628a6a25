"""The MGF side of an MZmine / GNPS FBMN pair: one MS2 spectrum per feature, keyed by ``FEATURE_ID`` (or ``SCANS``).

The file is scanned line by line first (structure, peak lines, parameter values), so a problem is reported on its
line; pyteomics then reads the same decoded text. ``fbmn`` joins the spectra to the quant table.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyteomics import mgf as pyteomics_mgf

from ms2img.errors import InputFileError
from ms2img.io.schema import CHARGE_CELL, MAX_INTENSITY, charge_from_text, polarity_of
from ms2img.io.text import NUMBER_TEXT, read_text_lines, too_large


@dataclass
class MgfSpectrum:
    """One MGF spectrum and what the join to a quant table checks."""

    mz: np.ndarray
    intensity: np.ndarray
    polarity: str
    charge: int  # 0 = unknown
    pepmass: float | None
    rt_s: float | None  # RTINSECONDS, or RTINMINUTES x 60
    line: int  # line of BEGIN IONS


@dataclass
class _Block:
    begin: int  # line of BEGIN IONS
    peaks: list[int]  # line of each peak


PARAMETER_VALUES = {  # what a block's parameter must hold (empty is left to the join's checks)
    "PEPMASS": (re.compile(rf"{NUMBER_TEXT}(?:\s+{NUMBER_TEXT})?"), "an m/z (and intensity) with a decimal point"),
    "RTINSECONDS": (re.compile(NUMBER_TEXT), "a number of seconds"),
    "RTINMINUTES": (re.compile(NUMBER_TEXT), "a number of minutes"),
    "CHARGE": (re.compile(rf"{CHARGE_CELL}(?:\s*(?:,|and)\s*{CHARGE_CELL})*"), "a charge such as 1+ or 2-"),
    "MSLEVEL": (re.compile(r"\d+"), "a whole number"),
}
_MARKERS = ("BEGIN IONS", "END IONS")


def _check_parameter(path: Path, line: str, i: int) -> None:
    """A parameter pyteomics would misread or fail on (``PEPMASS=190,0481``, ``CHARGE=abc``): one line naming it,
    not "not a readable MGF" on line 1."""
    key, _, value = line.partition("=")
    key, value = key.strip().upper(), value.strip()
    rule = PARAMETER_VALUES.get(key)
    if rule is not None and value and not rule[0].fullmatch(value):
        raise InputFileError(path, f"{key} '{value[:40]}' is not {rule[1]}", line=i)


def scan_mgf(path: Path, lines: list[str]) -> list[_Block]:
    """Check the MGF's structure and peak lines, remembering line numbers for later error messages."""
    blocks: list[_Block] = []
    current: _Block | None = None
    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line[0] in "#;!/":
            continue
        upper = line.upper()
        if upper == "BEGIN IONS":
            if current is not None:
                raise InputFileError(path, f"BEGIN IONS inside the block opened on line {current.begin}", line=i)
            current = _Block(i, [])
        elif upper == "END IONS":
            if current is None:
                raise InputFileError(path, "END IONS without BEGIN IONS", line=i)
            blocks.append(current)
            current = None
        elif current is None and not blocks:
            continue  # global parameters above the first block
        elif current is None:  # between blocks: a BEGIN IONS is missing, said here, not at the END IONS lines later
            raise InputFileError(path, f"'{line[:40]}' is between blocks, outside BEGIN IONS ... END IONS (a "
                                 "missing BEGIN IONS?)", line=i)  # fmt: skip
        elif "=" in line and not line[0].isdigit():
            _check_parameter(path, line, i)
        else:
            parts = line.split()
            try:
                mz, intensity = float(parts[0]), float(parts[1])
            except (ValueError, IndexError):
                raise InputFileError(path, f"peak line '{line[:40]}' is not 'm/z intensity'", line=i) from None
            if not (np.isfinite(mz) and np.isfinite(intensity)):
                raise InputFileError(path, "peak m/z or intensity is not a finite number", line=i)
            if mz <= 0:
                raise InputFileError(path, f"peak m/z {mz:g} must be > 0", line=i)
            if intensity < 0:
                raise InputFileError(path, f"peak intensity {intensity:g} is negative", line=i)
            if intensity > MAX_INTENSITY:
                problem = too_large(f"peak intensity {intensity:g}", MAX_INTENSITY)
                raise InputFileError(path, problem, line=i)
            current.peaks.append(i)
    if current is not None:
        raise InputFileError(
            path, f"file ends inside the block opened on line {current.begin} (truncated?)", line=len(lines)
        )
    if not blocks:
        raise InputFileError(path, "no 'BEGIN IONS' blocks (is this an MGF file?)", line=1)
    return blocks


def read_mgf(path: Path) -> dict[str, MgfSpectrum]:
    """Feature id -> spectrum (peaks, polarity, charge, PEPMASS, RT) for each MS2 spectrum of the MGF."""
    lines = read_text_lines(path)
    blocks = scan_mgf(path, lines)
    # pyteomics reads the text as decoded above (a UTF-8 BOM, which it took for part of the first line, or a
    # Windows-1252 byte, which it could not decode, made it disagree with the scan), 'begin ions' in upper case
    text = io.StringIO("\n".join(m if (m := ln.strip().upper()) in _MARKERS else ln for ln in lines))
    try:
        with pyteomics_mgf.read(text, use_index=False, convert_arrays=1, read_charges=False) as reader:
            spectra = list(reader)
    except Exception as exc:  # noqa: BLE001 - the scan above catches what we know; name the file for the rest
        raise InputFileError(path, f"not a readable MGF ({exc.__class__.__name__}: {exc})", line=1) from None
    if len(spectra) != len(blocks):
        raise InputFileError(path, f"pyteomics read {len(spectra)} spectra, the file has {len(blocks)} blocks", line=1)
    out: dict[str, MgfSpectrum] = {}
    for block, spec in zip(blocks, spectra, strict=True):
        params = spec["params"]
        if str(params.get("mslevel", "2")).strip() not in ("2", ""):
            continue
        fid = str(params.get("feature_id", params.get("scans", ""))).strip()
        if not fid:
            raise InputFileError(path, "spectrum has neither FEATURE_ID nor SCANS", line=block.begin)
        if fid in out:
            raise InputFileError(path, f"second spectrum for feature '{fid}'", line=block.begin)
        mz = np.asarray(spec["m/z array"], dtype=np.float64)
        intensity = np.asarray(spec["intensity array"], dtype=np.float64)
        pepmass = _pepmass(params)
        if pepmass is None and "pepmass" in params:  # written but empty, 0 or negative: not an m/z to join on
            value = params["pepmass"][0] if isinstance(params["pepmass"], (list, tuple)) else params["pepmass"]
            said = "" if value is None else value
            raise InputFileError(path, f"PEPMASS '{said}' of feature '{fid}' is not an m/z > 0", line=block.begin)
        out[fid] = MgfSpectrum(
            mz, intensity, _polarity(params), _mgf_charge(params), pepmass, _rt_seconds(params), block.begin
        )
    return out


def _mgf_charge(params: dict) -> int:
    """``CHARGE=2+`` -> 2 (pyteomics gives a list of signed charges); 0 when absent or ``0+``."""
    value = params.get("charge")
    if isinstance(value, (list, tuple)):
        return abs(int(value[0])) if len(value) else 0
    return charge_from_text(value)


def _pepmass(params: dict) -> float | None:
    value = params.get("pepmass")
    value = value[0] if isinstance(value, (list, tuple)) and value else value
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) and out > 0 else None


def _rt_seconds(params: dict) -> float | None:
    for key, factor in (("rtinseconds", 1.0), ("rtinminutes", 60.0)):
        try:
            value = float(params[key]) * factor
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value):
            return value
    return None


def _polarity(params: dict) -> str:
    """From ``ION`` (adduct), ``IONMODE`` or the sign of a non-zero ``CHARGE``; else unknown."""
    for value in (params.get("ion"), params.get("ionmode")):
        if (pol := polarity_of(value)) != "unknown":
            return pol
    charge = str(params.get("charge", "")).strip()
    return polarity_of(charge) if re.fullmatch(r"[1-9]\d*[+-]|[+-][1-9]\d*", charge) else "unknown"
