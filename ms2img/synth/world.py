"""The world: every compound any accession of a cohort can contain, deterministic from the cohort seed.

Kinds of compound (``World.family`` code):

* ``>= 0`` phenolic-family members: PhenolicsDB standards (annotated in the exports) and their unannotated
  relatives (glycosides, esters, ...), whose MS/MS keeps the parent's fragments and shows the parent ion;
* ``BACKGROUND`` unknowns unrelated to the assays: background spectra moved by plausible formula differences;
* ``CONTAMINANT`` system contaminants, seen in blanks and samples alike; each injection batch shows its own subset;
* ``MINOR`` minor actives: a few unannotated constituents with a strong effect on one or two assays
  (:data:`ms2img.synth.chemistry.MINOR_ACTIVES`), hosted by a relative of a standard or by an unknown;
* ``MATRIX`` matrix background ions: fatty acids and oxylipins, lysophospholipids, salt clusters (negative
  mode) or PEG, phthalates, fatty amides, lysophosphocholine (positive mode); present in every sample at
  levels that vary by accession and batch, uninformative MS/MS, partly also in the blanks.

Each chemotype (:data:`ms2img.synth.chemistry.CHEMOTYPES`) has a dominant compound (``World.dominant``): a
strongly ionising family member or a matrix lipid, which gives the base peak where the chemotype applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ms2img.errors import ConfigError
from ms2img.io.msdial_writer import Annotation
from ms2img.synth.chemistry import CHEMOTYPES, FAMILIES, FAMILY_NAMES, MINOR_ACTIVES
from ms2img.synth.library import background_library, family_of, phenolics_library

POLARITIES = ("negative", "positive")
PROTON = 1.007276
BACKGROUND, CONTAMINANT, MINOR, MATRIX = -1, -2, -3, -4
N_BACKGROUND = 1500
N_CONTAMINANTS = 30
N_MAJOR = 4  # abundant background constituents (varying levels; they compete with the base peak)
MAX_SHARE = 0.2  # of a family's total weight, for any one member
DOMINANT_RESPONSE = 12.0  # response factor of the chemotypes' dominant compounds

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


@dataclass
class World:
    """Cohort-level chemistry: the compound pool (flat fragment arrays with offsets) and its parameters."""

    polarity: str
    ion_mz: np.ndarray  # m/z of the main ion ([M-H]- or [M+H]+)
    rt: np.ndarray
    family: np.ndarray  # index into FAMILY_NAMES, or BACKGROUND / CONTAMINANT / MINOR / MATRIX
    weight: np.ndarray  # share within the family (family compounds)
    response: np.ndarray  # ionisation response factor
    prevalence: np.ndarray  # probability an accession contains the compound (given its family is present)
    log_mu: np.ndarray  # background / matrix / contaminant: median log abundance (mg/g-equivalent)
    in_blank: np.ndarray  # matrix ions: fraction of the sample level seen in the blank (system ions ~1)
    label: list[str]  # family name, "unknown", "contaminant", "matrix", "minor_<family or unknown>"
    annot: list[Annotation | None]  # library annotation for standards, None otherwise
    frag_off: np.ndarray
    frag_mz: np.ndarray
    frag_rel: np.ndarray
    dominant: np.ndarray  # per chemotype: index of its dominant compound
    minor: np.ndarray  # per MINOR_ACTIVES slot: index of the host compound

    @property
    def n(self) -> int:
        return len(self.ion_mz)

    def compound_id(self, i: int) -> str:
        """A stable, readable id: ``<label>_<index>`` (``flavonols_0042``, ``minor_unknown_1380``)."""
        return f"{self.label[i]}_{i:04d}"


def _shift_spectrum(rng: np.random.Generator, mz: np.ndarray, rel: np.ndarray, prec: float, delta: float, frac: float):
    """Move a spectrum to a new precursor: a fraction of fragments carries the mass change, the rest stay."""
    moved = rng.random(mz.size) < frac
    new_mz = np.where(moved, mz + delta, mz)
    new_prec = prec + delta
    new_rel = rel * rng.lognormal(0.0, 0.3, mz.size)
    keep = (new_mz > 40) & (new_mz < new_prec + 0.5)
    return new_mz[keep], new_rel[keep], new_prec


def _matrix_ions(polarity: str, rng: np.random.Generator) -> list[tuple]:
    """Matrix background: (ion m/z, rt, fragment m/z, fragment rel, median level mg/g-eq, fraction in blank)."""
    out: list[tuple] = []

    def add(mz: float, rt: float, frags: list[tuple[float, float]], level: float, blank: float) -> None:
        fm = np.array([f for f, _ in frags] + [mz])
        fr = np.array([r for _, r in frags] + [100.0])
        order = np.argsort(fm)
        out.append((mz, float(np.clip(rt + rng.normal(0, 0.05), 0.2, 9.8)), fm[order], fr[order], level, blank))

    if polarity == "negative":
        # fatty acids and oxylipins [M-H]-: barely fragment (water / CO2 losses)
        for mz, rt, level in [(227.2017, 7.9, 0.4), (255.2330, 8.8, 1.5), (283.2643, 9.4, 1.0), (281.2486, 9.0, 1.2),
                              (279.2330, 8.6, 1.5), (277.2173, 8.2, 1.2), (311.2956, 9.7, 0.3), (293.2122, 7.2, 0.6),
                              (295.2279, 7.5, 0.8), (327.2177, 5.4, 1.0), (329.2333, 5.6, 1.5)]:  # fmt: skip
            add(mz, rt, [(mz - 18.010565, 12.0), (mz - 43.98983, 4.0), (mz - 62.0004, 2.0)], level, 0.15)
        # lysophospholipids: fatty-acid anion and phosphate head-group fragments
        for mz, fa, rt in [(452.2783, 255.2330, 6.6), (476.2783, 279.2330, 6.2), (571.2889, 255.2330, 6.0),
                           (540.3307, 255.2330, 6.9), (564.3307, 279.2330, 6.5)]:  # fmt: skip
            add(mz, rt, [(fa, 100.0), (152.9958, 35.0), (78.9591, 20.0), (96.9696, 8.0)], 0.5, 0.0)
        # sodium formate clusters [(HCOONa)n + HCOO]- in the void volume: losses of HCOONa
        for n in range(2, 9):
            mz = 44.998201 + n * 67.987424
            add(mz, 0.45, [(mz - k * 67.987424, 60.0 / k) for k in range(1, n)], 0.3, 1.0)
    else:
        for n in range(6, 15):  # PEG [M+NH4]+ and its 44.026 ladder
            mz = 18.010565 + n * 44.026215 + 18.033826
            add(mz, 4.0 + 0.25 * n, [(45.0335 + 44.026215 * k, 80.0 / k) for k in range(1, min(n, 7))], 0.3, 1.0)
        add(279.1591, 7.4, [(149.0233, 100.0), (205.0859, 25.0), (223.0965, 10.0)], 0.4, 1.0)  # dibutyl phthalate
        add(391.2843, 9.3, [(149.0233, 100.0), (167.0339, 45.0), (279.1591, 30.0)], 0.4, 1.0)  # DEHP
        add(338.3417, 9.1, [(321.3152, 40.0), (303.3046, 10.0), (97.1012, 15.0), (83.0855, 12.0)], 0.8, 0.5)
        add(282.2791, 8.7, [(265.2526, 45.0), (247.2420, 15.0), (97.1012, 12.0), (83.0855, 10.0)], 1.0, 0.3)
        for mz in (496.3398, 520.3398, 524.3711):  # lysophosphocholines [M+H]+
            add(mz, 6.5, [(184.0733, 100.0), (104.1070, 30.0), (mz - 18.010565, 15.0)], 1.0, 0.0)
        add(277.2162, 7.6, [(259.2056, 20.0), (95.0855, 30.0), (81.0699, 25.0), (67.0542, 15.0)], 1.0, 0.1)
    return out


@lru_cache(maxsize=8)
def build_world(seed: int, polarity: str = "negative") -> World:
    """The compound pool of a cohort, deterministic from ``seed``."""
    if polarity not in POLARITIES:
        raise ConfigError(f"polarity must be one of {POLARITIES}, got '{polarity}'")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    # (ion_mz, rt, family, weight, response, prevalence, log_mu, in_blank, label, annot, mz, rel)
    recs: list[list] = []
    derivs: list[int] = []
    standards: dict[str, list[int]] = {}

    for s in phenolics_library(polarity):
        fam = family_of(s.name)
        if fam is None:
            continue
        fi = FAMILY_NAMES.index(fam)
        rt = s.rt if s.rt is not None else float(rng.uniform(0.5, 7.5))
        annot = Annotation(
            name=s.name, ref_rt=rt, ref_mz=s.precursor_mz, formula=s.formula or "null", ontology=FAMILIES[fam][0],
            inchikey=s.inchikey or "null", smiles=s.smiles or "null",
        )  # fmt: skip
        standards.setdefault(fam, []).append(len(recs))
        recs.append([s.precursor_mz, rt, fi, float(rng.lognormal(0.0, 0.7)), float(rng.lognormal(0, 0.5)),
                     float(rng.uniform(0.75, 1.0)), 0.0, 0.0, fam, annot, s.mz, s.intensity])  # fmt: skip
        weight = recs[-1][3]
        for _ in range(rng.poisson(2.5)):
            delta, rt_factor, frac = _DERIVATIVES[rng.integers(len(_DERIVATIVES))]
            if s.precursor_mz + delta > 1450:
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
            derivs.append(len(recs))
            recs.append([s.precursor_mz + delta, d_rt, fi, weight * float(rng.lognormal(-1.0, 0.7)),
                         float(rng.lognormal(0, 0.5)), float(rng.uniform(0.5, 0.95)), 0.0, 0.0, fam, None, mz,
                         100 * rel / rel.max()])  # fmt: skip

    bg = background_library(polarity)
    n_bg = N_BACKGROUND + N_CONTAMINANTS
    base_idx = rng.integers(len(bg), size=n_bg)
    first_bg = len(recs)
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
        rt = float(np.clip(s.rt + rng.normal(0, 0.8), 0.3, 9.5)) if s.rt is not None else float(rng.uniform(0.3, 9.5))
        if k >= N_BACKGROUND:
            recs.append([prec, rt, CONTAMINANT, 0.0, 1.0, 1.0, float(rng.normal(np.log(0.6), 1.0)), 1.0,
                         "contaminant", None, mz, 100 * rel / rel.max()])  # fmt: skip
        elif k < N_MAJOR:  # abundant constituents of the species, at varying levels
            recs.append([prec, rt, BACKGROUND, 0.0, 1.0, 1.0, float(np.log(rng.uniform(1.0, 2.0))), 0.0,
                         "unknown", None, mz, 100 * rel / rel.max()])  # fmt: skip
        else:
            recs.append([prec, rt, BACKGROUND, 0.0, float(rng.lognormal(0, 0.5)), float(rng.beta(0.35, 3.5)),
                         float(min(rng.normal(np.log(0.6), 1.0), np.log(0.6) + 1.5)), 0.0, "unknown", None, mz,
                         100 * rel / rel.max()])  # fmt: skip

    first_matrix = len(recs)
    for mz, rt, fm, fr, level, blank in _matrix_ions(polarity, rng):
        recs.append([mz, rt, MATRIX, 0.0, 1.0, 1.0, float(np.log(level)), blank, "matrix", None, fm, fr])

    # chemotype dominants: a strongly ionising standard of the family (a tiny share otherwise), or a matrix lipid
    dominant = []
    matrix_idx = list(range(first_matrix, len(recs)))
    for ctype, _ in CHEMOTYPES:
        if ctype in standards:
            cands = [i for i in standards[ctype] if 150 < recs[i][0] < 900 and recs[i][10].size >= 3]
            pick = cands[int(rng.integers(len(cands)))] if cands else standards[ctype][0]
            recs[pick][3] = 0.02  # its ordinary share: small; the chemotype adds the dominant amount
        else:
            lipids = [i for i in matrix_idx if recs[i][7] < 0.5 and recs[i][6] >= 0.0]
            pick = lipids[int(rng.integers(len(lipids)))]
        if ctype in standards:  # a matrix lipid keeps response 1: its chemotype raises its level instead
            recs[pick][4] = DOMINANT_RESPONSE
        dominant.append(pick)

    # minor actives: alternately a relative of a standard and an unknown, mid-mass with a real MS/MS
    taken = set(dominant)
    minor = []
    pools = [
        [i for i in derivs if 180 < recs[i][0] < 1100 and recs[i][10].size >= 4],
        [i for i in range(first_bg + N_MAJOR, first_bg + N_BACKGROUND) if 180 < recs[i][0] < 1100
         and recs[i][10].size >= 4],
    ]  # fmt: skip
    for k in range(len(MINOR_ACTIVES)):
        pool = [i for i in pools[k % 2] if i not in taken] or [i for i in pools[1] if i not in taken]
        pick = pool[int(rng.integers(len(pool)))]
        taken.add(pick)
        rec = recs[pick]
        rec[2], rec[3], rec[4], rec[5] = MINOR, 0.0, float(rng.uniform(0.8, 1.5)), 1.0
        rec[8] = f"minor_{rec[8]}"  # e.g. minor_flavonols (a relative of a flavonol), minor_unknown
        minor.append(pick)

    # no family member takes more than MAX_SHARE of its family (a few standards would otherwise dominate)
    fam_codes = np.array([r[2] for r in recs])
    for fi in range(len(FAMILY_NAMES)):
        members = np.where(fam_codes == fi)[0]
        if members.size:
            cap = MAX_SHARE * sum(recs[i][3] for i in members)
            for i in members:
                recs[i][3] = min(recs[i][3], cap)

    sizes = np.array([r[10].size for r in recs])
    return World(
        polarity=polarity,
        ion_mz=np.array([r[0] for r in recs]),
        rt=np.array([r[1] for r in recs]),
        family=np.array([r[2] for r in recs]),
        weight=np.array([r[3] for r in recs]),
        response=np.array([r[4] for r in recs]),
        prevalence=np.array([r[5] for r in recs]),
        log_mu=np.array([r[6] for r in recs]),
        in_blank=np.array([r[7] for r in recs]),
        label=[r[8] for r in recs],
        annot=[r[9] for r in recs],
        frag_off=np.concatenate([[0], np.cumsum(sizes)]),
        frag_mz=np.concatenate([r[10] for r in recs]),
        frag_rel=np.concatenate([r[11] for r in recs]),
        dominant=np.array(dominant),
        minor=np.array(minor),
    )
