"""Applicability domain: tell "low activity" from "cannot say" for a served accession.

At registration the training accessions are pushed through the same serving path as a request (raw peaks ->
image or matched feature vector) and a reference is stored with the model (``domain.npz``): the training vectors
(L2-normalised, float16), the 1st percentile of each training accession's cosine similarity to its nearest other
training accession, the 1st percentile of the training injections' precursor counts (per injection, not per merged
accession: a lab may send one injection) and the central 99 % of training precursor m/z. A served accession is out
of domain when any of these fails:

* fewer precursors with MS/MS than the 1st percentile of the training injections (``too few precursors``),
* more than 20 % of its precursors outside the training m/z range (``m/z range``),
* its cosine similarity to the nearest training vector is below the 1st percentile of training-to-training
  nearest-neighbour similarity (``far from every training accession``), or, for a feature family, none of its
  precursors matched a training feature (its vector is all zeros: the forest answers its prior).

The reference also keeps the training ion mode (``polarity``): a request that says it holds the other mode is
refused outright (:meth:`FamilyPredictor.predict`), since positive- and negative-ion spectra of one extract share
almost no peaks and the answer would look like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MZ_OUTSIDE_MAX = 0.2
FILE = "domain.npz"


def _normalise(x: np.ndarray, log: bool) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if log:
        v = np.log1p(np.clip(v, 0, None))
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0)


@dataclass
class DomainReference:
    """What a served accession is compared with (see the module docstring)."""

    vectors: np.ndarray  # (n_train, d) float16, L2-normalised
    log: bool  # feature families compare log1p heights
    sim_p01: float
    min_precursors: float
    mz_low: float
    mz_high: float
    polarity: str = "unknown"  # the training events' ion mode (ms2img.io.schema.one_polarity)

    @classmethod
    def build(
        cls, x: np.ndarray, n_precursors: np.ndarray, precursor_mz: np.ndarray, log: bool, polarity: str = "unknown"
    ) -> DomainReference:
        """From the training accessions' model inputs, precursor counts (per injection where known), all their
        precursor m/z values and ion mode."""
        v = _normalise(x, log)
        if len(v) >= 2:
            sim = v @ v.T
            np.fill_diagonal(sim, -np.inf)
            p01 = float(np.percentile(sim.max(axis=1), 1))
        else:
            p01 = 0.0
        lo, hi = np.percentile(precursor_mz, [0.5, 99.5]) if len(precursor_mz) else (0.0, np.inf)
        return cls(
            vectors=v.astype(np.float16),
            log=log,
            sim_p01=p01,
            min_precursors=float(np.percentile(n_precursors, 1, method="lower")) if len(n_precursors) else 0.0,
            mz_low=float(lo),
            mz_high=float(hi),
            polarity=polarity,
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with open(path, "wb") as fh:
            np.savez_compressed(
                fh,
                vectors=self.vectors,
                log=np.array(self.log),
                scalars=np.array([self.sim_p01, self.min_precursors, self.mz_low, self.mz_high]),
                polarity=np.array(self.polarity),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> DomainReference:
        with np.load(path, allow_pickle=False) as z:
            s = z["scalars"]
            polarity = str(z["polarity"]) if "polarity" in z.files else "unknown"  # references before it was kept
            return cls(z["vectors"], bool(z["log"]), float(s[0]), float(s[1]), float(s[2]), float(s[3]), polarity)

    def check(
        self, x: np.ndarray, n_precursors: np.ndarray, mz_outside: np.ndarray
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Per accession: in-domain flag, a note saying why not ("" when in domain), nearest training similarity."""
        v = _normalise(x, self.log)
        nearest = (v @ self.vectors.astype(np.float64).T).max(axis=1) if len(self.vectors) else np.zeros(len(v))
        flags, notes = [], []
        for k in range(len(v)):
            why = []
            if n_precursors[k] < self.min_precursors:
                why.append(
                    f"too few precursors ({int(n_precursors[k])} < {self.min_precursors:.0f}, "
                    "the 1st percentile of training injections)"
                )
            if mz_outside[k] > MZ_OUTSIDE_MAX:
                why.append(
                    f"m/z range: {mz_outside[k]:.0%} of precursors outside the training range "
                    f"{self.mz_low:.1f}-{self.mz_high:.1f}"
                )
            if not np.any(x[k]):
                why.append("none of its precursors matched a training feature (the feature table's MS1/RT/MS2 rule)")
            elif nearest[k] < self.sim_p01:
                why.append(
                    f"far from every training accession (nearest similarity {nearest[k]:.3f} < {self.sim_p01:.3f}, "
                    "the 1st percentile of training-to-training similarity)"
                )
            flags.append(not why)
            notes.append("; ".join(why))
        return np.asarray(flags, dtype=bool), notes, nearest

    def mz_outside(self, codes: np.ndarray, n_accessions: int, precursor_mz: np.ndarray) -> np.ndarray:
        """Share of each accession's precursors outside the training m/z range."""
        out = (precursor_mz < self.mz_low) | (precursor_mz > self.mz_high)
        total = np.bincount(codes, minlength=n_accessions)
        return np.bincount(codes[out], minlength=n_accessions) / np.maximum(total, 1)
