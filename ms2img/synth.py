"""The synthetic cohort: realistic MS-DIAL alignment exports with assays that depend on the chemistry.

We have no permissively licensed cohort of extracts with MS/MS *and* bioactivity, so the demo and the tests use
one built from real reference spectra. Each accession is a mixture of

* **phenolic families** made of real PhenolicsDB standards (CC BY 4.0, LC-ESI-QTOF, with retention times) in
  the chosen polarity, plus plausible derivatives of them (glycosides, methyl/acetyl/galloyl esters, ...) whose
  MS/MS keeps the parent's fragments and shows the parent ion as a neutral-loss product;
* **background chemistry** unrelated to the assays: matchms test spectra (pesticides, GNPS and MassBank records,
  Apache-2.0) and PhenolicsDB spectra of the other polarity, moved by random plausible mass shifts so a few
  hundred base spectra become ~1,500 distinct "unknowns" with their own prevalence across accessions;
* in-source adducts ([M+FA-H]-, [2M-H]-, [M-H2O-H]-, ... or the positive-mode equivalents), blank
  contaminants and, in the QC column, a pooled-looking mixture.

Per accession, latent family totals (mg/g extract) are drawn as correlated, roughly normal variables (a shared
"phenolic richness" factor plus a family factor) with a family-specific chance of being absent; compounds within a
family vary log-normally around their share, and a few dominant background constituents keep the per-sample
intensity scale steady (the images scale by the sample's most intense precursor). The assays are functions of
those abundances plus noise (documented in :func:`assays_from_latent`), so a model can learn them from the MS/MS
fingerprint but not perfectly. Instrument effects: per-replicate ppm offset, RT drift and injection factor,
per-peak m/z and intensity noise, dropped fragments, chemical-noise fragments, a detection limit (heights below
it are written as 0), DDA misses (weak precursors without MS/MS) and occasional alignment splits.

Everything is deterministic from the seed: the "world" (compound pool) comes from ``SeedSequence([seed, 0])`` and
accession ``i`` from ``SeedSequence([seed, 1, i])``, so ``make_cohort(n=200)`` followed by ``append`` of 50 gives
byte-identical files to ``make_cohort(n=250)``.

Files written under ``out_dir``: ``exports/ACC0001.txt`` ... (MS-DIAL v4 alignment export, CRLF like the
Windows program), ``assays.csv`` (``accession,DPPH,elastase,TFC,TPC``), ``latent.csv`` (the ground-truth family
abundances, never read by the pipeline; useful to check attributions) and ``cohort.json`` (seed, polarity).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ms2img.atomic import write_bytes
from ms2img.errors import ConfigError

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data"
ASSAYS = ("DPPH", "elastase", "TFC", "TPC")
POLARITIES = ("negative", "positive")
GENERATOR_VERSION = 1

PROTON = 1.007276
C13_DELTA = 1.003355

# --------------------------------------------------------------------------------------------------------------
# MS-DIAL v4 alignment export layout (copied from a real export, msdialr's MSDIAL_Alignment_result_LC-MS.txt)
# --------------------------------------------------------------------------------------------------------------
MSDIAL_HEADER = [
    "Alignment ID",
    "Average Rt(min)",
    "Average Mz",
    "Metabolite name",
    "Adduct type",
    "Post curation result",
    "Fill %",
    "MS/MS assigned",
    "Reference RT",
    "Reference m/z",
    "Formula",
    "Ontology",
    "INCHIKEY",
    "SMILES",
    "Annotation tag (VS1.0)",
    "RT matched",
    "m/z matched",
    "MS/MS matched",
    "Comment",
    "Manually modified for quantification",
    "Manually modified for annotation",
    "Isotope tracking parent ID",
    "Isotope tracking weight number",
    "Total score",
    "RT similarity",
    "Dot product",
    "Reverse dot product",
    "Fragment presence %",
    "S/N average",
    "Spectrum reference file name",
    "MS1 isotopic spectrum",
    "MS/MS spectrum",
]
METADATA_ROWS = ("Class", "File type", "Injection order", "Batch ID")
EOL = "\r\n"

# --------------------------------------------------------------------------------------------------------------
# Chemistry: compound families, their latent distribution, and the assays
# --------------------------------------------------------------------------------------------------------------
# name: (ontology written for annotated features, median mg/g, coefficient of variation, probability the family
# is present). Family totals vary roughly normally across accessions (truncated at 5 % of the median);
# individual compounds within a family vary log-normally around their share.
FAMILIES: dict[str, tuple[str, float, float, float]] = {
    "flavan3ols": ("Flavan-3-ols", 4.0, 0.45, 0.95),
    "procyanidins": ("Proanthocyanidins", 3.0, 0.5, 0.85),
    "flavonols": ("Flavonols", 5.0, 0.4, 1.0),
    "flavones_flavanones": ("Flavones and flavanones", 2.5, 0.45, 0.9),
    "hydroxycinnamics": ("Hydroxycinnamic acids", 6.0, 0.4, 1.0),
    "galloyl_ellagic": ("Gallic and ellagic acids", 2.0, 0.5, 0.8),
    "hydroxybenzoics": ("Hydroxybenzoic acids", 1.5, 0.4, 1.0),
    "dihydrochalcones": ("Dihydrochalcones", 1.0, 0.5, 0.6),
    "coumarins": ("Coumarins", 0.8, 0.45, 0.7),
    "anthocyanins": ("Anthocyanins", 1.2, 0.6, 0.4),
    "triterpenoids": ("Triterpenoids", 2.5, 0.5, 0.7),
    "primary": ("Primary metabolites", 10.0, 0.3, 1.0),
}
FAMILY_NAMES = list(FAMILIES)
PHENOLIC_FAMILIES = [f for f in FAMILY_NAMES if f not in ("triterpenoids", "primary")]
SHARED_FACTOR = 0.7  # correlation weight of the shared "phenolic richness" factor

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

# Assay weights (per mg/g of each family); see assays_from_latent.
TPC_WEIGHTS = {
    "flavan3ols": 1.0, "procyanidins": 1.1, "flavonols": 0.8, "flavones_flavanones": 0.5,
    "hydroxycinnamics": 0.9, "galloyl_ellagic": 1.4, "hydroxybenzoics": 0.8, "dihydrochalcones": 0.7,
    "coumarins": 0.5, "anthocyanins": 0.9,
}  # fmt: skip
TFC_WEIGHTS = {
    "flavonols": 1.0, "flavones_flavanones": 0.7, "dihydrochalcones": 0.3, "anthocyanins": 0.4, "flavan3ols": 0.15,
}  # fmt: skip
DPPH_WEIGHTS = {
    "flavan3ols": 1.3, "procyanidins": 1.6, "flavonols": 1.0, "hydroxycinnamics": 0.7, "galloyl_ellagic": 1.8,
    "hydroxybenzoics": 0.3, "anthocyanins": 0.8, "flavones_flavanones": 0.2, "dihydrochalcones": 0.3,
}  # fmt: skip
ELASTASE_WEIGHTS = {"procyanidins": 1.5, "galloyl_ellagic": 1.2, "triterpenoids": 1.0, "flavonols": 0.15}
DPPH_K = 60.0  # mg/g of weighted antioxidants that scavenge 63 % of the radical
ELASTASE_K = 18.0  # mg/g of weighted inhibitors giving 50 % inhibition

# --------------------------------------------------------------------------------------------------------------
# Instrument model
# --------------------------------------------------------------------------------------------------------------
HEIGHT_PER_MG = 1.0e5  # MS1 height of 1 mg/g at response factor 1
DETECTION_LIMIT = 2000.0  # heights below this are written as 0 (not detected)
MAX_FRAGMENTS = 20  # MS/MS peaks kept per spectrum (most intense)
N_BACKGROUND = 1500
N_CONTAMINANTS = 12
N_QC_EXTRAS = 15
N_MAJOR = 4  # background compounds present in every accession at a high, steady level
MAJOR_SD = 0.15
BACKGROUND_SD = 0.5

# adduct label, m/z of the adduct from the main ion m/z, MS/MS transform ("fa": main ion + its fragments,
# "dimer": main ion dominant, "h2o": main fragments below the new precursor)
ADDUCTS = {
    "negative": {
        "main": "[M-H]-",
        "extra": [
            ("[M+FA-H]-", lambda mz: mz + 46.005479, "fa", 0.15, (0.03, 0.15)),
            ("[2M-H]-", lambda mz: 2 * mz + PROTON, "dimer", 0.06, (0.01, 0.06)),
            ("[M-H2O-H]-", lambda mz: mz - 18.010565, "h2o", 0.1, (0.02, 0.1)),
            ("[M+Na-2H]-", lambda mz: mz + 21.981945, "fa", 0.03, (0.01, 0.05)),
        ],
    },
    "positive": {
        "main": "[M+H]+",
        "extra": [
            ("[M+Na]+", lambda mz: mz + 21.981945, "fa", 0.15, (0.05, 0.3)),
            ("[M+NH4]+", lambda mz: mz + 17.026549, "fa", 0.06, (0.02, 0.1)),
            ("[2M+H]+", lambda mz: 2 * mz - PROTON, "dimer", 0.05, (0.01, 0.06)),
            ("[M+H-H2O]+", lambda mz: mz - 18.010565, "h2o", 0.12, (0.03, 0.2)),
        ],
    },
}

# Modifications that turn a standard into an unannotated relative (delta mass, RT factor, fraction of fragments
# that carry the modification). Glycosides elute earlier in reversed phase, methyl/acyl derivatives later.
_DERIVATIVES = [
    (162.052823, 0.85, 0.0),  # hexoside
    (146.057909, 0.9, 0.0),  # rhamnoside
    (132.042259, 0.9, 0.0),  # pentoside
    (176.032088, 0.85, 0.0),  # glucuronide
    (308.110732, 0.8, 0.0),  # rutinoside
    (152.010959, 1.05, 0.0),  # galloyl ester
    (162.031694, 1.1, 0.0),  # caffeoyl ester
    (146.036779, 1.15, 0.0),  # coumaroyl ester
    (86.000394, 1.05, 0.0),  # malonyl
    (42.010565, 1.15, 0.3),  # acetyl
    (14.01565, 1.1, 0.5),  # methyl
    (15.994915, 0.95, 0.5),  # hydroxyl
    (79.956815, 0.8, 0.0),  # sulfate
]
# Small formula differences used to move background spectra to new precursor masses.
_SHIFTS = np.array([14.01565, 15.994915, 18.010565, 2.01565, 28.0313, 43.98983, 42.010565, 162.052823,
                    26.01565, 30.010565, 44.026215, 56.0626, 13.979265, 31.98983, 17.026549, 27.994915])  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# Reading the bundled reference spectra
# --------------------------------------------------------------------------------------------------------------
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


def _polarity_of(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("neg") or value.endswith("-"):
        return "negative"
    if value.startswith("pos") or value.endswith("+"):
        return "positive"
    return "unknown"


def _float(value: str | None) -> float | None:
    try:
        return float(str(value).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


def _peaks(lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    mz, it = [], []
    for line in lines:
        parts = line.replace("\t", " ").split()
        if len(parts) >= 2:
            try:
                m, i = float(parts[0]), float(parts[1])
            except ValueError:
                continue
            if i > 0:
                mz.append(m)
                it.append(i)
    return np.asarray(mz, dtype=float), np.asarray(it, dtype=float)


def read_msp(path: Path) -> list[RefSpectrum]:
    """Parse a NIST-style MSP file (PhenolicsDB, MassBank): ``key: value`` lines then ``mz int`` lines."""
    spectra = []
    for block in re.split(r"\n\s*\n", path.read_text(encoding="utf-8").replace("\r\n", "\n")):
        meta: dict[str, str] = {}
        peak_lines: list[str] = []
        for line in block.strip().splitlines():
            if ":" in line and not line[:1].isdigit():
                key, _, value = line.partition(":")
                meta[key.strip().lower()] = value.strip()
            else:
                peak_lines.append(line)
        prec = _float(meta.get("precursormz"))
        if not meta.get("name") or prec is None:
            continue
        mz, it = _peaks(peak_lines)
        if mz.size == 0:
            continue
        pol = _polarity_of(meta.get("ionmode") or meta.get("ion_mode") or meta.get("precursortype", ""))
        spectra.append(
            RefSpectrum(
                name=meta["name"], precursor_mz=prec, polarity=pol, mz=mz, intensity=100 * it / it.max(),
                rt=_float(meta.get("retentiontime")), formula=meta.get("formula", ""),
                inchikey=meta.get("inchikey", ""), smiles=meta.get("smiles", ""), source=path.name,
            )
        )  # fmt: skip
    return spectra


def read_mgf(path: Path) -> list[RefSpectrum]:
    """Parse a GNPS-style MGF file (``BEGIN IONS`` ... ``END IONS``)."""
    spectra = []
    meta: dict[str, str] = {}
    peak_lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line == "BEGIN IONS":
            meta, peak_lines = {}, []
        elif line == "END IONS":
            prec = _float(meta.get("pepmass"))
            mz, it = _peaks(peak_lines)
            if prec is not None and mz.size:
                pol = _polarity_of(meta.get("ionmode", "")) if "ionmode" in meta else "unknown"
                if pol == "unknown":
                    pol = _polarity_of(meta.get("charge", "") or "")
                spectra.append(
                    RefSpectrum(
                        name=meta.get("name", "unknown"), precursor_mz=prec, polarity=pol, mz=mz,
                        intensity=100 * it / it.max(), source=path.name,
                    )
                )  # fmt: skip
        elif "=" in line and not line[:1].isdigit():
            key, _, value = line.partition("=")
            meta[key.strip().lower()] = value.strip()
        elif line:
            peak_lines.append(line)
    return spectra


def _merge_spectra(spectra: list[RefSpectrum], tol: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
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
    for s in read_msp(DATA_DIR / fname):
        key = (s.name.lower(), round(s.precursor_mz, 2))
        groups.setdefault(key, []).append(s)
    out = []
    for key in sorted(groups):
        group = groups[key]
        mz, rel = _merge_spectra(group)
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
    spectra += read_mgf(DATA_DIR / "pesticides.mgf")
    spectra += read_mgf(DATA_DIR / "testdata.mgf")
    spectra += read_msp(DATA_DIR / "massbank_five_spectra.msp")
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


# --------------------------------------------------------------------------------------------------------------
# The world: every compound any accession can contain
# --------------------------------------------------------------------------------------------------------------
@dataclass
class World:
    """Cohort-level chemistry: the compound pool (flat fragment arrays with offsets) and its parameters."""

    polarity: str
    ion_mz: np.ndarray  # m/z of the main ion ([M-H]- or [M+H]+)
    rt: np.ndarray
    family: np.ndarray  # index into FAMILY_NAMES, -1 background, -2 contaminant
    weight: np.ndarray  # share within the family (family compounds)
    response: np.ndarray  # ionisation response factor
    prevalence: np.ndarray  # probability an accession contains the compound (given its family is present)
    log_mu: np.ndarray  # background: median log abundance (mg/g)
    annot: list[dict | None]  # library annotation for standards, None otherwise
    frag_off: np.ndarray
    frag_mz: np.ndarray
    frag_rel: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ion_mz)


def _shift_spectrum(rng: np.random.Generator, mz: np.ndarray, rel: np.ndarray, prec: float, delta: float, frac: float):
    """Move a spectrum to a new precursor: a fraction of fragments carries the mass change, the rest stay."""
    moved = rng.random(mz.size) < frac
    new_mz = np.where(moved, mz + delta, mz)
    new_prec = prec + delta
    new_rel = rel * rng.lognormal(0.0, 0.3, mz.size)
    keep = (new_mz > 40) & (new_mz < new_prec + 0.5)
    return new_mz[keep], new_rel[keep], new_prec


@lru_cache(maxsize=8)
def build_world(seed: int, polarity: str = "negative") -> World:
    """The compound pool of a cohort, deterministic from ``seed``."""
    if polarity not in POLARITIES:
        raise ConfigError(f"polarity must be one of {POLARITIES}, got '{polarity}'")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    recs: list[tuple] = []  # (ion_mz, rt, family, weight, response, prevalence, log_mu, annot, mz, rel)

    for s in phenolics_library(polarity):
        fam = family_of(s.name)
        if fam is None:
            continue
        fi = FAMILY_NAMES.index(fam)
        rt = s.rt if s.rt is not None else float(rng.uniform(0.5, 7.5))
        weight = float(rng.lognormal(0.0, 0.7))
        annot = {
            "name": s.name, "formula": s.formula or "null", "inchikey": s.inchikey or "null",
            "smiles": s.smiles or "null", "ontology": FAMILIES[fam][0], "ref_rt": rt, "ref_mz": s.precursor_mz,
        }  # fmt: skip
        recs.append((s.precursor_mz, rt, fi, weight, float(rng.lognormal(0, 0.5)), float(rng.uniform(0.75, 1.0)),
                     0.0, annot, s.mz, s.intensity))  # fmt: skip
        # relatives of the standard: never annotated, same family, fragments of the parent + the parent ion
        for _ in range(rng.poisson(2.5)):
            delta, rt_factor, frac = _DERIVATIVES[rng.integers(len(_DERIVATIVES))]
            new_prec = s.precursor_mz + delta
            if new_prec > 1450:
                continue
            mz, rel, _ = _shift_spectrum(rng, s.mz, s.intensity, s.precursor_mz, delta, frac)
            if frac == 0.0:  # neutral loss of the sugar/acyl group leaves the parent ion
                mz = np.append(mz, s.precursor_mz)
                rel = np.append(rel, rng.uniform(40, 100))
            order = np.argsort(mz, kind="stable")
            mz, rel = mz[order], rel[order]
            if mz.size == 0:
                continue
            d_rt = float(np.clip(rt * rt_factor * rng.lognormal(0, 0.05), 0.3, 9.5))
            recs.append((new_prec, d_rt, fi, weight * float(rng.lognormal(-1.0, 0.7)),
                         float(rng.lognormal(0, 0.5)), float(rng.uniform(0.5, 0.95)), 0.0, None, mz,
                         100 * rel / rel.max()))  # fmt: skip

    bg = background_library(polarity)
    base_idx = rng.integers(len(bg), size=N_BACKGROUND + N_CONTAMINANTS)
    for k, b in enumerate(base_idx):
        s = bg[b]
        if rng.random() < 0.2:
            delta = 0.0
        else:
            n_shift = rng.integers(1, 4)
            delta = float(np.sum(_SHIFTS[rng.integers(len(_SHIFTS), size=n_shift)] * rng.choice([-1, 1], n_shift)))
        if not 100 <= s.precursor_mz + delta <= 1400:
            delta = -delta if 100 <= s.precursor_mz - delta <= 1400 else 0.0
        mz, rel, prec = _shift_spectrum(rng, s.mz, s.intensity, s.precursor_mz, delta, 0.5)
        if mz.size == 0:
            mz, rel, prec = s.mz, s.intensity, s.precursor_mz
        if s.rt is not None:
            rt = float(np.clip(s.rt + rng.normal(0, 0.8), 0.3, 9.5))
        else:
            rt = float(rng.uniform(0.3, 9.5))
        contaminant = k >= N_BACKGROUND
        if k < N_MAJOR:  # the species' dominant constituents: in every accession, at a steady level
            prevalence, log_mu, response = 1.0, float(np.log(rng.uniform(8, 15))), 1.0
        else:
            prevalence, log_mu = float(rng.beta(0.35, 3.5)), float(rng.normal(np.log(0.6), 1.0))
            response = float(rng.lognormal(0, 0.5))
        recs.append((prec, rt, -2 if contaminant else -1, 0.0, response, prevalence, log_mu, None, mz,
                     100 * rel / rel.max()))  # fmt: skip

    sizes = np.array([r[8].size for r in recs])
    return World(
        polarity=polarity,
        ion_mz=np.array([r[0] for r in recs]),
        rt=np.array([r[1] for r in recs]),
        family=np.array([r[2] for r in recs]),
        weight=np.array([r[3] for r in recs]),
        response=np.array([r[4] for r in recs]),
        prevalence=np.array([r[5] for r in recs]),
        log_mu=np.array([r[6] for r in recs]),
        annot=[r[7] for r in recs],
        frag_off=np.concatenate([[0], np.cumsum(sizes)]),
        frag_mz=np.concatenate([r[8] for r in recs]),
        frag_rel=np.concatenate([r[9] for r in recs]),
    )


# --------------------------------------------------------------------------------------------------------------
# Latent abundances and assays
# --------------------------------------------------------------------------------------------------------------
def draw_latent(rng: np.random.Generator) -> np.ndarray:
    """Family abundances (mg/g extract) of one accession: correlated, roughly normal, some families absent."""
    shared = rng.normal()
    out = np.zeros(len(FAMILY_NAMES))
    for i, fam in enumerate(FAMILY_NAMES):
        _, median, cv, present = FAMILIES[fam]
        w = SHARED_FACTOR if fam in PHENOLIC_FAMILIES else 0.0
        z = w * shared + np.sqrt(1 - w * w) * rng.normal()
        out[i] = median * max(0.05, 1.0 + cv * z) if rng.random() < present else 0.0
    return out


def _weighted(a: np.ndarray, weights: dict[str, float]) -> float:
    return float(sum(w * a[FAMILY_NAMES.index(f)] for f, w in weights.items()))


def _factor(rng: np.random.Generator, cv: float) -> float:
    """A multiplicative error ``1 + N(0, cv)``, floored at 0.2 (symmetric, so no artificial outliers)."""
    return max(0.2, 1.0 + cv * rng.normal())


def assays_from_latent(a: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Assay values (raw units) from family abundances ``a`` (mg/g), with biological and measurement noise.

    With ``W_x`` the weighted sums of family abundances (weights in ``TPC_WEIGHTS`` ... ``ELASTASE_WEIGHTS``),
    ``F(c)`` a multiplicative factor ``1 + N(0, c)`` and ``N(s)`` a normal error with sd ``s``:

    * TPC (mg GAE/g)        = (1.0 + W_TPC) * F(0.06) + N(1.5): Folin-Ciocalteu sees every phenolic family;
    * TFC (mg QE/g)         = (0.3 + W_TFC) * F(0.08) + N(0.8): AlCl3 complexes flavonols/flavones mainly;
    * DPPH (% scavenging)   = 100 * (1 - exp(-W_DPPH * F(0.15) / DPPH_K)) + N(3), clipped to 0..100: catechols,
      galloyl groups and procyanidins dominate, saturating like the real dose-response;
    * elastase (% inhib.)   = 100 * X / (X + ELASTASE_K) + N(4) with X = W_ELA * F(0.2), clipped to 0..100:
      procyanidins, ellagic/gallic acids and triterpenoids (ursolic/corosolic acid), a different subset than DPPH.

    The multiplicative factors stand for compounds the MS does not see and for extraction variance, the
    additive errors for the assay itself (mean of triplicate wells). Typical Spearman correlations between an
    assay and its driving families are 0.6 to 0.9.
    """
    tpc = (1.0 + _weighted(a, TPC_WEIGHTS)) * _factor(rng, 0.06) + rng.normal(0, 1.5)
    tfc = (0.3 + _weighted(a, TFC_WEIGHTS)) * _factor(rng, 0.08) + rng.normal(0, 0.8)
    aox = _weighted(a, DPPH_WEIGHTS) * _factor(rng, 0.15)
    dpph = 100 * (1 - np.exp(-aox / DPPH_K)) + rng.normal(0, 3.0)
    x = _weighted(a, ELASTASE_WEIGHTS) * _factor(rng, 0.2)
    ela = 100 * x / (x + ELASTASE_K) + rng.normal(0, 4.0)
    return {
        "DPPH": float(np.clip(dpph, 0, 100)),
        "elastase": float(np.clip(ela, 0, 100)),
        "TFC": float(max(tfc, 0.05)),
        "TPC": float(max(tpc, 0.1)),
    }


