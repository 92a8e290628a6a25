"""Cohort B: a second development cohort that ``ms2img synth`` did not write (issue 20, Build item 6).

Why: a default chosen on one generator can fit that generator's modelling choices rather than the data. This
script writes the same files ``ms2img synth`` writes (MS-DIAL v4 alignment exports, one per accession, and
``assays.csv`` with DPPH, elastase, TFC and TPC in the same units) from different choices at every step:

* **compound pool**: real positive-mode MS/MS from ``../shared/data``, read with matchms: DDA scans of a
  Q Exactive QC injection and of dissolved organic matter (mzmine raw slices), FERMO's microbial feature spectra,
  the msdialr LC-MS export's spectra, and a minority (< 10 %) of PhenolicsDB positive standards (one collision
  energy, not merged); none of the matchms test spectra ``ms2img synth`` uses as background;
* **accessions**: plant families on a small phylogeny ((F1, F2), (F3, (F4, F5))), three genera each; every
  specialised compound originates at one node of the tree and is common below it, rare elsewhere; lognormal
  amounts with family-specific means (many compounds absent); a core of features common to every extract;
* **runs**: 2-4 injection batches partly confounded with family, replicates spread over the batch in a
  randomised block order (drift hits the three injections differently), batch intensity, drift, RT and ppm
  shifts, global (not co-elution) ion suppression, system ions in blanks and samples;
* **MS/MS**: DDA dropout of weak precursors, some strong ones without MS/MS (dynamic exclusion), noise peaks,
  the unfragmented precursor with its M+1 isotope peak above it, [M+Na]+ with almost empty MS/MS, in-source
  fragments, dimers;
* **activity**: Hill functions of a few specific actives (DPPH with an antagonist, elastase with a synergistic
  pair), TFC driven by a compound class defined by a shared fragment ion, TPC by a second class plus the first,
  MS-invisible family-level contributions, multiplicative and additive assay noise.

It is for development and benchmarks only: nothing in ``ms2img/`` imports it, and it imports only the project's
MS-DIAL writer. Deterministic for a seed.

    .venv/bin/python benchmarks/cohort_b.py --out DIR [--accessions 240] [--seed 7]

Writes ``DIR/exports/<accession>.txt``, ``DIR/assays.csv``, ``DIR/truth.json`` (which compounds drive which
assay) and ``DIR/README.txt``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ms2img.io.msdial_writer import AlignmentExport, Annotation, format_alignment, isotope_cells, msms_cells  # noqa: E402

GENERATOR = "benchmarks/cohort_b.py"
VERSION = 1
ASSAYS = ("DPPH", "elastase", "TFC", "TPC")
UNITS = {"DPPH": "% scavenging", "elastase": "% inhibition", "TFC": "mg QE/g", "TPC": "mg GAE/g"}
PROTON = 1.007276
NA_SHIFT = 21.981945  # [M+Na]+ - [M+H]+
C13 = 1.003355
REPLICATES = 3
HEIGHT_PER_UNIT = 3.0e5  # MS1 height of one amount unit at response 1
LOD = 1500.0  # heights below this are written as 0
SUPPRESSION_LOAD = 3.0e8  # summed height that halves every signal (global, not co-elution)
MAX_PEAKS = 30  # MS/MS peaks written per row
# phylogeny: node -> families below it; specialised compounds originate at one node
FAMILIES = ("F1", "F2", "F3", "F4", "F5")
GENERA = 3
NODES: dict[str, tuple[int, ...]] = {
    "F1": (0,), "F2": (1,), "F3": (2,), "F4": (3,), "F5": (4,),
    "F1+F2": (0, 1), "F4+F5": (3, 4), "F3+F4+F5": (2, 3, 4), "root": (0, 1, 2, 3, 4),
}  # fmt: skip
NODE_PROBS = np.array([0.13, 0.13, 0.13, 0.13, 0.13, 0.1, 0.08, 0.07, 0.1])
N_CORE = 30  # features in every extract at steady levels
N_SYSTEM = 14  # system ions (blank and samples); each batch shows a subset


# ---------------------------------------------------------------------------------------------------------------
# the compound pool: real positive-mode spectra
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Spectrum:
    """One cleaned reference spectrum (relative intensities, max 100, all below the precursor)."""

    precursor_mz: float
    mz: np.ndarray
    rel: np.ndarray
    source: str
    name: str = ""


def data_dir() -> Path:
    """``../shared/data`` beside the checkout (or ``$MS2IMG_SHARED_DATA``): the pool is read, never copied."""
    env = os.environ.get("MS2IMG_SHARED_DATA")
    cands = [Path(env)] if env else []
    cands += [REPO.parent / "shared" / "data", REPO / "shared" / "data"]
    for c in cands:
        if (c / "mzmine_dda_rawslices").is_dir():
            return c
    raise SystemExit(f"cohort_b: no shared data folder (tried {', '.join(map(str, cands))}); set MS2IMG_SHARED_DATA")


def _clean(prec: float, mz: np.ndarray, it: np.ndarray, min_rel: float, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Fragments below the precursor, at least ``min_rel`` % of the base peak, the ``top`` most intense."""
    keep = (it > 0) & (mz >= 40.0) & (mz < prec - 0.5)
    mz, it = mz[keep], it[keep]
    if mz.size == 0:
        return mz, it
    rel = 100.0 * it / it.max()
    keep = rel >= min_rel
    mz, rel = mz[keep], rel[keep]
    top_idx = np.sort(np.argsort(-rel, kind="stable")[:top])
    return mz[top_idx], rel[top_idx]


