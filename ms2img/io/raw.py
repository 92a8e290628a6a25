"""Raw DDA files (mzML, mzXML) -> canonical events: one precursor per MS2 scan, feature_id = scan id.

Precursor intensity comes from the scan's precursor ion when the file has it, else from the nearest peak within
10 ppm in the preceding MS1 scan, else 0 (counted in ``ReadResult.warnings``). RT is converted to minutes.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

with warnings.catch_warnings():  # pyteomics imports psims, which warns about an optional HDF5 plugin
    warnings.simplefilter("ignore")
    from pyteomics import mzml, mzxml

from ms2img.errors import InputFileError
from ms2img.io.result import ReadResult, make_manifest
from ms2img.io.sample_sheet import index_sheet, resolve
from ms2img.io.schema import MAX_INTENSITY, events_from_arrays
from ms2img.io.text import check_not_binary, line_of_offset, too_large

PPM = 10.0
NO_INTENSITY = "precursor intensity not found (set to 0: those scans draw nothing)"


def no_intensity(path: Path) -> str:
    """The warning of MS2 scans without a precursor intensity, naming the file (summed per kind over files)."""
    return f"{path.name}: {NO_INTENSITY}; e.g. MS2 scans before the first MS1 scan"


_ROOTS = {"mzML": (b"</mzML>", b"</indexedmzML>"), "mzXML": (b"</mzXML>",)}
_SCAN_NUMBER = re.compile(r"(?:^|\s)scan=(\d+)$")


def sniff_raw(head: bytes) -> str | None:
    """``"mzML"``, ``"mzXML"`` or None from the first few kB of a file."""
    if b"<" not in head:  # one memchr: text exports are told apart at once
        return None
    if b"<mzXML" in head:
        return "mzXML"
    if b"<mzML" in head or b"<indexedmzML" in head:
        return "mzML"
    return None


def read_raw(
    path: str | Path,
    accession: str | None = None,
    replicate: str | None = None,
    sample_sheet: pd.DataFrame | str | Path | None = None,
) -> ReadResult:
    """Read one mzML/mzXML file as one sample.

    Accession and replicate: the arguments when given, else the sample sheet's row for the file name, else the
    file stem and ``"1"``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    data = path.read_bytes()
    check_not_binary(path, data)
    kind = sniff_raw(data[:8192])
    if kind is None:
        raise InputFileError(path, "neither mzML nor mzXML (no <mzML> or <mzXML> root element)", line=1)
    tail = data.rstrip()[-64:]
    if not any(tail.endswith(end) for end in _ROOTS[kind]):
        raise InputFileError(
            path, f"file is truncated (it does not end with {_ROOTS[kind][-1].decode()})", line=data.count(b"\n") + 1
        )
    meta = resolve(index_sheet(sample_sheet), path.name, path.stem.strip(), "1", "Sample")  # "A .mzXML": A
    meta["accession"] = accession or meta["accession"]
    meta["replicate"] = replicate or meta["replicate"]
    try:
        scans, n_missing = _read_scans(path, data, kind)
    except etree.XMLSyntaxError as exc:
        raise InputFileError(path, f"malformed XML ({exc.msg})", line=max(exc.lineno or 1, 1)) from None

    ids = _feature_ids([s["id"] for s in scans])
    with_peaks = [s for s in scans if len(s["mz"])]
    counts = [len(s["mz"]) for s in with_peaks]
    events = events_from_arrays(
        accession=meta["accession"],
        replicate=meta["replicate"],
        feature_id=np.repeat(np.array([i for i, s in zip(ids, scans, strict=True) if len(s["mz"])], object), counts),
        precursor_mz=np.repeat([s["precursor_mz"] for s in with_peaks], counts),
        rt_min=np.repeat([s["rt"] for s in with_peaks], counts),
        precursor_intensity=np.repeat([s["precursor_intensity"] for s in with_peaks], counts),
        fragment_mz=np.concatenate([s["mz"] for s in with_peaks]) if with_peaks else np.empty(0),
        fragment_intensity=np.concatenate([s["intensity"] for s in with_peaks]) if with_peaks else np.empty(0),
        polarity=np.repeat(np.array([s["polarity"] for s in with_peaks], dtype=object), counts),
        charge=np.repeat(np.array([s["charge"] for s in with_peaks], dtype=np.int64), counts),
    )
    return ReadResult(
        events=events,
        samples=make_manifest([{**meta, "source": str(path)}]),
        source=path,
        precursors_without_msms=len(scans) - len(with_peaks),
        warnings={no_intensity(path): n_missing} if n_missing else {},
        aligned=False,
        rt_unit=f"minutes (the {kind} scan times, in the unit the file states)",
    )


