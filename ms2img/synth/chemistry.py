"""Latent chemistry of one accession (family totals, chemotype, minor actives) and the assays it determines.

Nothing here depends on the compound pool (:mod:`ms2img.synth.world`), so the assay table of a cohort can be
drawn without simulating spectra (:func:`ms2img.synth.cohort_assays`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ASSAYS = ("DPPH", "elastase", "TFC", "TPC")

# name: (ontology written for annotated features, median mg/g, coefficient of variation, probability the family
# is present). Family totals vary roughly normally across accessions (z clipped to +-2, floored at 5 % of the
# median); individual compounds within a family vary log-normally around their share.
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
SHARED_FACTOR = 0.8  # correlation weight of the shared "phenolic richness" factor
Z_CLIP = 2.0  # light tails: min-max labels are decided by the extremes

# Chemotypes: which constituent gives the base peak. Each chemotype has one dominant compound (a strongly
# ionising member of the family, or a matrix lipid) present at DOMINANT_MGG mg/g with a high response factor, so
# the image's intensity scale (set by the base peak) changes from one accession to the next. Its mass counts in
# the family total the assays see. (family or "matrix", probability)
CHEMOTYPES: list[tuple[str, float]] = [
    ("hydroxycinnamics", 0.25),
    ("flavonols", 0.2),
    ("primary", 0.2),
    ("flavan3ols", 0.1),
    ("triterpenoids", 0.1),
    ("matrix", 0.15),
]
DOMINANT_MGG = (1.0, 1.8)  # uniform range of the dominant compound's amount (mg/g) in its own chemotype

# Minor actives: a few specific low-abundance constituents with a strong effect (potency per mg/g, on the same
# scale as the family weights below: a potency of 20 means 20x a typical family member per mg). The compound pool
# assigns each slot to an unannotated relative or an unknown. (potency per assay, prevalence, median mg/g)
MINOR_ACTIVES: list[tuple[dict[str, float], float, float]] = [
    ({"DPPH": 10.0}, 0.5, 0.4),
    ({"DPPH": 8.0, "TPC": 3.0}, 0.45, 0.5),
    ({"DPPH": 7.0}, 0.55, 0.35),
    ({"elastase": 6.0}, 0.5, 0.35),
    ({"elastase": 5.0}, 0.55, 0.4),
    ({"elastase": 4.0, "DPPH": 3.0}, 0.45, 0.5),
    ({"TFC": 3.5}, 0.5, 0.5),
    ({"TFC": 3.0}, 0.55, 0.4),
    ({"TPC": 7.0}, 0.5, 0.5),
    ({"TPC": 6.0}, 0.45, 0.4),
]
MINOR_RANGE = (0.3, 1.7)  # a present minor active's amount: median x uniform(MINOR_RANGE) (bounded, no outliers)

# Assay weights (per mg/g of each family); see assays_from_latent.
TPC_WEIGHTS = {
    "flavan3ols": 1.0, "procyanidins": 1.1, "flavonols": 0.8, "flavones_flavanones": 0.5,
    "hydroxycinnamics": 0.9, "galloyl_ellagic": 1.4, "hydroxybenzoics": 0.8, "dihydrochalcones": 0.7,
    "coumarins": 0.5, "anthocyanins": 0.9,
}  # fmt: skip
TFC_WEIGHTS = {
    "flavonols": 1.0, "flavones_flavanones": 0.7, "dihydrochalcones": 0.3, "anthocyanins": 0.2, "flavan3ols": 0.15,
}  # fmt: skip
DPPH_WEIGHTS = {
    "flavan3ols": 1.3, "procyanidins": 1.6, "flavonols": 1.0, "hydroxycinnamics": 0.7, "galloyl_ellagic": 1.8,
    "hydroxybenzoics": 0.3, "anthocyanins": 0.8, "flavones_flavanones": 0.2, "dihydrochalcones": 0.3,
}  # fmt: skip
ELASTASE_WEIGHTS = {"procyanidins": 1.5, "galloyl_ellagic": 1.2, "triterpenoids": 1.0, "flavonols": 0.15}
ASSAY_WEIGHTS = {"DPPH": DPPH_WEIGHTS, "elastase": ELASTASE_WEIGHTS, "TFC": TFC_WEIGHTS, "TPC": TPC_WEIGHTS}
DPPH_K = 60.0  # mg/g of weighted antioxidants that scavenge 63 % of the radical
ELASTASE_K = 30.0  # mg/g of weighted inhibitors giving 50 % inhibition


@dataclass
class Latent:
    """The chemistry of one accession that the assays see."""

    families: np.ndarray  # family totals (mg/g), FAMILY_NAMES order, dominant compound included
    chemotype: int  # index into CHEMOTYPES
    dominant: float  # mg/g of the chemotype's dominant compound
    minor: np.ndarray  # mg/g of each MINOR_ACTIVES slot (0 = absent)

    def row(self) -> list[float]:
        """Values for latent.csv, in :func:`latent_columns` order."""
        return [*self.families.tolist(), float(self.chemotype), self.dominant, *self.minor.tolist()]


def latent_columns() -> list[str]:
    """Columns of latent.csv after ``accession`` (``total_phenolics`` is added after the families)."""
    return [*FAMILY_NAMES, "chemotype", "dominant_mgg", *[f"minor_{k + 1}" for k in range(len(MINOR_ACTIVES))]]


def draw_latent(rng: np.random.Generator) -> Latent:
    """Family abundances (mg/g extract): correlated, roughly normal, some families absent; chemotype; minors."""
    shared = float(np.clip(rng.normal(), -Z_CLIP, Z_CLIP))
    fam = np.zeros(len(FAMILY_NAMES))
    for i, name in enumerate(FAMILY_NAMES):
        _, median, cv, present = FAMILIES[name]
        w = SHARED_FACTOR if name in PHENOLIC_FAMILIES else 0.0
        z = float(np.clip(w * shared + np.sqrt(1 - w * w) * rng.normal(), -Z_CLIP, Z_CLIP))
        fam[i] = median * max(0.05, 1.0 + cv * z) if rng.random() < present else 0.0
    probs = np.array([p for _, p in CHEMOTYPES])
    chemotype = int(rng.choice(len(CHEMOTYPES), p=probs / probs.sum()))
    dominant = float(rng.uniform(*DOMINANT_MGG))
    ctype = CHEMOTYPES[chemotype][0]
    if ctype in FAMILIES:
        fam[FAMILY_NAMES.index(ctype)] += dominant
    minor = np.zeros(len(MINOR_ACTIVES))
    for k, (_, prevalence, median) in enumerate(MINOR_ACTIVES):
        amount = median * rng.uniform(*MINOR_RANGE)
        minor[k] = amount if rng.random() < prevalence else 0.0
    return Latent(fam, chemotype, dominant, minor)


def _factor(rng: np.random.Generator, cv: float) -> float:
    """A multiplicative error ``1 + cv * z``, z normal clipped at +-2 (symmetric, no artificial outliers)."""
    return max(0.2, 1.0 + cv * _z(rng))


def _z(rng: np.random.Generator) -> float:
    return float(np.clip(rng.normal(), -2.0, 2.0))


def active_sum(latent: Latent, assay: str) -> float:
    """The assay's weighted sum of actives (mg/g-equivalents): family weights x totals + minor potencies x mg/g."""
    a = latent.families
    total = float(sum(w * a[FAMILY_NAMES.index(f)] for f, w in ASSAY_WEIGHTS[assay].items()))
    for k, (potency, _, _) in enumerate(MINOR_ACTIVES):
        total += potency.get(assay, 0.0) * float(latent.minor[k])
    return total