def _precursor(md: dict) -> float | None:
    value = md.get("precursor_mz", md.get("pepmass"))
    if isinstance(value, tuple | list):
        value = value[0] if value else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _matchms(path: Path) -> list:
    """Spectra of an MGF / mzML / mzXML file through matchms (quietly)."""
    from matchms.importing import load_from_mgf, load_from_mzml, load_from_mzxml

    logging.getLogger("matchms").setLevel(logging.ERROR)
    loader = {".mgf": load_from_mgf, ".mzml": load_from_mzml, ".mzxml": load_from_mzxml}[path.suffix.lower()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [s for s in loader(str(path), metadata_harmonization=False) if s is not None]


def _from_matchms(path: Path, source: str, min_rel: float, top: int) -> list[Spectrum]:
    """Raw DDA or MGF spectra; of repeated scans of one precursor (0.01 Da) the one with most signal is kept."""
    best: dict[int, tuple[float, Spectrum]] = {}
    for s in _matchms(path):
        prec = _precursor(s.metadata)
        if prec is None:
            continue
        mz = np.asarray(s.peaks.mz, float)
        it = np.asarray(s.peaks.intensities, float)
        total = float(it.sum())
        fm, fr = _clean(prec, mz, it, min_rel, top)
        if fm.size < 3:
            continue
        key = round(float(prec) * 100)
        if key not in best or total > best[key][0]:
            best[key] = (total, Spectrum(prec, fm, fr, source))
    return [v[1] for _, v in sorted(best.items())]


def _phenolics(path: Path) -> list[Spectrum]:
    """PhenolicsDB positive standards: the lowest collision energy of each compound (not a merged stepped CE)."""
    by_name: dict[str, tuple[float, Spectrum]] = {}
    for s in _matchms(path):
        prec = _precursor(s.metadata)
        name = str(s.metadata.get("compound_name") or "")
        if prec is None or not name:
            continue
        base, _, ce = name.rpartition(" ")
        try:
            energy = float(ce.lower().replace("ev", ""))
        except ValueError:
            base, energy = name, 0.0
        fm, fr = _clean(prec, np.asarray(s.peaks.mz, float), np.asarray(s.peaks.intensities, float), 1.0, 25)
        if fm.size < 3:
            continue
        if base not in by_name or energy < by_name[base][0]:
            by_name[base] = (energy, Spectrum(prec, fm, fr, "PhenolicsDB_Positive.mgf", base))
    return [v[1] for _, v in sorted(by_name.items())]


def _msdialr(path: Path) -> list[Spectrum]:
    """[M+H]+ rows of the msdialr LC-MS export: real sample spectra, noise included (read as text)."""
    table = pd.read_csv(path, sep="\t", skiprows=4, dtype=str)
    out = []
    for prec_s, adduct, cell in zip(table["Average Mz"], table["Adduct type"], table["MS/MS spectrum"], strict=True):
        if adduct != "[M+H]+" or not isinstance(cell, str) or not cell.strip():
            continue
        pairs = np.array([[float(x) for x in p.split(":")] for p in cell.split()])
        prec = float(prec_s)
        fm, fr = _clean(prec, pairs[:, 0], pairs[:, 1], 2.0, 25)
        if fm.size >= 3:
            out.append(Spectrum(prec, fm, fr, path.name))
    return out


@lru_cache(maxsize=2)
def load_pool(root: Path) -> tuple[Spectrum, ...]:
    """Every usable spectrum, 100-1400 m/z, one per precursor (0.01 Da) across sources, first source wins.

    The second QC injection of the mzmine slices is left out: it repeats the first one's precursors.
    """
    raw = root / "mzmine_dda_rawslices"
    sources = [
        _from_matchms(raw / "171103_PMA_TK_QC_04-4to5min.mzML", "PMA_TK_QC_04.mzML", 1.0, 25),
        _from_matchms(root / "fermo_case_study" / "case_study_MSMS.mgf", "FERMO case_study_MSMS.mgf", 1.0, 25),
        _msdialr(root / "msdialr_lcms_demo" / "MSDIAL_Alignment_result_LC-MS.txt"),
        _from_matchms(raw / "DOM_b.mzXML", "DOM_b.mzXML", 2.0, 25),
        _phenolics(root / "phenolicsdb_reference" / "PhenolicsDB_Positive.mgf"),
    ]
    seen: set[int] = set()
    pool = []
    for spectra in sources:
        for s in spectra:
            key = round(float(s.precursor_mz) * 100)
            if not 100.0 <= s.precursor_mz <= 1400.0 or key in seen:
                continue
            seen.add(key)
            pool.append(s)
    return tuple(pool)


# ---------------------------------------------------------------------------------------------------------------
# the world: roles, phylogeny, responses, activity model
# ---------------------------------------------------------------------------------------------------------------

CORE, SYSTEM, SPECIAL = 0, 1, 2


@dataclass
class World:
    """Every compound of the cohort and the rules that place them in extracts and assays (fixed by the seed)."""

    spectra: list[Spectrum]
    role: np.ndarray  # CORE | SYSTEM | SPECIAL
    rt: np.ndarray
    response: np.ndarray
    node: list[str]  # origin node of a specialised compound ("" otherwise)
    presence: np.ndarray  # (compounds, families * GENERA) probability of being present
    log_mu: np.ndarray  # (compounds, families) log mean amount
    log_sd: np.ndarray  # per compound, between accessions
    na_ratio: np.ndarray  # [M+Na]+ / [M+H]+ height ratio (0: no sodium adduct)
    isf_ratio: np.ndarray  # in-source fragment height ratio (0: none)
    isf_mz: np.ndarray
    family_probs: np.ndarray
    invisible: np.ndarray  # (families, 2): MS-invisible antioxidant / reductant level per family
    inducible: np.ndarray  # log-amount change per unit of an extract's growth-condition level
    n_batches: int
    batch_pref: np.ndarray  # preferred batch per family
    model: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.spectra)

    @property
    def mz(self) -> np.ndarray:
        return np.array([s.precursor_mz for s in self.spectra])


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), 0xB0B, *key]))