def _read_scans(path: Path, data: bytes, kind: str) -> tuple[list[dict], int]:
    """One dict per MS2 scan (id, precursor_mz, precursor_intensity, rt, polarity, mz, intensity)."""
    scans, missing = [], 0
    last_ms1: tuple[np.ndarray, np.ndarray] | None = None
    last_id = None
    reader = mzml.MzML(str(path), use_index=False) if kind == "mzML" else mzxml.MzXML(str(path), use_index=False)
    with reader:
        while True:
            try:
                spec = next(reader, None)
                if spec is None:
                    break
                fields = _mzml_fields(spec) if kind == "mzML" else _mzxml_fields(spec)
            except etree.XMLSyntaxError:
                raise
            except Exception as exc:  # noqa: BLE001 - pyteomics raises many types (PyteomicsError, zlib.error, ...)
                line = _line_after(data, kind, last_id, exc)
                detail = (str(exc).splitlines() or [""])[0]
                raise InputFileError(
                    path, f"unreadable {kind} scan ({exc.__class__.__name__}: {detail})", line
                ) from None
            last_id = fields["id"]
            level, mz, intensity = fields["level"], spec.get("m/z array"), spec.get("intensity array")
            mz = np.asarray(mz if mz is not None else [], dtype=np.float64)
            intensity = np.asarray(intensity if intensity is not None else [], dtype=np.float64)
            if len(mz) != len(intensity):
                raise _scan_error(path, data, kind, fields["id"], "m/z and intensity arrays differ in length")
            if level == 1:
                order = np.argsort(mz, kind="stable")
                last_ms1 = (mz[order], intensity[order])
                continue
            if level != 2:
                continue
            pmz = fields["precursor_mz"]
            if pmz is None:
                raise _scan_error(
                    path, data, kind, fields["id"], "MS2 scan without a precursor m/z (DIA is not supported)"
                )
            if not np.isfinite(pmz) or pmz <= 0:
                raise _scan_error(path, data, kind, fields["id"], "precursor m/z is not a number > 0")
            if not (np.isfinite(mz).all() and np.isfinite(intensity).all()) or (intensity < 0).any():
                raise _scan_error(path, data, kind, fields["id"], "MS2 peaks with non-finite or negative values")
            if len(intensity) and intensity.max() > MAX_INTENSITY:
                problem = too_large(f"MS2 peak intensity {intensity.max():g}", MAX_INTENSITY)
                raise _scan_error(path, data, kind, fields["id"], problem)
            pint = fields["precursor_intensity"]
            if not pint or not np.isfinite(pint) or pint <= 0:
                pint = _ms1_intensity(last_ms1, pmz)
                missing += pint == 0
            if pint > MAX_INTENSITY:
                problem = too_large(f"precursor intensity {pint:g}", MAX_INTENSITY)
                raise _scan_error(path, data, kind, fields["id"], problem)
            scans.append({**fields, "precursor_intensity": float(pint), "mz": mz, "intensity": intensity})
    return scans, int(missing)


def _mzml_fields(spec: dict) -> dict:
    scan = (spec.get("scanList") or {}).get("scan") or [{}]
    ion: dict = {}
    precursors = (spec.get("precursorList") or {}).get("precursor") or []
    if precursors:
        ions = (precursors[0].get("selectedIonList") or {}).get("selectedIon") or [{}]
        ion = ions[0]
    polarity = (
        "positive"
        if "positive scan" in spec
        else "negative"
        if "negative scan" in spec
        else _filter_polarity(scan[0].get("filter string", ""))
    )
    return {
        "id": str(spec.get("id", spec.get("index", ""))),
        "level": int(spec.get("ms level", 1)),
        "precursor_mz": _float(ion.get("selected ion m/z")),
        "precursor_intensity": _float(ion.get("peak intensity")),
        "rt": _minutes(scan[0].get("scan start time")),
        "polarity": polarity,
        "charge": _charge(ion.get("charge state")),
    }