def class_counts(assays: pd.DataFrame, low: float = 0.4, high: float = 0.6) -> dict[str, dict[str, int]]:
    """Per assay: accessions labelled low / high / left out after min-max normalisation (the paper's split)."""
    out = {}
    for assay in ASSAYS:
        v = assays[assay].to_numpy(dtype=float)
        span = v.max() - v.min()
        norm = (v - v.min()) / span if span > 0 else np.zeros_like(v)
        n_low, n_high = int((norm < low).sum()), int((norm > high).sum())
        out[assay] = {"low": n_low, "high": n_high, "dropped": int(len(v) - n_low - n_high)}
    return out


# --------------------------------------------------------------------------------------------------------------
# One accession
# --------------------------------------------------------------------------------------------------------------
def _fmt_mz(x: float) -> str:
    return repr(round(float(x), 5))


def _fmt_num(x: float) -> str:
    """Average/Stdev cells like MS-DIAL (.NET double -> up to 15 significant digits)."""
    return f"{x:.15g}"


def _gather(offsets: np.ndarray, comps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the fragments of ``comps`` and the position (feature index) each belongs to."""
    counts = offsets[comps + 1] - offsets[comps]
    owner = np.repeat(np.arange(comps.size), counts)
    starts = np.repeat(offsets[comps] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return starts + np.arange(counts.sum()), owner


@dataclass
class _Accession:
    name: str
    text: str
    n_rows: int
    latent: np.ndarray
    assays: dict[str, float]


def simulate_accession(world: World, name: str, rng: np.random.Generator, replicates: int = 3) -> _Accession:
    """One accession: latent chemistry, assays, and its MS-DIAL alignment export as text."""
    latent = draw_latent(rng)
    assays = assays_from_latent(latent, rng)
    w = world
    n_rep = replicates
    n_samp = n_rep + 2  # replicates, blank, QC
    blank_col, qc_col = n_rep, n_rep + 1

    # ---- which compounds, how much
    fam_mask = w.family >= 0
    fam_idx = np.where(fam_mask)[0]
    fam_abund = latent[w.family[fam_idx]]
    take = (fam_abund > 0) & (rng.random(fam_idx.size) < w.prevalence[fam_idx])
    share = w.weight[fam_idx] / np.bincount(w.family[fam_idx], w.weight[fam_idx])[w.family[fam_idx]]
    fam_amount = fam_abund * share * 3.0 * rng.lognormal(0.0, 0.35, fam_idx.size)

    bg_idx = np.where(w.family == -1)[0]
    bg_take = rng.random(bg_idx.size) < w.prevalence[bg_idx]
    bg_sd = np.where(w.prevalence[bg_idx] >= 1.0, MAJOR_SD, BACKGROUND_SD)
    bg_amount = np.exp(w.log_mu[bg_idx] + bg_sd * rng.normal(0, 1.0, bg_idx.size))

    comps = np.concatenate([fam_idx[take], bg_idx[bg_take]])
    amount = np.concatenate([fam_amount[take], bg_amount[bg_take]])
    true_height = amount * w.response[comps] * HEIGHT_PER_MG

    # features: (component, ion m/z, rt, true height, adduct label, parent feature, msms mode, extra peak)
    f_comp = list(comps)
    f_mz = list(w.ion_mz[comps])
    f_rt = list(w.rt[comps])
    f_h = list(true_height)
    main_label = ADDUCTS[w.polarity]["main"]
    f_adduct = [main_label] * comps.size
    f_parent = [-1] * comps.size
    f_mode = ["main"] * comps.size
    f_kind = ["sample"] * comps.size
    for label, to_mz, mode, prob, (lo, hi) in ADDUCTS[w.polarity]["extra"]:
        pick = np.where(rng.random(comps.size) < prob)[0]
        ratios = rng.uniform(lo, hi, pick.size)
        for p, ratio in zip(pick, ratios, strict=True):
            mz = to_mz(f_mz[p])
            if not 60 < mz < 1700:
                continue
            f_comp.append(comps[p])
            f_mz.append(mz)
            f_rt.append(f_rt[p] + rng.normal(0, 0.002))
            f_h.append(f_h[p] * ratio)
            f_adduct.append(label)
            f_parent.append(p)
            f_mode.append(mode)
            f_kind.append("sample")
    cont_idx = np.where(w.family == -2)[0]
    for c in cont_idx:
        f_comp.append(c)
        f_mz.append(w.ion_mz[c])
        f_rt.append(w.rt[c])
        f_h.append(float(np.exp(w.log_mu[c]) * 3e4 / 0.6))
        f_adduct.append(main_label)
        f_parent.append(-1)
        f_mode.append("main")
        f_kind.append("contaminant")
    absent_bg = bg_idx[~bg_take]
    common = absent_bg[w.prevalence[absent_bg] > 0.35]
    for c in rng.choice(common, size=min(N_QC_EXTRAS, common.size), replace=False) if common.size else []:
        f_comp.append(c)
        f_mz.append(w.ion_mz[c])
        f_rt.append(w.rt[c])
        f_h.append(float(np.exp(w.log_mu[c] + rng.normal(0, 0.5)) * w.response[c] * HEIGHT_PER_MG * 0.5))
        f_adduct.append(main_label)
        f_parent.append(-1)
        f_mode.append("main")
        f_kind.append("qc")

    n = len(f_comp)
    f_comp = np.asarray(f_comp)
    f_mz = np.asarray(f_mz, dtype=float)
    f_rt = np.asarray(f_rt, dtype=float)
    f_h = np.asarray(f_h, dtype=float)
    kind = np.asarray(f_kind)

    # ---- heights per sample column
    inj = rng.lognormal(0, 0.08, n_samp)
    heights = np.zeros((n, n_samp))
    is_sample = kind == "sample"
    is_cont = kind == "contaminant"
    is_qc = kind == "qc"
    heights[:, :n_rep] = (f_h * is_sample)[:, None] * inj[:n_rep] * rng.lognormal(0, 0.15, (n, n_rep))
    heights[:, qc_col] = f_h * is_sample * rng.uniform(0.3, 0.7) * inj[qc_col] * rng.lognormal(0, 0.15, n)
    heights[is_qc, qc_col] = f_h[is_qc]
    blank_level = f_h * is_cont
    heights[:, blank_col] = blank_level * rng.lognormal(0, 0.2, n)
    heights[is_cont, :n_rep] = blank_level[is_cont, None] * rng.uniform(0.5, 1.5, (is_cont.sum(), n_rep))
    heights[is_cont, qc_col] = blank_level[is_cont] * rng.uniform(0.5, 1.5, is_cont.sum())
    # carry-over of the most intense sample features into the blank
    top = np.argsort(-heights[:, 0])[:5]
    heights[top, blank_col] += heights[top, 0] * 0.01
    heights[rng.random((n, n_samp)) < 0.02] = 0.0  # peak-picking misses
    heights[heights < DETECTION_LIMIT] = 0.0
    heights = np.round(heights)

    # ---- occasional alignment split: part of the samples end up in a second row
    detected = heights > 0
    split = np.where((detected.sum(1) >= 2) & (rng.random(n) < 0.01))[0]
    if split.size:
        extra = heights[split].copy()
        for k, row in enumerate(split):
            cols = np.where(detected[row])[0]
            moved = rng.choice(cols, size=rng.integers(1, cols.size), replace=False)
            keep_cols = np.setdiff1d(np.arange(n_samp), moved)
            extra[k, keep_cols] = 0
            heights[row, moved] = 0
        heights = np.vstack([heights, extra])
        f_comp = np.concatenate([f_comp, f_comp[split]])
        f_mz = np.concatenate([f_mz, f_mz[split]])
        f_rt = np.concatenate([f_rt, f_rt[split] + rng.normal(0, 0.05, split.size)])
        f_adduct += [f_adduct[i] for i in split]
        f_parent += [f_parent[i] for i in split]
        f_mode += [f_mode[i] for i in split]
        kind = np.concatenate([kind, kind[split]])
        n = len(f_comp)

    keep = np.where(heights.max(1) > 0)[0]
    detected = heights > 0

    # ---- observed m/z and RT: per-replicate offsets + per-peak noise, averaged over detecting samples
    ppm_s = rng.normal(0, 2.0, n_samp)
    rt_shift = rng.normal(0, 0.03, n_samp)
    rt_scale = rng.normal(1.0, 0.003, n_samp)
    mz_obs = f_mz[:, None] * (1 + (ppm_s + rng.normal(0, 3.0, (n, n_samp))) * 1e-6)
    rt_obs = f_rt[:, None] * rt_scale + rt_shift + rng.normal(0, 0.01, (n, n_samp))
    cnt = np.maximum(detected.sum(1), 1)
    avg_mz = (mz_obs * detected).sum(1) / cnt
    avg_rt = np.clip((rt_obs * detected).sum(1) / cnt, 0.05, None)
    ref = np.argmax(heights, axis=1)
    ref_h = heights[np.arange(n), ref]

    # ---- MS/MS: weak precursors are often not picked by DDA
    p_msms = 1.0 / (1.0 + np.exp(-2.5 * (np.log10(np.maximum(ref_h, 1)) - 3.6)))
    has_msms = rng.random(n) < p_msms
    idx, owner = _gather(w.frag_off, f_comp)
    fmz = w.frag_mz[idx]
    frel = w.frag_rel[idx]
    mode_arr = np.asarray(f_mode)
    frel = frel * np.where(mode_arr[owner] == "dimer", 0.3, 1.0)
    # adduct spectra show the main ion (loss of formate/Na/monomer)
    add_rows = np.where(np.isin(mode_arr, ["fa", "dimer"]))[0]
    fmz = np.concatenate([fmz, w.ion_mz[f_comp[add_rows]]])
    frel = np.concatenate([frel, np.full(add_rows.size, 100.0)])
    owner = np.concatenate([owner, add_rows])
    # unfragmented precursor left in the MS/MS scan (the diagonal of the image)
    resid = np.where(rng.random(n) < 0.5)[0]
    fmz = np.concatenate([fmz, f_mz[resid]])
    frel = np.concatenate([frel, rng.uniform(2.0, 40.0, resid.size)])
    owner = np.concatenate([owner, resid])
    # chemical noise peaks
    n_noise = rng.poisson(1.2, n)
    noise_owner = np.repeat(np.arange(n), n_noise)
    fmz = np.concatenate([fmz, 50 + rng.random(noise_owner.size) * np.maximum(f_mz[noise_owner] - 50, 1)])
    frel = np.concatenate([frel, rng.uniform(0.5, 4.0, noise_owner.size)])
    owner = np.concatenate([owner, noise_owner])
    # per-peak effects
    frel = frel * rng.lognormal(0, 0.25, frel.size)
    p_drop = 0.08 + 0.25 * (frel < 5)
    base_abs = np.maximum(ref_h * rng.uniform(0.03, 0.15, n), 150)
    fabs = np.round(frel / 100 * base_abs[owner])
    fmz = fmz * (1 + (ppm_s[ref][owner] + rng.normal(0, 5.0, fmz.size)) * 1e-6)
    # fragments never exceed the exported (averaged) precursor m/z by more than a rounding-safe 0.01 Da
    ok = (rng.random(fmz.size) >= p_drop) & (fabs >= 5) & (fmz < avg_mz[owner] + 0.01) & has_msms[owner]
    owner, fmz, fabs = owner[ok], fmz[ok], fabs[ok]
    order = np.lexsort((-fabs, owner))
    owner, fmz, fabs = owner[order], fmz[order], fabs[order]
    first = np.searchsorted(owner, owner, side="left")
    topk = (np.arange(owner.size) - first) < MAX_FRAGMENTS
    owner, fmz, fabs = owner[topk], fmz[topk], fabs[topk]
    order = np.lexsort((fmz, owner))
    owner, fmz, fabs = owner[order], fmz[order], fabs[order]
    bounds = np.searchsorted(owner, np.arange(n + 1))

    # ---- annotation and text
    sample_names = [f"{name}_r{r + 1}" for r in range(n_rep)] + [f"{name}_blank", f"{name}_QC"]
    classes = [name] * n_rep + ["Blank", "QC"]
    file_types = ["Sample"] * n_rep + ["Blank", "QC"]
    groups = [name, "Blank", "QC"]
    group_cols = [list(range(n_rep)), [blank_col], [qc_col]]

    order_rows = keep[np.argsort(avg_mz[keep], kind="stable")]
    row_id = {int(f): i for i, f in enumerate(order_rows)}
    annotate_draw = rng.random(n)
    sn_noise = rng.lognormal(np.log(250), 0.3, n)
    score_draw = rng.uniform([75, 80, 0.7, 0.75, 60], [95, 99, 0.95, 0.98, 100], (n, 5))
    lines = []
    pad = [""] * (len(MSDIAL_HEADER) - 1)
    meta_values = {
        "Class": classes + ["NA"] * 6,
        "File type": file_types + ["NA"] * 6,
        "Injection order": [str(i + 1) for i in range(n_samp)] + ["NA"] * 6,
        "Batch ID": ["1"] * n_samp + ["Average"] * 3 + ["Stdev"] * 3,
    }
    for label in METADATA_ROWS:
        lines.append("\t".join(pad + [label] + meta_values[label]))
    lines.append("\t".join(MSDIAL_HEADER + sample_names + groups + groups))
    # vectorised cell values, then plain Python lists (much faster to format than numpy scalars)
    frag_cells = [f"{m}:{a}" for m, a in zip(np.round(fmz, 5).tolist(), fabs.astype(np.int64).tolist(), strict=True)]
    h_int = heights.astype(np.int64)
    h_cells = [[str(v) for v in row] for row in h_int.tolist()]
    means = np.stack([heights[:, c].mean(1) for c in group_cols], axis=1).tolist()
    sds = np.stack([heights[:, c].std(1, ddof=1) if len(c) > 1 else np.zeros(n) for c in group_cols], axis=1).tolist()
    ref_h_int = h_int[np.arange(n), ref]
    iso_r1 = 0.011 * np.maximum(f_mz, 100) / 14.0
    iso_cells = [
        f"{m0}:{a0} {m1}:{a1} {m2}:{a2}"
        for m0, m1, m2, a0, a1, a2 in zip(
            np.round(avg_mz, 5).tolist(), np.round(avg_mz + C13_DELTA, 5).tolist(),
            np.round(avg_mz + 2 * C13_DELTA, 5).tolist(), ref_h_int.tolist(),
            (ref_h_int * iso_r1).astype(np.int64).tolist(), (ref_h_int * iso_r1 * iso_r1 / 2).astype(np.int64).tolist(),
            strict=True,
        )
    ]  # fmt: skip
    mz_cells = np.round(avg_mz, 5).tolist()
    rt_cells = np.round(avg_rt, 3).tolist()
    fill_cells = [f"{x:g}" for x in (detected.sum(1) / n_samp).tolist()]
    sn_cells = [f"{x:.2f}" for x in (ref_h / sn_noise).tolist()]
    bounds_l = bounds.tolist()
    ref_l = ref.tolist()
    comp_l = f_comp.tolist()
    kind_l = kind.tolist()
    null_ident = ["null"] * 6 + ["999", "False", "False", "False"]
    null_scores = ["null"] * 5
    for i, f in enumerate(order_rows.tolist()):
        lo, hi = bounds_l[f], bounds_l[f + 1]
        annot = w.annot[comp_l[f]] if f_mode[f] == "main" and kind_l[f] == "sample" else None
        if annot is not None and hi > lo and annotate_draw[f] < 0.6:
            ident = [
                _fmt_num(round(annot["ref_rt"], 3)), _fmt_mz(annot["ref_mz"]), annot["formula"], annot["ontology"],
                annot["inchikey"], annot["smiles"], "430", "True", "True", "True",
            ]  # fmt: skip
            sc = score_draw[f]
            scores = [f"{sc[0]:.1f}", f"{sc[1]:.1f}", f"{sc[2]:.3f}", f"{sc[3]:.3f}", f"{sc[4]:.1f}"]
            met_name = annot["name"]
        else:
            ident, scores, met_name = null_ident, null_scores, "Unknown"
        parent = f_parent[f]
        post = f"adduct linked to {row_id[parent]}_{main_label}" if parent >= 0 and parent in row_id else ""
        cells = [
            str(i), str(rt_cells[f]), str(mz_cells[f]), met_name, f_adduct[f], post, fill_cells[f],
            "True" if hi > lo else "False", *ident, "", "False", "False", "null", "null", *scores, sn_cells[f],
            sample_names[ref_l[f]], iso_cells[f], " ".join(frag_cells[lo:hi]), *h_cells[f],
            *[_fmt_num(v) for v in means[f]], *[_fmt_num(v) for v in sds[f]],
        ]  # fmt: skip
        lines.append("\t".join(cells))
    text = EOL.join(lines) + EOL
    return _Accession(name=name, text=text, n_rows=len(order_rows), latent=latent, assays=assays)


# --------------------------------------------------------------------------------------------------------------
# The cohort
# --------------------------------------------------------------------------------------------------------------
@dataclass
class CohortSummary:
    """What :func:`make_cohort` wrote."""

    out_dir: Path
    accessions: list[str]  # written by this call
    n_total: int  # accessions in the cohort after this call
    files: list[Path]
    precursors: list[int]  # rows per export written by this call
    class_counts: dict[str, dict[str, int]]  # whole cohort, thresholds 0.4 / 0.6
    latent: pd.DataFrame  # this call's accessions: family abundances (mg/g) and total_phenolics
    assays: pd.DataFrame  # this call's accessions
    seconds: float = 0.0
    bytes_written: int = 0
    seed: int = 42
    polarity: str = "negative"
    extra: dict = field(default_factory=dict)

    @property
    def precursors_mean(self) -> float:
        return float(np.mean(self.precursors)) if self.precursors else 0.0

    def format(self) -> str:
        """A short human-readable report."""
        lines = [
            f"synthetic cohort in {self.out_dir} (seed {self.seed}, {self.polarity} mode)",
            (
                f"  accessions written: {len(self.accessions)} ({self.accessions[0]}..{self.accessions[-1]}), "
                f"cohort total {self.n_total}"
            ),
            f"  files: {len(self.files)}, {self.bytes_written / 1e6:.1f} MB, {self.seconds:.1f} s",
            (
                f"  precursors per accession: mean {self.precursors_mean:.0f} "
                f"(min {min(self.precursors)}, max {max(self.precursors)})"
            ),
            "  classes after min-max normalisation (<0.4 low, >0.6 high):",
        ]
        for assay, c in self.class_counts.items():
            lines.append(f"    {assay:9s} low {c['low']:4d}  high {c['high']:4d}  left out {c['dropped']:4d}")
        return "\n".join(lines)


def accession_rng(seed: int, i: int) -> np.random.Generator:
    """The random stream of accession number ``i`` (independent of how many accessions are made)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 1, int(i)]))