def _class_members(spectra: list[Spectrum], pool: np.ndarray, frag: float) -> np.ndarray:
    """Compounds of ``pool`` whose spectrum has ``frag`` (+-0.006 Da) at >= 5 % of its base peak."""
    return np.array(
        [i for i in pool.tolist() if np.any((np.abs(spectra[i].mz - frag) <= 0.006) & (spectra[i].rel >= 5.0))],
        dtype=int,
    )


def _pick_classes(spectra: list[Spectrum], special: np.ndarray, rng: np.random.Generator) -> list[float]:
    """Two diagnostic fragment ions (m/z 100-450) each shared by 12-45 specialised compounds, little overlap."""
    counts: dict[int, set[int]] = {}
    for i in special.tolist():
        s = spectra[i]
        for b in set(np.round(s.mz[(s.rel >= 5.0) & (s.mz >= 100) & (s.mz <= 450)] * 100).astype(int).tolist()):
            counts.setdefault(b, set()).add(i)
    cands = sorted(b for b, m in counts.items() if 12 <= len(m) <= 45)
    rng.shuffle(cands)
    chosen: list[float] = []
    sets: list[set[int]] = []
    for b in cands:
        frag = float(np.median(np.concatenate([spectra[i].mz[np.abs(spectra[i].mz - b / 100) <= 0.006]
                                                for i in counts[b]])))  # fmt: skip
        members = set(_class_members(spectra, special, frag).tolist())
        if len(members) < 12 or any(abs(frag - c) < 1.5 for c in chosen):
            continue
        if any(len(members & m) > 0.3 * min(len(members), len(m)) for m in sets):
            continue
        chosen.append(frag)
        sets.append(members)
        if len(chosen) == 2:
            break
    if len(chosen) < 2:
        raise SystemExit("cohort_b: the pool has no two diagnostic fragment ions to define compound classes")
    return chosen


def build_world(seed: int, spectra: tuple[Spectrum, ...] | list[Spectrum]) -> World:
    """Roles, phylogeny, amounts, responses and the activity model, all from ``seed``."""
    rng = _rng(seed, 0)
    n = len(spectra)
    mz = np.array([s.precursor_mz for s in spectra])
    nfrag = np.array([s.mz.size for s in spectra])
    order = rng.permutation(n)
    role = np.full(n, SPECIAL)
    role[order[:N_CORE]] = CORE
    role[order[N_CORE : N_CORE + N_SYSTEM]] = SYSTEM
    # RT: a reversed-phase-like trend with mass (heavier later), wide scatter, 0.4-14.5 min
    rt = np.clip(1.5 + 7.5 * np.log(mz / 100) / np.log(14) + rng.normal(0, 1.8, n), 0.4, 14.5)
    response = rng.lognormal(0, 0.8, n)
    n_fam = len(FAMILIES)
    n_clade = n_fam * GENERA
    presence = np.zeros((n, n_clade))
    log_mu = np.zeros((n, n_fam))
    log_sd = rng.uniform(0.6, 1.2, n)
    node_names = list(NODES)
    node = [""] * n
    for i in range(n):
        if role[i] == CORE:
            presence[i] = 1.0
            log_mu[i] = np.log(rng.uniform(0.5, 2.0)) + rng.normal(0, 0.3, n_fam)
            log_sd[i] = 0.25
            continue
        if role[i] == SYSTEM:
            continue  # system ions are added per batch, not per extract
        nd = node_names[int(rng.choice(len(node_names), p=NODE_PROBS / NODE_PROBS.sum()))]
        node[i] = nd
        inside = np.zeros(n_fam, bool)
        inside[list(NODES[nd])] = True
        p_fam = np.where(inside, rng.beta(6, 2, n_fam), rng.beta(1, 8, n_fam))
        for f in range(n_fam):
            g = p_fam[f] * rng.uniform(0.4, 1.25, GENERA)
            lost = rng.random(GENERA) < (0.15 if inside[f] else 0.0)  # a genus that lost the pathway
            presence[i, f * GENERA : (f + 1) * GENERA] = np.clip(np.where(lost, 0.05 * g, g), 0.0, 0.97)
        log_mu[i] = rng.normal(np.log(0.15), 1.0) + rng.normal(0, 0.5, n_fam) + np.where(inside, 0.4, -0.4)
    na_ratio = np.where(rng.random(n) < 0.25, rng.uniform(0.05, 0.5, n), 0.0)
    isf_ratio = np.where((rng.random(n) < 0.15) & (nfrag >= 3), rng.uniform(0.05, 0.4, n), 0.0)
    isf_mz = np.array([s.mz[np.argmax(np.where(s.mz >= 100, s.rel, -1))] for s in spectra])
    isf_ratio[isf_mz < 100] = 0.0
    family_probs = rng.dirichlet(np.full(n_fam, 6.0))
    invisible = rng.lognormal(0, 0.6, (n_fam, 2))
    inducible = np.where((role == SPECIAL) & (rng.random(n) < 0.2), rng.uniform(0.5, 1.0, n), 0.0)
    n_batches = int(rng.integers(2, 5))
    batch_pref = rng.integers(0, n_batches, n_fam)
    world = World(
        spectra=list(spectra), role=role, rt=rt, response=response, node=node, presence=presence, log_mu=log_mu,
        log_sd=log_sd, na_ratio=na_ratio, isf_ratio=isf_ratio, isf_mz=isf_mz, family_probs=family_probs,
        invisible=invisible, inducible=inducible, n_batches=n_batches, batch_pref=batch_pref,
    )  # fmt: skip
    world.model = _activity_model(world, rng, nfrag)
    _calibrate(world, seed)
    return world