def _mzxml_fields(spec: dict) -> dict:
    precursor = (spec.get("precursorMz") or [{}])[0]
    if not isinstance(precursor, dict):  # <precursorMz> without attributes comes back as its text
        precursor = {"precursorMz": precursor}
    sign = spec.get("polarity")
    return {
        "id": str(spec.get("num", spec.get("id", ""))),
        "level": int(spec.get("msLevel", 1)),
        "precursor_mz": _float(precursor.get("precursorMz")),
        "precursor_intensity": _float(precursor.get("precursorIntensity")),
        "rt": _minutes(spec.get("retentionTime")),
        "polarity": {"+": "positive", "-": "negative"}.get(sign, "unknown"),
        "charge": _charge(precursor.get("precursorCharge")),
    }


def _charge(value) -> int:
    """The precursor charge state the file gives (0 when absent or not a number: read as 1)."""
    try:
        return abs(int(float(value))) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _ms1_intensity(ms1: tuple[np.ndarray, np.ndarray] | None, mz: float) -> float:
    """Intensity of the peak nearest ``mz`` within ``PPM`` in a sorted MS1 spectrum; 0 when there is none."""
    if ms1 is None or not len(ms1[0]):
        return 0.0
    mzs, ints = ms1
    i = int(np.searchsorted(mzs, mz))
    best = min((j for j in (i - 1, i) if 0 <= j < len(mzs)), key=lambda j: abs(mzs[j] - mz))
    return float(ints[best]) if abs(mzs[best] - mz) <= mz * PPM * 1e-6 else 0.0


def _minutes(value) -> float:
    """pyteomics gives unit-aware floats; seconds -> minutes, minutes and unitless values unchanged."""
    if value is None:
        return float("nan")
    unit = str(getattr(value, "unit_info", "") or "").lower()
    return float(value) / 60.0 if unit in ("second", "s", "sec", "uo:0000010") else float(value)


def _float(value) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _filter_polarity(filter_string: str) -> str:
    """Thermo filter strings say ``FTMS + p ESI ...`` / ``FTMS - ...``."""
    m = re.match(r"^\S+\s+([+-])\s", str(filter_string))
    return {"+": "positive", "-": "negative"}[m.group(1)] if m else "unknown"


def _feature_ids(native_ids: list[str]) -> list[str]:
    """``"controllerType=0 controllerNumber=1 scan=2122"`` -> ``"2122"`` when that keeps ids unique."""
    short = [m.group(1) if (m := _SCAN_NUMBER.search(i)) else i for i in native_ids]
    return short if len(set(short)) == len(short) else native_ids


def _line_after(data: bytes, kind: str, scan_id: str | None, exc: Exception) -> int:
    """Best line for an error pyteomics raised after scan ``scan_id``: where the value it quotes appears, else
    the next scan element (pyteomics may read ahead, so the quoted value is the better clue)."""
    tag, attr = (b"<spectrum ", b'id="') if kind == "mzML" else (b"<scan ", b'num="')
    start = max(data.find(attr + scan_id.encode() + b'"'), 0) if scan_id is not None else 0
    quoted = re.search(r"could not convert string to \w+: \\?'([^'\\]{1,80})\\?'", str(exc))
    if quoted:
        value = quoted.group(1).encode()
        for needle in (b'"' + value + b'"', b">" + value + b"<"):
            pos = data.find(needle, start)
            if pos >= 0:
                return line_of_offset(data, pos)
    pos = data.find(tag, start + 1)
    return line_of_offset(data, pos) if pos >= 0 else 1


def _scan_error(path: Path, data: bytes, kind: str, scan_id: str, problem: str) -> InputFileError:
    """An error naming the line where the offending scan starts in the file."""
    attr = b'id="' if kind == "mzML" else b'num="'
    pos = data.find(attr + scan_id.encode() + b'"')
    line = line_of_offset(data, pos) if pos >= 0 else 1
    return InputFileError(path, f"scan '{scan_id}': {problem}", line=line)