def _frames(names: list[str], latents: list[np.ndarray], assays: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    latent_df = pd.DataFrame(np.array(latents).reshape(len(names), len(FAMILY_NAMES)), columns=FAMILY_NAMES)
    latent_df["total_phenolics"] = latent_df[PHENOLIC_FAMILIES].sum(axis=1)
    latent_df.insert(0, "accession", names)
    assay_df = pd.DataFrame(assays, columns=list(ASSAYS))
    assay_df.insert(0, "accession", names)
    return latent_df, assay_df


def cohort_assays(accessions: int = 200, seed: int = 42, start: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(latent, assays)`` exactly as :func:`make_cohort` draws them, without simulating the spectra (fast).

    Used to check class balance and assay/chemistry dependence for many accessions and seeds.
    """
    names, latents, assays = [], [], []
    for i in range(start, start + accessions):
        rng = accession_rng(seed, i)
        latent = draw_latent(rng)
        names.append(accession_name(i))
        latents.append(latent)
        assays.append(assays_from_latent(latent, rng))
    return _frames(names, latents, assays)


def accession_name(i: int) -> str:
    """``ACC0001`` for ``i = 1`` (four digits, more when needed)."""
    return f"ACC{i:04d}"


_ACC_RE = re.compile(r"^ACC(\d+)$")


def _existing_accessions(out_dir: Path) -> list[str]:
    path = out_dir / "assays.csv"
    if not path.exists():
        raise ConfigError(f"{out_dir}: --append needs an existing cohort (no assays.csv there)")
    try:
        df = pd.read_csv(path, dtype={"accession": str})
    except Exception as exc:  # noqa: BLE001 - any parse problem is the user's file
        raise ConfigError(f"{path}: cannot read existing assays ({exc})") from None
    if "accession" not in df.columns:
        raise ConfigError(f"{path}: no 'accession' column")
    return df["accession"].astype(str).tolist()


def _clear_generated(out_dir: Path) -> None:
    """Remove files an earlier run of the generator wrote (only those)."""
    for name in ("assays.csv", "latent.csv", "cohort.json"):
        (out_dir / name).unlink(missing_ok=True)
    exports = out_dir / "exports"
    if exports.is_dir():
        for p in exports.glob("ACC*.txt"):
            if _ACC_RE.match(p.stem):
                p.unlink()


def _csv_rows(df: pd.DataFrame, header: bool) -> str:
    return df.to_csv(index=False, header=header, lineterminator="\n", float_format="%.4f")


def make_cohort(
    out_dir: str | Path,
    accessions: int = 200,
    replicates: int = 3,
    seed: int = 42,
    append: bool = False,
    polarity: str = "negative",
    force: bool = False,
    progress: bool = False,
) -> CohortSummary:
    """Write a synthetic cohort of ``accessions`` MS-DIAL exports plus ``assays.csv`` under ``out_dir``.

    ``append=True`` adds ``accessions`` new ones after the highest existing number and appends their assay rows;
    existing exports are never touched. The compound pool comes from the seed in ``cohort.json`` (so new
    accessions share the cohort's chemistry), the new accessions' draws from ``seed``. Without ``append`` an
    existing, non-empty ``out_dir`` is an error unless ``force=True`` (which removes earlier generated files).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if isinstance(accessions, bool) or not isinstance(accessions, int | np.integer) or accessions < 1:
        raise ConfigError(f"accessions must be a positive integer, got {accessions!r}")
    if isinstance(replicates, bool) or not isinstance(replicates, int | np.integer) or not 1 <= replicates <= 20:
        raise ConfigError(f"replicates must be an integer from 1 to 20, got {replicates!r}")
    if polarity not in POLARITIES:
        raise ConfigError(f"polarity must be one of {POLARITIES}, got '{polarity}'")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be an integer, got {seed!r}") from None
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a directory")

    meta_path = out_dir / "cohort.json"
    world_seed = seed
    existing: list[str] = []
    if append:
        existing = _existing_accessions(out_dir)
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"{meta_path}: not valid JSON ({exc})") from None
            world_seed = int(meta.get("seed", seed))
            if meta.get("polarity", polarity) != polarity:
                raise ConfigError(
                    f"{out_dir}: cohort is {meta.get('polarity')} mode, cannot append {polarity} accessions"
                )
        numbers = [int(m.group(1)) for a in existing if (m := _ACC_RE.match(a))]
        start = max(numbers, default=0) + 1
    else:
        if out_dir.is_dir() and any(out_dir.iterdir()):
            if not force:
                raise ConfigError(f"{out_dir}: output directory exists and is not empty (use --append or --force)")
            _clear_generated(out_dir)
        start = 1

    world = build_world(world_seed, polarity)
    names = [accession_name(i) for i in range(start, start + accessions)]
    taken = set(existing)
    clash = [a for a in names if a in taken]
    if clash:
        raise ConfigError(f"{out_dir}: accessions {clash[:3]} already exist")

    exports = out_dir / "exports"
    targets = [exports / f"{name}.txt" for name in names]
    present = [p for p in targets if p.exists()]
    if present:
        raise ConfigError(f"{present[0]}: already exists; refusing to overwrite an existing export")
    files: list[Path] = []
    rows, latents, assays = [], [], []
    n_bytes = 0
    try:
        for i, name, path in tqdm(
            list(zip(range(start, start + accessions), names, targets, strict=True)),
            desc="synth",
            unit="accession",
            disable=None if progress else True,
        ):
            acc = simulate_accession(world, name, accession_rng(seed, i), replicates=replicates)
            data = acc.text.encode("utf-8")
            write_bytes(path, data)
            files.append(path)
            n_bytes += len(data)
            rows.append(acc.n_rows)
            latents.append(acc.latent)
            assays.append(acc.assays)
    except BaseException:
        for path in files:  # no half-made cohort: exports without assay rows would block the next append
            path.unlink(missing_ok=True)
        raise
    latent_df, assay_df = _frames(names, latents, assays)

    for fname, df in (("assays.csv", assay_df), ("latent.csv", latent_df)):
        path = out_dir / fname
        if append and path.exists():
            old = path.read_bytes()
            if old and not old.endswith(b"\n"):
                old += b"\n"
            data = old + _csv_rows(df, header=False).encode("utf-8")
        else:
            data = _csv_rows(df, header=True).encode("utf-8")
        write_bytes(path, data)
        files.append(path)
    if not append or not meta_path.exists():
        meta = {"generator": "ms2img.synth", "version": GENERATOR_VERSION, "seed": world_seed, "polarity": polarity}
        write_bytes(meta_path, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
        files.append(meta_path)

    all_assays = pd.read_csv(out_dir / "assays.csv", dtype={"accession": str})
    summary = CohortSummary(
        out_dir=out_dir,
        accessions=names,
        n_total=len(all_assays),
        files=files,
        precursors=rows,
        class_counts=class_counts(all_assays),
        latent=latent_df,
        assays=assay_df,
        seconds=time.perf_counter() - t0,
        bytes_written=n_bytes,
        seed=seed,
        polarity=polarity,
    )
    log.debug("wrote %d accessions to %s in %.1f s", len(names), out_dir, summary.seconds)
    return summary
