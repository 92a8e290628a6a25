"""Library annotation of driver spectra with Flash entropy search (ms_entropy).

The bundled library is PhenolicsDB (``ms2img/data/PhenolicsDB_{pos,neg}.msp``, CC BY 4.0, LC-ESI-QTOF spectra of
phenolic standards at several collision energies). **Other libraries drop in by path**: any MSP or MGF file that
:func:`ms2img.io.library.read_library` reads (MassBank's ``MassBank_NISTformat.msp``, an MS-DIAL MSP, a GNPS MGF),
listed under ``explain.libraries`` in ``params.yaml`` (default: the two PhenolicsDB files). Spectra without a
polarity are searched for both.

Two searches per query, each against the library of the query's polarity:

* **identity**: precursor m/z within ``ms1_tol_da``, entropy similarity of the fragments (``library_*`` columns);
* **analogue** (open search): every library spectrum regardless of precursor, so a glycoside or methyl ester of a
  standard still finds the standard through their shared fragments (``analogue_*`` columns).

Scores are entropy similarities in [0, 1]; ``matched_peaks`` counts the query peaks that matched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ms2img.io.library import DATA_DIR, LibrarySpectrum, read_library

log = logging.getLogger(__name__)

BUNDLED_LIBRARIES = (DATA_DIR / "PhenolicsDB_neg.msp", DATA_DIR / "PhenolicsDB_pos.msp")
POLARITIES = ("negative", "positive")


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
            members = [s for s in self.spectra if s.polarity in (pol, "unknown")]
            if not members:
                continue
            search = FlashEntropySearch(max_ms2_tolerance_in_da=max(self.ms2_tol_da, 0.024))
            entries = [{"precursor_mz": float(s.precursor_mz), "peaks": s.peaks, "k": i} for i, s in enumerate(members)]
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
        # unknown polarity (an MZmine/FBMN table carries none): every mode is searched and the best hit kept (one
        # arbitrary mode named positive ions after [M-H]- standards); a known mode the library lacks finds nothing
        pols = [p for p in ([polarity] if polarity in POLARITIES else list(self._index)) if p in self._index]
        if not pols or len(mz) == 0:
            return out
        peaks = np.column_stack([np.asarray(mz, dtype=np.float32), np.asarray(intensity, dtype=np.float32)])
        identities, analogues = [], []  # (score, library spectrum, matched peaks): each mode's best hit
        for pol in pols:
            search, members = self._index[pol]
            clean = search.clean_spectrum_for_search(precursor_mz=float(precursor_mz), peaks=peaks)
            if len(clean) == 0:
                continue
            ident, n_ident = search.identity_search(
                precursor_mz=float(precursor_mz),
                peaks=clean,
                ms1_tolerance_in_da=self.ms1_tol_da,
                ms2_tolerance_in_da=self.ms2_tol_da,
                output_matched_peak_number=True,
            )
            opened, n_open = search.open_search(
                peaks=clean, ms2_tolerance_in_da=self.ms2_tol_da, output_matched_peak_number=True
            )
            for hits, scores, matched in ((identities, ident, n_ident), (analogues, opened, n_open)):
                if len(scores) and float(np.max(scores)) > 0:
                    k = int(np.argmax(scores))
                    hits.append((float(scores[k]), members[k], int(matched[k])))
        if identities:
            score, s, matched = max(identities, key=lambda hit: hit[0])
            out.update(library_name=s.name, library_score=round(score, 4), library_precursor_mz=round(float(
                s.precursor_mz), 5), library_adduct=s.adduct, matched_peaks=matched)  # fmt: skip
        if analogues:
            score, s, matched = max(analogues, key=lambda hit: hit[0])
            out.update(analogue_name=s.name, analogue_score=round(score, 4), analogue_precursor_mz=round(float(
                s.precursor_mz), 5), analogue_matched_peaks=matched)  # fmt: skip
        return out


def annotate(drivers, library: SpectralLibrary, top: int | None = None):
    """Add the library columns to a drivers table (its ``consensus_spectrum``, ``precursor_mz``, ``polarity``).

    Only the first ``top`` rows are searched (all when None). A hit, identity (``library_name``, precursor within
    ``ms1_tol_da``) or analogue (``analogue_name``), names a driver only from entropy similarity
    ``labels.NAME_MIN_SCORE`` (0.7) with ``labels.NAME_MIN_PEAKS`` (3) matched peaks (:func:`labels.names_compound`),
    the bar the correlation route and every display of a driver use. Why: the open search has a best hit for any
    spectrum, and at 0.05 with one shared fragment it names an unrelated compound; an identity hit needs only a
    precursor within 0.01 Da, and at 0.03 with 2 peaks it named a positive ion after a [M-H]- standard. GNPS's
    library-match defaults are cosine 0.7 and 6 matched peaks; these scores are entropy similarities. A weaker hit
    keeps its score, precursor m/z and matched peaks: visible as a score, not as a name.
    """
    from ms2img.explain.labels import names_compound
    from ms2img.io.msms import parse_msms

    rows = []
    n = len(drivers) if top is None else min(int(top), len(drivers))
    for i, row in enumerate(drivers.itertuples(index=False)):
        if i >= n:
            rows.append({})
            continue
        mz, inten = parse_msms(str(getattr(row, "consensus_spectrum", "") or ""))
        hit = library.search(float(row.precursor_mz), mz, inten, str(getattr(row, "polarity", "negative")))
        if not names_compound(hit["library_score"], hit["matched_peaks"]):
            hit["library_name"] = hit["library_adduct"] = ""
        if not names_compound(hit["analogue_score"], hit["analogue_matched_peaks"]):
            hit["analogue_name"] = ""
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