def _activity_model(world: World, rng: np.random.Generator, nfrag: np.ndarray) -> dict:
    """Which compounds drive which assay, how strongly, and the classes (shared fragment ions)."""
    mz = world.mz
    special = np.where(world.role == SPECIAL)[0]
    frag1, frag2 = _pick_classes(world.spectra, special, rng)
    class1 = _class_members(world.spectra, special, frag1)
    class2 = _class_members(world.spectra, special, frag2)
    in_class = set(class1.tolist()) | set(class2.tolist())
    # specific actives: mid-mass, a real spectrum, in a quarter to 60 % of extracts (so their presence varies)
    clade_p = np.repeat(world.family_probs, GENERA) / GENERA
    prevalence = world.presence @ clade_p
    ok = [i for i in special.tolist() if 150 < mz[i] < 1000 and nfrag[i] >= 5 and 0.25 <= prevalence[i] <= 0.6]
    ok = [i for i in ok if i not in in_class]
    picks = rng.choice(ok, size=11, replace=False).tolist()
    # most specific actives respond to growth conditions (defence metabolites), whatever their taxon
    for i in picks:
        if rng.random() < 0.8:
            world.inducible[i] = rng.uniform(0.7, 1.1)
    # a class is one pathway: most of its members rise together with growth conditions
    for i in np.concatenate([class1, class2]).tolist():
        if rng.random() < 0.6:
            world.inducible[i] = rng.uniform(0.6, 1.0)
    q1 = rng.lognormal(0, 0.5, class1.size)
    q2 = rng.lognormal(0, 0.5, class2.size)
    return {
        "DPPH": {
            "actives": picks[0:4], "potency": rng.lognormal(0, 0.4, 4).tolist(),
            "class": {"fragment_mz": frag1, "members": class1.tolist(), "weight": (0.25 * q1).tolist()},
            "antagonist": picks[4], "antagonist_k": 0.0, "hill_n": 1.6, "invisible": 0.4,
            "extraction_sd": 0.25, "noise_sd": 3.0, "emax": 98.0, "ec50_quantile": 0.45,
        },
        "elastase": {
            "actives": picks[5:8], "potency": rng.lognormal(0, 0.4, 3).tolist(),
            "synergy": [picks[5], picks[6]], "synergy_gamma": 0.0, "hill_n": 2.0,
            "extraction_sd": 0.3, "noise_sd": 4.0, "emax": 92.0, "ec50_quantile": 0.5,
        },
        "TFC": {
            "class": {"fragment_mz": frag1, "members": class1.tolist(), "weight": q1.tolist()},
            "hill_n": 1.8, "extraction_sd": 0.12, "noise_sd": 0.8, "emax": 35.0, "floor": 0.5,
            "ec50_quantile": 0.5,
        },
        "TPC": {
            "class": {"fragment_mz": frag2, "members": class2.tolist(), "weight": q2.tolist()},
            "class_b": {"fragment_mz": frag1, "members": class1.tolist(), "weight": (0.5 * q1).tolist()},
            "actives": picks[8:10], "potency": rng.lognormal(0, 0.3, 2).tolist(), "invisible": 0.4,
            "hill_n": 2.0, "extraction_sd": 0.1, "noise_sd": 2.0, "emax": 70.0, "floor": 4.0,
            "ec50_quantile": 0.5,
        },
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# one accession: what is in the extract, what the assays measure
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Extract:
    """The chemistry of one accession."""

    family: int
    genus: int
    induction: float  # growth-condition (stress) level, independent of taxonomy
    invisible: np.ndarray  # (2,) MS-invisible antioxidant / reductant level: family level x this extract's scatter
    amount: np.ndarray  # per compound (0 = absent), arbitrary mg/g-like units


def draw_extract(world: World, rng: np.random.Generator) -> Extract:
    """Family and genus, then presence (clade probabilities) and lognormal amounts of every compound.

    A growth-condition level (stress, season) raises or lowers the inducible compounds in every taxon alike, so
    activity also varies within a genus and not only between taxa.
    """
    fam = int(rng.choice(len(FAMILIES), p=world.family_probs))
    genus = int(rng.integers(GENERA))
    p = world.presence[:, fam * GENERA + genus]
    present = rng.random(world.n) < p
    induction = float(rng.normal())
    log_amount = world.log_mu[:, fam] + world.log_sd * rng.normal(0, 1, world.n) + world.inducible * induction
    invisible = world.invisible[fam] * rng.lognormal(0, 0.6, 2)
    return Extract(fam, genus, induction, invisible, np.exp(log_amount) * present)


def _dose(world: World, assay: str, ex: Extract) -> float:
    """The assay's active dose before extraction noise: specific actives, classes, synergy, invisible matter."""
    m = world.model[assay]
    a = ex.amount
    dose = 0.0
    if "actives" in m:
        dose += float(np.dot(m["potency"], a[m["actives"]]))
    for key in ("class", "class_b"):
        if key in m:
            dose += float(np.dot(m[key]["weight"], a[m[key]["members"]]))
    if "synergy" in m:
        i, j = m["synergy"]
        dose += m["synergy_gamma"] * float(a[i] * a[j])
    if "invisible" in m:
        k = 0 if assay == "DPPH" else 1
        dose += m["invisible"] * m.get("invisible_scale", 0.0) * float(ex.invisible[k])
    if "antagonist" in m and m["antagonist_k"] > 0:
        dose /= 1.0 + float(a[m["antagonist"]]) / m["antagonist_k"]
    return dose


def _hill(x: float, ec50: float, n: float) -> float:
    return float(x**n / (x**n + ec50**n)) if x > 0 else 0.0


def assay_values(world: World, ex: Extract, rng: np.random.Generator) -> dict[str, float]:
    """Assay readouts: saturating (Hill) response of the extraction-noised dose plus the assay's own noise."""
    out = {}
    for assay in ASSAYS:
        m = world.model[assay]
        dose = _dose(world, assay, ex) * rng.lognormal(0, m["extraction_sd"])
        value = m.get("floor", 0.0) + m["emax"] * _hill(dose, m["ec50"], m["hill_n"]) + rng.normal(0, m["noise_sd"])
        out[assay] = float(np.clip(value, 0.0, 100.0)) if UNITS[assay].startswith("%") else float(max(value, 0.05))
    return out


def _calibrate(world: World, seed: int, n_draws: int = 3000) -> None:
    """Scale interaction terms and EC50s from the world's own dose distribution (never from the accessions)."""
    rng = _rng(seed, 1)
    extracts = [draw_extract(world, rng) for _ in range(n_draws)]
    amounts = np.array([e.amount for e in extracts])
    m = world.model
    ant = amounts[:, m["DPPH"]["antagonist"]]
    m["DPPH"]["antagonist_k"] = float(np.quantile(ant[ant > 0], 0.5)) if np.any(ant > 0) else 1.0
    i, j = m["elastase"]["synergy"]
    single = amounts[:, m["elastase"]["actives"]] @ np.asarray(m["elastase"]["potency"])
    pair = amounts[:, i] * amounts[:, j]
    m["elastase"]["synergy_gamma"] = (
        float(np.mean(single) / max(np.mean(pair[pair > 0]), 1e-9)) if np.any(pair > 0) else 0.0
    )
    for assay, k in (("DPPH", 0), ("TPC", 1)):
        m[assay]["invisible_scale"] = 0.0
        base = np.array([_dose(world, assay, e) for e in extracts])
        m[assay]["invisible_scale"] = float(np.median(base) / np.mean(world.invisible[:, k]))
    for assay in ASSAYS:
        doses = np.array([_dose(world, assay, e) for e in extracts])
        positive = doses[doses > 0]
        # EC50 where a share ``1 - ec50_quantile`` of extracts lies above it (among those with any dose at all)
        q = 1.0 - (1.0 - m[assay]["ec50_quantile"]) / max(positive.size / doses.size, 1e-9)
        m[assay]["ec50"] = float(np.quantile(positive, min(max(q, 0.1), 0.9))) if positive.size else 1.0


# ---------------------------------------------------------------------------------------------------------------
# batches and the LC-MS/MS run of one accession
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Batch:
    """An injection batch: effects shared by its accessions and unrelated to activity."""

    index: int
    intensity: float
    drift: float  # log sensitivity lost from the first to the last injection
    rt_shift: float
    rt_scale: float
    ppm: float
    system_level: float
    system: np.ndarray  # system-ion compound indices seen in this batch


def make_batches(world: World, seed: int) -> list[Batch]:
    """Batch effects, one stream per batch."""
    systems = np.where(world.role == SYSTEM)[0]
    out = []
    for b in range(world.n_batches):
        r = _rng(seed, 2, b)
        out.append(Batch(
            index=b, intensity=float(r.lognormal(0, 0.4)), drift=float(r.uniform(0.05, 0.4)),
            rt_shift=float(r.normal(0, 0.2)), rt_scale=float(r.normal(1.0, 0.01)), ppm=float(r.normal(0, 5.0)),
            system_level=float(r.lognormal(0, 0.5)),
            system=np.sort(r.choice(systems, size=min(9, systems.size), replace=False)),
        ))  # fmt: skip
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_run(
    world: World, name: str, ex: Extract, batch: Batch, order: list[int], n_inj: int, rng: np.random.Generator
) -> AlignmentExport:
    """The alignment export of one accession: 3 replicate injections, a blank and a QC of its batch."""
    w = world
    comps = np.where(ex.amount > 0)[0]
    h0 = ex.amount[comps] * w.response[comps] * HEIGHT_PER_UNIT
    h0 = h0 / (1.0 + h0.sum() / SUPPRESSION_LOAD)  # global ion suppression by the total load
    # features: compound, ion m/z, kind (0 [M+H]+, 1 [M+Na]+, 2 in-source fragment, 3 [2M+H]+, 4 system), height
    f_comp, f_mz, f_kind, f_h = [comps], [w.mz[comps]], [np.zeros(comps.size, int)], [h0]
    na = (w.na_ratio[comps] > 0) & (rng.random(comps.size) < 0.8)
    f_comp.append(comps[na])
    f_mz.append(w.mz[comps[na]] + NA_SHIFT)
    f_kind.append(np.full(na.sum(), 1))
    f_h.append(h0[na] * w.na_ratio[comps[na]] * rng.lognormal(0, 0.2, na.sum()))
    isf = w.isf_ratio[comps] > 0
    f_comp.append(comps[isf])
    f_mz.append(w.isf_mz[comps[isf]])
    f_kind.append(np.full(isf.sum(), 2))
    f_h.append(h0[isf] * w.isf_ratio[comps[isf]])
    dim = (w.mz[comps] < 600) & (rng.random(comps.size) < 0.03)
    f_comp.append(comps[dim])
    f_mz.append(2 * w.mz[comps[dim]] - PROTON)
    f_kind.append(np.full(dim.sum(), 3))
    f_h.append(h0[dim] * rng.uniform(0.02, 0.08, dim.sum()))
    sysc = batch.system
    f_comp.append(sysc)
    f_mz.append(w.mz[sysc])
    f_kind.append(np.full(sysc.size, 4))
    f_h.append(np.exp(np.linspace(9.5, 12.5, sysc.size)) * batch.system_level)
    comp = np.concatenate(f_comp)
    ion = np.concatenate(f_mz)
    kind = np.concatenate(f_kind)
    true_h = np.concatenate(f_h)
    n = comp.size
    n_samp = REPLICATES + 2
    blank, qc = REPLICATES, REPLICATES + 1

    # heights: injection sensitivity (batch, drift along the run order), per-feature scatter, LOD, misses
    frac = np.array([o / max(n_inj - 1, 1) for o in order])
    sens = batch.intensity * np.exp(-batch.drift * frac) * rng.lognormal(0, 0.07, n_samp)
    heights = np.zeros((n, n_samp))
    is_sys = kind == 4
    heights[:, :REPLICATES] = true_h[:, None] * sens[:REPLICATES] * rng.lognormal(0, 0.12, (n, REPLICATES))
    heights[:, qc] = true_h * np.where(is_sys, 1.0, rng.uniform(0.3, 0.6)) * sens[qc] * rng.lognormal(0, 0.12, n)
    heights[:, blank] = np.where(is_sys, true_h * sens[blank] * rng.lognormal(0, 0.25, n), 0.0)
    top = np.argsort(-heights[:, 0])[:8]
    heights[top, blank] += heights[top, 0] * 0.003  # carry-over
    heights[rng.random((n, n_samp)) < 0.03] = 0.0
    heights[heights < LOD] = 0.0
    heights = np.round(heights)
    keep = heights.max(1) > 0
    comp, ion, kind, heights, true_h = comp[keep], ion[keep], kind[keep], heights[keep], true_h[keep]
    n = comp.size
    detected = heights > 0

    ppm_inj = batch.ppm + rng.normal(0, 2.0, n_samp)
    mz_obs = ion[:, None] * (1 + (ppm_inj + rng.normal(0, 2.5, (n, n_samp))) * 1e-6)
    rt_true = w.rt[comp] + np.where(kind == 2, rng.normal(0, 0.003, n), 0.0)
    rt_obs = rt_true[:, None] * batch.rt_scale + batch.rt_shift + rng.normal(0, 0.015, (n, n_samp))
    cnt = detected.sum(1)
    avg_mz = (mz_obs * detected).sum(1) / cnt
    avg_rt = np.clip((rt_obs * detected).sum(1) / cnt, 0.05, None)
    ref = np.argmax(heights, axis=1)
    ref_h = heights[np.arange(n), ref]

    fmz, fint, owner = _msms(w, rng, comp, ion, kind, ref_h, avg_mz, ppm_inj[ref])
    bounds = np.searchsorted(owner, np.arange(n + 1))
    rows = np.argsort(avg_rt, kind="stable")  # MS-DIAL-like order: by retention time
    names = [f"{name}_r{r + 1}" for r in range(REPLICATES)] + [f"{name}_blank", f"{name}_QC"]
    msms = msms_cells(fmz, fint, bounds, rows.tolist())
    labels = {0: "[M+H]+", 1: "[M+Na]+", 2: "[M+H]+", 3: "[2M+H]+", 4: "[M+H]+"}
    annotate = rng.random(n) < 0.5
    annots: list[Annotation | None] = []
    for k, r in enumerate(rows.tolist()):
        s = w.spectra[int(comp[r])]
        if s.name and kind[r] == 0 and msms[k] and annotate[r]:
            annots.append(Annotation(name=s.name, ref_rt=round(float(w.rt[comp[r]]), 3), ref_mz=s.precursor_mz))
        else:
            annots.append(None)
    return AlignmentExport(
        samples=names,
        classes=[name] * REPLICATES + ["Blank", "QC"],
        file_types=["Sample"] * REPLICATES + ["Blank", "QC"],
        groups=[list(range(REPLICATES)), [blank], [qc]],
        group_names=[name, "Blank", "QC"],
        rt=avg_rt[rows],
        mz=avg_mz[rows],
        heights=heights[rows],
        adduct=[labels[int(kind[r])] for r in rows.tolist()],
        msms=msms,
        isotopes=isotope_cells(avg_mz[rows], ref_h[rows], ion[rows]),
        ref_file=[names[int(ref[r])] for r in rows.tolist()],
        sn=ref_h[rows] / rng.lognormal(np.log(400), 0.4, n),
        annotations=annots,
        batch=[str(batch.index + 1)] * n_samp,
        injection_order=[int(o) + 1 for o in order],
    )


def _msms(
    w: World,
    rng: np.random.Generator,
    comp: np.ndarray,
    ion: np.ndarray,
    kind: np.ndarray,
    ref_h: np.ndarray,
    avg_mz: np.ndarray,
    ppm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DDA MS/MS per row: flat (m/z, integer intensity, owner row), sorted by owner then m/z."""
    n = comp.size
    p = 0.95 * _sigmoid(3.0 * (np.log10(np.maximum(ref_h, 1.0)) - 3.9))  # weak: no scan; 5 % excluded anyway
    has = rng.random(n) < p
    parts_mz, parts_rel, parts_own = [], [], []
    for r in np.where(has)[0].tolist():
        s = w.spectra[int(comp[r])]
        k = int(kind[r])
        if k in (0, 4):
            fm, fr = s.mz, s.rel
        elif k == 1:  # sodium adducts hardly fragment: a sodiated fragment or nothing beside the precursor
            fm, fr = (np.array([ion[r] - 18.010565]), np.array([rng.uniform(2, 15)])) if rng.random() < 0.3 else (
                np.zeros(0), np.zeros(0))  # fmt: skip
        elif k == 2:  # in-source fragment: the parent's fragments below it
            sel = s.mz < ion[r] - 0.5
            fm, fr = s.mz[sel], s.rel[sel] * 0.8
        else:  # dimer: the monomer ion and its strongest fragments
            fm, fr = np.append(s.mz, s.precursor_mz), np.append(s.rel * 0.3, 100.0)
        parts_mz.append(fm)
        parts_rel.append(fr)
        parts_own.append(np.full(fm.size, r))
    fmz = np.concatenate(parts_mz) if parts_mz else np.zeros(0)
    frel = np.concatenate(parts_rel) if parts_rel else np.zeros(0)
    own = np.concatenate(parts_own).astype(int) if parts_own else np.zeros(0, int)
    frel = frel * rng.lognormal(0, 0.3, frel.size)
    drop = rng.random(frel.size) < np.where(frel < 3.0, 0.4, 0.05)
    fmz, frel, own = fmz[~drop], frel[~drop], own[~drop]
    scanned = np.where(has)[0]
    # the unfragmented precursor, sometimes with its M+1 isotope above it (co-isolated)
    resid = scanned[rng.random(scanned.size) < 0.5]
    r_rel = rng.uniform(3.0, 60.0, resid.size)
    iso = rng.random(resid.size) < 0.25
    r1 = 0.011 * ion[resid[iso]] / 14.0
    # chemical noise
    n_noise = rng.poisson(2.5, scanned.size)
    noise_own = np.repeat(scanned, n_noise)
    noise_mz = 50.0 + rng.random(noise_own.size) * np.maximum(ion[noise_own] - 50.0, 1.0)
    fmz = np.concatenate([fmz, ion[resid], ion[resid[iso]] + C13, noise_mz])
    frel = np.concatenate([frel, r_rel, r_rel[iso] * r1, rng.uniform(0.3, 4.0, noise_own.size)])
    own = np.concatenate([own, resid, resid[iso], noise_own])
    base = ref_h * rng.uniform(0.01, 0.08, n)
    fint = np.round(frel / 100.0 * base[own])
    fmz = fmz * (1 + (ppm[own] + rng.normal(0, 4.0, fmz.size)) * 1e-6)
    ok = (fint >= 3) & (fmz < avg_mz[own] + 1.5)
    fmz, fint, own = fmz[ok], fint[ok], own[ok]
    order = np.lexsort((-fint, own))
    fmz, fint, own = fmz[order], fint[order], own[order]
    first = np.searchsorted(own, own, side="left")
    top = (np.arange(own.size) - first) < MAX_PEAKS
    fmz, fint, own = fmz[top], fint[top], own[top]
    order = np.lexsort((fmz, own))
    return fmz[order], fint[order], own[order]


# ---------------------------------------------------------------------------------------------------------------
# the cohort
# ---------------------------------------------------------------------------------------------------------------


def _compound(world: World, i: int) -> dict:
    s = world.spectra[i]
    return {
        "compound": f"B{i:04d}", "precursor_mz": round(s.precursor_mz, 5), "rt_min": round(float(world.rt[i]), 3),
        "source": s.source, "name": s.name, "origin_node": world.node[i],
    }  # fmt: skip


def truth(world: World, seed: int, batches: list[Batch], acc_meta: list[dict]) -> dict:
    """truth.json: the activity model with compound ids, m/z and RT, the phylogeny and the batches."""
    assays = {}
    for assay in ASSAYS:
        m = world.model[assay]
        entry: dict = {"units": UNITS[assay]}
        for key in ("hill_n", "ec50", "emax", "floor", "extraction_sd", "noise_sd"):
            if key in m:
                entry[key] = round(float(m[key]), 6)
        if "actives" in m:
            entry["actives"] = [
                {**_compound(world, i), "potency": round(p, 4)} for i, p in zip(m["actives"], m["potency"], strict=True)
            ]
        for key in ("class", "class_b"):
            if key in m:
                c = m[key]
                entry[key] = {
                    "fragment_mz": round(c["fragment_mz"], 4),
                    "members": [
                        {**_compound(world, i), "weight": round(q, 4)}
                        for i, q in zip(c["members"], c["weight"], strict=True)
                    ],
                }
        if "antagonist" in m:
            entry["antagonist"] = {**_compound(world, m["antagonist"]), "k": round(m["antagonist_k"], 6)}
        if "synergy" in m:
            entry["synergy"] = {
                "pair": [_compound(world, i) for i in m["synergy"]],
                "gamma": round(m["synergy_gamma"], 6),
            }
        if "invisible" in m:
            entry["ms_invisible"] = {
                "scale": round(m["invisible"] * m["invisible_scale"], 6),
                "per_family": [round(float(x), 4) for x in world.invisible[:, 0 if assay == "DPPH" else 1]],
                "note": "dose += scale x family level x lognormal(0, 0.6) per extract; no MS feature",
            }
        assays[assay] = entry
    return {
        "generator": GENERATOR, "version": VERSION, "seed": seed, "polarity": "positive",
        "model": (
            "value = floor + emax * D^n / (D^n + ec50^n) + N(0, noise_sd); D = (sum potency * amount of actives "
            "+ sum weight * amount of class members [+ gamma * a_i * a_j synergy] [+ MS-invisible term]) "
            "[/ (1 + antagonist / k)], times lognormal(0, extraction_sd); % assays clipped to 0-100; ec50 is the dose "
            "that a share 1 - ec50_quantile of 3000 simulated extracts exceeds"
        ),
        "assays": assays,
        "phylogeny": {"families": list(FAMILIES), "genera_per_family": GENERA, "nodes": {k: list(v) for k, v in
                                                                                           NODES.items()},
                      "family_probs": [round(float(x), 4) for x in world.family_probs]},
        "batches": [{"batch": b.index + 1, "intensity": round(b.intensity, 4), "drift": round(b.drift, 4),
                     "rt_shift_min": round(b.rt_shift, 4), "ppm": round(b.ppm, 3)} for b in batches],
        "accessions": acc_meta,
        "pool": {src: int(sum(s.source == src for s in world.spectra)) for src in
                 sorted({s.source for s in world.spectra})},
    }  # fmt: skip


README = """Cohort B ({n} accessions, seed {seed}), written by {gen} (ms2img repository, development only).

A second development cohort that `ms2img synth` did not write (issue 20, Build item 6): the same files
(exports/<accession>.txt as MS-DIAL v4 alignment exports through ms2img/io/msdial_writer.py, assays.csv with
accession,DPPH,elastase,TFC,TPC in the same units), different modelling choices throughout:

- pool: {pool_n} real positive-mode spectra from ../shared/data read with matchms ({pool}); PhenolicsDB
  standards are a minority, the matchms test spectra that ms2img synth uses are not used;
- accessions: 5 plant families on a phylogeny ((F1,F2),(F3,(F4,F5))), 3 genera each; each specialised compound
  originates at one node (common below it, rare elsewhere), lognormal amounts, many absent; {core} core features
  in every extract; system ions in blanks and samples;
- runs: {nb} injection batches partly confounded with family, replicates spread over the batch in randomised
  block order; batch intensity, drift, RT and ppm shifts; global ion suppression; LOD {lod:g};
- MS/MS: DDA dropout of weak precursors, 5 % of strong ones without MS/MS, noise peaks, precursor residual with
  M+1 above it, [M+Na]+ with almost empty MS/MS, in-source fragments, dimers;
- activity (see truth.json): DPPH = Hill(n={n_dpph:g}) of 4 actives + a quarter of the TFC class + MS-invisible
  family antioxidants, divided by (1 + antagonist/k); elastase = Hill(n={n_ela:g}) of 3 actives with a synergistic
  pair; TFC = saturating sum over the compound class sharing fragment m/z {f1:.4f}; TPC = Hill(n={n_tpc:g}) of
  the class sharing m/z {f2:.4f} + half the TFC class + 2 actives + MS-invisible reductants; ~80 % of the
  specific actives and 20 % of all specialised compounds rise with an extract's growth-condition level;
  extraction (lognormal) and assay (normal) noise. Labels (min-max, <0.4 low, >0.6 high): {labels}.

Command: python {gen} --out DIR --accessions {n} --seed {seed}
"""


def make_cohort_b(out: Path, accessions: int = 240, seed: int = 7, data: Path | None = None) -> dict:
    """Write the cohort under ``out``; returns a summary (seconds, rows per export, label counts)."""
    t0 = time.perf_counter()
    pool = load_pool(data or data_dir())
    world = build_world(seed, pool)
    batches = make_batches(world, seed)
    exports = out / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    for old in exports.glob("CB*.txt"):
        old.unlink()
    # accessions: chemistry and batch first, so run order within each batch can be laid out
    names = [f"CB{i:04d}" for i in range(1, accessions + 1)]
    rngs = [_rng(seed, 3, i) for i in range(1, accessions + 1)]
    extracts = [draw_extract(world, r) for r in rngs]
    values = [assay_values(world, e, r) for e, r in zip(extracts, rngs, strict=True)]
    which = []
    for e, r in zip(extracts, rngs, strict=True):
        which.append(int(world.batch_pref[e.family]) if r.random() < 0.5 else int(r.integers(world.n_batches)))
    which_arr = np.array(which)
    layout_rng = _rng(seed, 4)
    position = np.zeros(accessions, int)
    size = np.bincount(which_arr, minlength=world.n_batches)
    for b in range(world.n_batches):
        members = np.where(which_arr == b)[0]
        position[members] = layout_rng.permutation(members.size)
    rows, meta = [], []
    for k, (name, ex, r) in enumerate(zip(names, extracts, rngs, strict=True)):
        b, pos, m = which_arr[k], int(position[k]), int(size[which_arr[k]])
        # injection order in the batch: replicate blocks (all accessions once, then again), blank and QC after
        n_inj = (REPLICATES + 2) * m
        order = [rep * m + pos for rep in range(REPLICATES)] + [REPLICATES * m + pos, (REPLICATES + 1) * m + pos]
        export = simulate_run(world, name, ex, batches[b], order, n_inj, r)
        (exports / f"{name}.txt").write_bytes(format_alignment(export).encode("utf-8"))
        rows.append(len(export.mz))
        meta.append({"accession": name, "family": FAMILIES[ex.family], "genus": f"{FAMILIES[ex.family]}g{ex.genus + 1}",
                     "induction": round(ex.induction, 4), "batch": int(b) + 1})  # fmt: skip
    assays = pd.DataFrame(values, columns=list(ASSAYS))
    assays.insert(0, "accession", names)
    (out / "assays.csv").write_text(
        assays.to_csv(index=False, lineterminator="\n", float_format="%.4f"), encoding="utf-8"
    )
    (out / "truth.json").write_text(json.dumps(truth(world, seed, batches, meta), indent=1) + "\n", encoding="utf-8")
    info = truth(world, seed, batches, [])
    (out / "README.txt").write_text(
        README.format(
            n=accessions, seed=seed, gen=GENERATOR, pool_n=world.n, core=N_CORE, nb=world.n_batches, lod=LOD,
            pool=", ".join(f"{k}: {v}" for k, v in info["pool"].items()),
            f1=world.model["TFC"]["class"]["fragment_mz"], f2=world.model["TPC"]["class"]["fragment_mz"],
            n_dpph=world.model["DPPH"]["hill_n"], n_ela=world.model["elastase"]["hill_n"],
            n_tpc=world.model["TPC"]["hill_n"],
            labels="; ".join(f"{k} {v['low']} low / {v['high']} high" for k, v in label_counts(assays).items()),
        ),
        encoding="utf-8",
    )  # fmt: skip
    return {"seconds": time.perf_counter() - t0, "rows": rows, "assays": assays, "world": world}


def label_counts(assays: pd.DataFrame, low: float = 0.4, high: float = 0.6) -> dict[str, dict[str, int]]:
    """Per assay: low / high / middle counts with the project's rule (min-max, < low, > high)."""
    out = {}
    for assay in ASSAYS:
        v = assays[assay].to_numpy(float)
        z = (v - v.min()) / (v.max() - v.min()) if v.max() > v.min() else np.zeros_like(v)
        out[assay] = {"low": int((z < low).sum()), "high": int((z > high).sum()),
                      "middle": int(((z >= low) & (z <= high)).sum())}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (exports/, assays.csv, truth.json)")
    ap.add_argument("--accessions", type=int, default=240)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    args = ap.parse_args(argv)
    if args.accessions < 1:
        ap.error("--accessions must be >= 1")
    summary = make_cohort_b(args.out, args.accessions, args.seed, args.data)
    rows = summary["rows"]
    print(f"cohort B in {args.out}: {args.accessions} accessions, seed {args.seed}, {summary['seconds']:.1f} s")
    print(f"  rows per export: mean {np.mean(rows):.0f} (min {min(rows)}, max {max(rows)})")
    if args.accessions >= 2:
        for assay, c in label_counts(summary["assays"]).items():
            print(f"  {assay:9s} low {c['low']:4d}  high {c['high']:4d}  middle {c['middle']:4d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
