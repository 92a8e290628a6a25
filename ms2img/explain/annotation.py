"""Library annotation of driver spectra with Flash entropy search (ms_entropy).

The bundled library is PhenolicsDB (``ms2img/data/PhenolicsDB_{pos,neg}.msp``, CC BY 4.0, LC-ESI-QTOF spectra of
phenolic standards at several collision energies). **Other libraries drop in by path**: any MSP (NIST format:
``NAME``, ``PRECURSORMZ``, ``PRECURSORTYPE``, ``IONMODE``, ``Num Peaks``, "mz int" lines; for example the
MassBank ``MassBank_NISTformat.msp`` release file or an MS-DIAL MSP) or MGF (``PEPMASS``, ``NAME`` or ``TITLE``,
``IONMODE``) file listed under ``explain.libraries`` in ``params.yaml`` (default: the two PhenolicsDB files).
Spectra without a polarity are searched for both.

Two searches per query, each against the library of the query's polarity:

* **identity**: precursor m/z within ``ms1_tol_da``, entropy similarity of the fragments (``library_*`` columns);
* **analogue** (open search): every library spectrum regardless of precursor, so a glycoside or methyl ester of a
  standard still finds the standard through their shared fragments (``analogue_*`` columns).

Scores are entropy similarities in [0, 1]; ``matched_peaks`` counts the query peaks that matched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ms2img.errors import InputFileError
from ms2img.io.schema import polarity_of

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BUNDLED_LIBRARIES = (DATA_DIR / "PhenolicsDB_neg.msp", DATA_DIR / "PhenolicsDB_pos.msp")
POLARITIES = ("negative", "positive")


@dataclass
class LibrarySpectrum:
    """One reference spectrum: ``peaks`` (n, 2) float32 m/z and intensity, metadata as read."""

    name: str
    precursor_mz: float
    polarity: str | None
    peaks: np.ndarray
    adduct: str = ""
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)


def _polarity(value: str | None) -> str | None:
    """The readers' polarity rule (:func:`ms2img.io.schema.polarity_of`), None when it cannot tell."""
    pol = polarity_of(value)
    return None if pol == "unknown" else pol


def read_msp(path: str | Path) -> list[LibrarySpectrum]:
    """An MSP (NIST text) library; records without a precursor m/z or peaks are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputFileError(path, f"cannot read library ({exc.strerror or exc})") from None
    out = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        meta: dict[str, str] = {}
        mz, inten = [], []
        for line in block.split("\n"):
            line = line.strip()
            if not line:
                continue
            if ":" in line and not line[0].isdigit():
                key, _, value = line.partition(":")
                meta[key.strip().upper()] = value.strip()
                continue
            parts = re.split(r"[\s,;:]+", line)
            try:
                mz.append(float(parts[0]))
                inten.append(float(parts[1]))
            except (ValueError, IndexError):
                continue
        spec = _make(meta, mz, inten, path)
        if spec is not None:
            out.append(spec)
    return out


def read_mgf(path: str | Path) -> list[LibrarySpectrum]:
    """An MGF library (pyteomics); ``PEPMASS`` is the precursor m/z."""
    from pyteomics import mgf

    path = Path(path)
    out = []
    try:
        with mgf.read(str(path), use_index=False, convert_arrays=1) as reader:
            for rec in reader:
                params = {str(k).upper(): v for k, v in rec["params"].items()}
                pep = params.get("PEPMASS")
                meta = {k: (str(v[0]) if isinstance(v, tuple) else str(v)) for k, v in params.items()}
                if isinstance(pep, tuple):
                    meta["PRECURSORMZ"] = str(pep[0])
                elif pep is not None:
                    meta["PRECURSORMZ"] = str(pep)
                meta.setdefault("NAME", meta.get("TITLE", ""))
                spec = _make(meta, rec["m/z array"], rec["intensity array"], path)
                if spec is not None:
                    out.append(spec)
    except (OSError, ValueError, KeyError) as exc:
        raise InputFileError(path, f"unreadable MGF library ({exc.__class__.__name__}: {exc})") from None
    return out


def _make(meta: dict[str, str], mz: Sequence[float], inten: Sequence[float], path: Path) -> LibrarySpectrum | None:
    prec = meta.get("PRECURSORMZ") or meta.get("PRECURSOR_MZ") or meta.get("PEPMASS")
    try:
        prec_mz = float(str(prec).split()[0])
    except (TypeError, ValueError, IndexError):
        return None
    peaks = np.column_stack([np.asarray(mz, dtype=np.float32), np.asarray(inten, dtype=np.float32)])
    if peaks.size == 0:
        return None
    adduct = meta.get("PRECURSORTYPE") or meta.get("ADDUCT") or meta.get("ION") or ""
    pol = _polarity(meta.get("IONMODE") or meta.get("ION_MODE") or meta.get("POLARITY")) or _polarity(adduct)
    name = meta.get("NAME") or meta.get("COMPOUND_NAME") or meta.get("TITLE") or "unnamed"
    return LibrarySpectrum(name, prec_mz, pol, peaks, adduct, path.name, meta)


def read_library(path: str | Path) -> list[LibrarySpectrum]:
    """MSP or MGF by content (``BEGIN IONS`` means MGF)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "spectral library not found (explain.libraries lists MSP/MGF paths)")
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.read(20000)
    return read_mgf(path) if "BEGIN IONS" in head.upper() else read_msp(path)


