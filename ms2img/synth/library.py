"""The bundled reference spectra (``ms2img/data``), read with matchms, and the compound families of standards.

* PhenolicsDB (CC BY 4.0, LC-ESI-QTOF, with retention times), one MSP per polarity: the phenolic standards;
  the collision energies of one compound are merged into one spectrum, as a stepped-CE DDA scan records it.
* matchms test spectra (Apache-2.0: ``pesticides.mgf``, ``testdata.mgf``, ``massbank_five_spectra.msp``) and
  PhenolicsDB of the other polarity: background chemistry unrelated to the assays.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ms2img.io.schema import polarity_of

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
MAX_FRAGMENTS = 20  # MS/MS peaks kept per spectrum (most intense)

# First matching pattern wins (procyanidin before cyanidin, caffeoylquinic before quinic, coumarin before ...).
_FAMILY_PATTERNS = [
    ("procyanidins", r"procyanidin"),
    ("anthocyanins", r"cyanidin"),
    ("flavan3ols", r"catechin"),
    ("hydroxycinnamics", r"caffeoylquinic|caffeic|ferulic|sinapic|coumaric acid|cinnamic"),
    ("coumarins", r"coumarin|scopoletin"),
    ("flavonols", r"quercetin|kaempferol|isorhamnetin|fisetin|herbacetin|isoquercitroside"),
    ("flavones_flavanones", r"apigenin|naringenin|naringin|eriodictyol|saponaretin"),
    ("dihydrochalcones", r"phloretin|phloridzin|trilobatin"),
    ("galloyl_ellagic", r"gallic|ellagic"),
    ("hydroxybenzoics", r"benzoic|vanill|salicylic|benzaldehyde"),
    ("triterpenoids", r"ursolic|corosolic"),
    ("primary", r"ascorbic|glucose|sucrose|sorbitol|melezitose|quinic|malic|citramalic"),
]


@dataclass
class RefSpectrum:
    """One reference MS/MS spectrum (intensities relative, max 100)."""

    name: str
    precursor_mz: float
    polarity: str
    mz: np.ndarray
    intensity: np.ndarray
    rt: float | None = None
    formula: str = ""
    inchikey: str = ""
    smiles: str = ""
    source: str = ""


def _float(value: object) -> float | None:
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    try:
        return float(str(value).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def _charge_polarity(value: object) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        value = value[0] if len(value) else None
    try:
        c = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return polarity_of(str(value or ""))
    return "negative" if c < 0 else "positive" if c > 0 else "unknown"


def read_spectra(path: Path) -> list[RefSpectrum]:
    """Read an MSP or MGF file with matchms (spectra without a precursor m/z or peaks are skipped)."""
    from matchms.importing import load_from_mgf, load_from_msp

    loader = load_from_mgf if path.suffix.lower() == ".mgf" else load_from_msp
    logging.getLogger("matchms").setLevel(logging.ERROR)
    out = []
    for s in loader(str(path), metadata_harmonization=False):
        if s is None:
            continue
        md = s.metadata
        prec = _float(md.get("precursor_mz", md.get("pepmass")))
        mz = np.asarray(s.peaks.mz, dtype=float)
        it = np.asarray(s.peaks.intensities, dtype=float)
        keep = it > 0
        mz, it = mz[keep], it[keep]
        name = md.get("compound_name") or md.get("name")
        if prec is None or mz.size == 0 or not name:
            continue
        pol = polarity_of(str(md.get("ionmode") or md.get("adduct") or md.get("precursortype") or ""))
        if pol == "unknown":
            pol = _charge_polarity(md.get("charge"))
        out.append(
            RefSpectrum(
                name=str(name), precursor_mz=prec, polarity=pol, mz=mz, intensity=100 * it / it.max(),
                rt=_float(md.get("retention_time")), formula=str(md.get("formula") or ""),
                inchikey=str(md.get("inchikey") or ""), smiles=str(md.get("smiles") or ""), source=path.name,
            )
        )  # fmt: skip
    return out


def merge_spectra(spectra: list[RefSpectrum], tol: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Average several collision energies into one spectrum, as a stepped-CE DDA scan would record."""
    mz = np.concatenate([s.mz for s in spectra])
    it = np.concatenate([s.intensity for s in spectra])
    order = np.argsort(mz, kind="stable")
    mz, it = mz[order], it[order]
    gid = np.concatenate([[0], np.cumsum(np.diff(mz) > tol)])
    total = np.bincount(gid, it)
    merged_mz = np.bincount(gid, mz * it) / total
    rel = total / total.max() * 100
    keep = rel >= 0.5
    return merged_mz[keep], rel[keep]


def family_of(name: str) -> str | None:
    """The compound family of a PhenolicsDB standard, from its name (None if it fits none)."""
    low = name.lower()
    for fam, pattern in _FAMILY_PATTERNS:
        if re.search(pattern, low):
            return fam
    return None


@lru_cache(maxsize=4)
def phenolics_library(polarity: str) -> tuple[RefSpectrum, ...]:
    """PhenolicsDB standards of one polarity, one merged spectrum per compound and precursor type."""
    fname = "PhenolicsDB_neg.msp" if polarity == "negative" else "PhenolicsDB_pos.msp"
    groups: dict[tuple[str, float], list[RefSpectrum]] = {}
    for s in read_spectra(DATA_DIR / fname):
        groups.setdefault((s.name.lower(), round(s.precursor_mz, 2)), []).append(s)
    out = []
    for key in sorted(groups):
        group = groups[key]
        mz, rel = merge_spectra(group)
        rts = [s.rt for s in group if s.rt is not None]
        first = group[0]
        out.append(
            RefSpectrum(
                name=first.name, precursor_mz=first.precursor_mz, polarity=polarity, mz=mz, intensity=rel,
                rt=float(np.mean(rts)) if rts else None, formula=first.formula, inchikey=first.inchikey,
                smiles=first.smiles, source=first.source,
            )
        )  # fmt: skip
    return tuple(out)


@lru_cache(maxsize=4)
def background_library(polarity: str) -> tuple[RefSpectrum, ...]:
    """Spectra unrelated to the assays: matchms test spectra and PhenolicsDB of the other polarity."""
    other = "positive" if polarity == "negative" else "negative"
    spectra: list[RefSpectrum] = []
    for fname in ("pesticides.mgf", "testdata.mgf", "massbank_five_spectra.msp"):
        spectra += read_spectra(DATA_DIR / fname)
    spectra += list(phenolics_library(other))
    out = []
    for s in spectra:
        keep = s.mz < s.precursor_mz + 0.5
        if not (100 <= s.precursor_mz <= 1400) or keep.sum() < 1:
            continue
        mz, it = s.mz[keep], s.intensity[keep]
        top = np.sort(np.argsort(-it, kind="stable")[:MAX_FRAGMENTS])
        mz, it = mz[top], it[top]
        out.append(RefSpectrum(s.name, s.precursor_mz, s.polarity, mz, 100 * it / it.max(), rt=s.rt, source=s.source))
    return tuple(out)