def assays_from_latent(latent: Latent, rng: np.random.Generator) -> dict[str, float]:
    """Assay values (raw units) from the latent chemistry, with biological and measurement noise.

    With ``W_x`` = :func:`active_sum` (family weights ``TPC_WEIGHTS`` ... ``ELASTASE_WEIGHTS`` times family
    totals, plus the potencies of the minor actives in ``MINOR_ACTIVES`` times their amounts), ``F(c)`` a
    multiplicative factor ``1 + N(0, c)`` and ``N(s)`` a normal error with sd ``s``:

    * TPC (mg GAE/g)        = (1.0 + W_TPC) * F(0.04) + N(1.0): Folin-Ciocalteu sees every phenolic family;
    * TFC (mg QE/g)         = (0.3 + W_TFC) * F(0.05) + N(0.6): AlCl3 complexes flavonols/flavones mainly;
    * DPPH (% scavenging)   = 100 * (1 - exp(-W_DPPH * F(0.08) / DPPH_K)) + N(2.5), clipped to 0..100: catechols,
      galloyl groups and procyanidins dominate, saturating like the real dose-response;
    * elastase (% inhib.)   = 100 * X / (X + ELASTASE_K) + N(3) with X = W_ELA * F(0.1), clipped to 0..100:
      procyanidins, ellagic/gallic acids and triterpenoids (ursolic/corosolic acid), a different subset than DPPH.

    The multiplicative factors stand for compounds the MS does not see and for extraction variance, the
    additive errors for the assay itself (mean of triplicate wells).
    """
    tpc = (1.0 + active_sum(latent, "TPC")) * _factor(rng, 0.04) + 1.0 * _z(rng)
    tfc = (0.3 + active_sum(latent, "TFC")) * _factor(rng, 0.05) + 0.6 * _z(rng)
    aox = active_sum(latent, "DPPH") * _factor(rng, 0.08)
    dpph = 100 * (1 - np.exp(-aox / DPPH_K)) + 2.5 * _z(rng)
    x = active_sum(latent, "elastase") * _factor(rng, 0.1)
    ela = 100 * x / (x + ELASTASE_K) + 3.0 * _z(rng)
    return {
        "DPPH": float(np.clip(dpph, 0, 100)),
        "elastase": float(np.clip(ela, 0, 100)),
        "TFC": float(max(tfc, 0.05)),
        "TPC": float(max(tpc, 0.1)),
    }