class SpectralLibrary:
    """Flash entropy search indices (one per polarity) over one or more MSP/MGF files."""

    def __init__(
        self,
        spectra: Iterable[LibrarySpectrum],
        ms2_tol_da: float = 0.02,
        ms1_tol_da: float = 0.01,
    ) -> None:
        from ms_entropy import FlashEntropySearch

        self.ms2_tol_da = float(ms2_tol_da)
        self.ms1_tol_da = float(ms1_tol_da)
        self.spectra = list(spectra)
        self._index: dict[str, tuple[object, list[LibrarySpectrum]]] = {}
        for pol in POLARITIES:
            members = [s for s in self.spectra if s.polarity in (pol, None)]
            if not members:
                continue
            search = FlashEntropySearch(max_ms2_tolerance_in_da=max(self.ms2_tol_da, 0.024))
            entries = [
                {"precursor_mz": float(s.precursor_mz), "peaks": s.peaks.copy(), "k": i} for i, s in enumerate(members)
            ]
            kept = search.build_index(entries)
            order = [members[e["k"]] for e in kept]  # build_index sorts by precursor and drops empty spectra
            self._index[pol] = (search, order)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path] | None = None, **kwargs) -> SpectralLibrary:
        """Read every library file (default: the bundled PhenolicsDB)."""
        spectra: list[LibrarySpectrum] = []
        for p in BUNDLED_LIBRARIES if paths is None else paths:
            spectra.extend(read_library(p))
        names = ", ".join(Path(p).name for p in (BUNDLED_LIBRARIES if paths is None else paths))
        log.info("spectral library: %d spectra from %s", len(spectra), names)
        return cls(spectra, **kwargs)

    def __len__(self) -> int:
        return len(self.spectra)

    def search(self, precursor_mz: float, mz: np.ndarray, intensity: np.ndarray, polarity: str = "negative") -> dict:
        """Best identity and analogue hits of one query spectrum (empty strings / NaN where none)."""
        out = {
            "library_name": "",
            "library_score": np.nan,
            "library_precursor_mz": np.nan,
            "library_adduct": "",
            "matched_peaks": 0,
            "analogue_name": "",
            "analogue_score": np.nan,
            "analogue_precursor_mz": np.nan,
            "analogue_matched_peaks": 0,
        }
        pol = polarity if polarity in self._index else next(iter(self._index), None)
        if pol is None or len(mz) == 0:
            return out
        search, members = self._index[pol]
        peaks = np.column_stack([np.asarray(mz, dtype=np.float32), np.asarray(intensity, dtype=np.float32)])
        clean = search.clean_spectrum_for_search(precursor_mz=float(precursor_mz), peaks=peaks)
        if len(clean) == 0:
            return out
        ident, n_ident = search.identity_search(
            precursor_mz=float(precursor_mz),
            peaks=clean,
            ms1_tolerance_in_da=self.ms1_tol_da,
            ms2_tolerance_in_da=self.ms2_tol_da,
            output_matched_peak_number=True,
        )
        if len(ident) and float(np.max(ident)) > 0:
            k = int(np.argmax(ident))
            s = members[k]
            out.update(
                library_name=s.name,
                library_score=round(float(ident[k]), 4),
                library_precursor_mz=round(float(s.precursor_mz), 5),
                library_adduct=s.adduct,
                matched_peaks=int(n_ident[k]),
            )
        opened, n_open = search.open_search(
            peaks=clean, ms2_tolerance_in_da=self.ms2_tol_da, output_matched_peak_number=True
        )
        if len(opened) and float(np.max(opened)) > 0:
            k = int(np.argmax(opened))
            s = members[k]
            out.update(
                analogue_name=s.name,
                analogue_score=round(float(opened[k]), 4),
                analogue_precursor_mz=round(float(s.precursor_mz), 5),
                analogue_matched_peaks=int(n_open[k]),
            )
        return out


def annotate(drivers, library: SpectralLibrary, top: int | None = None, min_score: float = 0.0):
    """Add the library columns to a drivers table (its ``consensus_spectrum``, ``precursor_mz``, ``polarity``).

    Only the first ``top`` rows are searched (all when None); identity hits below ``min_score`` are blanked.
    """
    from ms2img.io.msms import parse_msms

    rows = []
    n = len(drivers) if top is None else min(int(top), len(drivers))
    for i, row in enumerate(drivers.itertuples(index=False)):
        if i >= n:
            rows.append({})
            continue
        mz, inten = parse_msms(str(getattr(row, "consensus_spectrum", "") or ""))
        hit = library.search(float(row.precursor_mz), mz, inten, str(getattr(row, "polarity", "negative")))
        if not (hit["library_score"] >= min_score):
            for key in ("library_name", "library_adduct"):
                hit[key] = ""
            hit["library_score"] = hit["library_precursor_mz"] = np.nan
            hit["matched_peaks"] = 0
        rows.append(hit)
    out = drivers.copy()
    keys = [
        "library_name",
        "library_score",
        "library_precursor_mz",
        "library_adduct",
        "matched_peaks",
        "analogue_name",
        "analogue_score",
        "analogue_precursor_mz",
        "analogue_matched_peaks",
    ]
    for key in keys:
        default = "" if key.endswith(("name", "adduct")) else (0 if "matched" in key else np.nan)
        out[key] = [r.get(key, default) for r in rows]
    return out
