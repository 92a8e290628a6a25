"""The bundled reference spectra (``ms2img/data``, read by :mod:`ms2img.io.library`) and the families of standards.

* PhenolicsDB (CC BY 4.0, LC-ESI-QTOF, with retention times), one MSP per polarity: the phenolic standards;
  the collision energies of one compound are merged into one spectrum, as a stepped-CE DDA scan records it.
* matchms test spectra (Apache-2.0: ``pesticides.mgf``, ``testdata.mgf``, ``massbank_five_spectra.msp``) and
  PhenolicsDB of the other polarity: background chemistry unrelated to the assays.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from ms2img.io.library import DATA_DIR, LibrarySpectrum, read_library

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


def relative_spectra(path: Path) -> list[LibrarySpectrum]:
    """A bundled library file with intensities relative (max 100), the scale the simulated exports use."""
    return [replace(s, intensity=100 * s.intensity / s.intensity.max()) for s in read_library(path)]


def merge_spectra(spectra: list[LibrarySpectrum], tol: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
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
def phenolics_library(polarity: str) -> tuple[LibrarySpectrum, ...]:
    """PhenolicsDB standards of one polarity, one merged spectrum per compound and precursor type."""
    fname = "PhenolicsDB_neg.msp" if polarity == "negative" else "PhenolicsDB_pos.msp"
    groups: dict[tuple[str, float], list[LibrarySpectrum]] = {}
    for s in relative_spectra(DATA_DIR / fname):
        groups.setdefault((s.name.lower(), round(s.precursor_mz, 2)), []).append(s)
    out = []
    for key in sorted(groups):
        group = groups[key]
        mz, rel = merge_spectra(group)
        rts = [s.rt for s in group if s.rt is not None]
        first = group[0]
        out.append(
            LibrarySpectrum(
                name=first.name, precursor_mz=first.precursor_mz, polarity=polarity, mz=mz, intensity=rel,
                rt=float(np.mean(rts)) if rts else None, formula=first.formula, inchikey=first.inchikey,
                smiles=first.smiles, source=first.source, adduct=first.adduct,
            )
        )  # fmt: skip
    return tuple(out)


@lru_cache(maxsize=4)
def background_library(polarity: str) -> tuple[LibrarySpectrum, ...]:
    """Spectra unrelated to the assays: matchms test spectra and PhenolicsDB of the other polarity."""
    other = "positive" if polarity == "negative" else "negative"
    spectra: list[LibrarySpectrum] = []
    for fname in ("pesticides.mgf", "testdata.mgf", "massbank_five_spectra.msp"):
        spectra += relative_spectra(DATA_DIR / fname)
    spectra += list(phenolics_library(other))
    out = []
    for s in spectra:
        keep = s.mz < s.precursor_mz + 0.5
        if not (100 <= s.precursor_mz <= 1400) or keep.sum() < 1:
            continue
        mz, it = s.mz[keep], s.intensity[keep]
        top = np.sort(np.argsort(-it, kind="stable")[:MAX_FRAGMENTS])
        mz, it = mz[top], it[top]
        out.append(replace(s, mz=mz, intensity=100 * it / it.max()))
    return tuple(out)
