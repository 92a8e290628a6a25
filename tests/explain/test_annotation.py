"""ms2img.explain.annotation: Flash entropy annotation against the bundled PhenolicsDB / MGF libraries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ms2img.explain.annotation import BUNDLED_LIBRARIES, SpectralLibrary, annotate
from ms2img.io.library import DATA_DIR, read_library


@pytest.fixture(scope="module")
def library() -> SpectralLibrary:
    return SpectralLibrary.from_paths()


def test_bundled_libraries_read(library):
    neg = read_library(BUNDLED_LIBRARIES[0])
    assert len(neg) == 168 and all(s.polarity == "negative" for s in neg)
    assert len(library) == 320
    mgf = read_library(DATA_DIR / "pesticides.mgf")
    assert len(mgf) == 76 and mgf[0].precursor_mz > 100 and mgf[0].peaks.shape[1] == 2


def test_identity_and_analogue_search(library):
    ref = next(s for s in read_library(BUNDLED_LIBRARIES[0]) if s.name == "Catechin")
    rng = np.random.default_rng(0)
    mz = ref.peaks[:, 0] * (1 + rng.normal(0, 3e-6, len(ref.peaks)))
    inten = ref.peaks[:, 1] * rng.lognormal(0, 0.2, len(ref.peaks))
    hit = library.search(ref.precursor_mz + 0.002, mz, inten, "negative")
    assert hit["library_name"] in ("Catechin", "Epicatechin") and hit["library_score"] > 0.7
    assert hit["matched_peaks"] >= 3 and abs(hit["library_precursor_mz"] - 289.07) < 0.01
    # a hexoside: +162.05 on the precursor, same fragments -> no identity, but the open search finds the aglycone
    glyco = library.search(ref.precursor_mz + 162.0528, mz, inten, "negative")
    assert glyco["library_name"] == "" and glyco["analogue_name"] in ("Catechin", "Epicatechin")
    assert glyco["analogue_score"] > 0.7 and glyco["analogue_matched_peaks"] >= 3
    assert library.search(500.0, np.array([]), np.array([]), "negative")["library_name"] == ""


def test_annotate_table_names_identities_only_above_the_bar(library):
    """Catechin's own spectrum is named; three of its peaks at its precursor (score 0.56, 2 matched) are an identity
    hit the search finds, shown as a score but not as a name: one bar (labels.names_compound) for every hit."""
    ref = next(s for s in read_library(BUNDLED_LIBRARIES[0]) if s.name == "Catechin")
    full = " ".join(f"{m:.4f}:{i:.1f}" for m, i in ref.peaks)
    spectra = [full, "109.0290:100 123.0445:80 245.0814:40", "300.0:100"]
    drivers = pd.DataFrame({"rank": [1, 2, 3], "precursor_mz": [ref.precursor_mz, 289.0712, 1234.5],
                            "polarity": "negative", "consensus_spectrum": spectra})  # fmt: skip
    out = annotate(drivers, library)
    assert out["library_name"][0] in ("Catechin", "Epicatechin") and out["library_score"][0] >= 0.7
    assert out["library_name"][1] == "" and 0 < out["library_score"][1] < 0.7 and out["matched_peaks"][1] == 2
    assert out["library_name"][2] == ""
    assert {"library_score", "library_precursor_mz", "matched_peaks", "analogue_name"} <= set(out.columns)


def test_a_weak_analogue_keeps_its_scores_but_no_name(library):
    """One shared fragment among random peaks: the open search still has a best hit (score ~0.03, 1 peak); the
    drivers table must not name it, yet shows the score. The hexoside of catechin is still named."""
    from ms2img.explain.labels import NAME_MIN_PEAKS, NAME_MIN_SCORE

    rng = np.random.default_rng(1)
    mz, inten = np.r_[109.0290, rng.uniform(150, 600, 12).round(4)], np.r_[5.0, rng.uniform(50, 100, 12).round(1)]
    weak = " ".join(f"{m:.4f}:{i:.1f}" for m, i in zip(mz, inten, strict=True))
    ref = next(s for s in read_library(BUNDLED_LIBRARIES[0]) if s.name == "Catechin")
    glyco = " ".join(f"{m:.4f}:{i:.1f}" for m, i in ref.peaks)
    drivers = pd.DataFrame({"rank": [1, 2], "precursor_mz": [700.0, ref.precursor_mz + 162.0528],
                            "polarity": "negative", "consensus_spectrum": [weak, glyco]})  # fmt: skip
    raw = library.search(700.0, mz, inten, "negative")
    assert raw["analogue_name"] and raw["analogue_score"] < NAME_MIN_SCORE  # the search itself has a weak hit
    out = annotate(drivers, library)
    assert out["analogue_name"][0] == "" and 0 < out["analogue_score"][0] < NAME_MIN_SCORE
    assert 1 <= out["analogue_matched_peaks"][0] < NAME_MIN_PEAKS and out["analogue_precursor_mz"][0] > 0
    assert out["analogue_name"][1] in ("Catechin", "Epicatechin") and out["analogue_score"][1] >= NAME_MIN_SCORE


def test_unknown_polarity_searches_both_modes(library):
    """An MZmine/FBMN table carries no polarity ('unknown'): its spectra must be searched against both modes of the
    bundled library, not against whichever index happens to come first (the negative one): a positive standard was
    never found, and positive ions were named after [M-H]- standards."""
    ref = next(s for s in read_library(BUNDLED_LIBRARIES[1]) if s.polarity == "positive")
    hit = library.search(ref.precursor_mz, ref.peaks[:, 0], ref.peaks[:, 1], "unknown")
    assert hit["library_name"] == ref.name and hit["library_score"] > 0.99 and "+" in hit["library_adduct"]
    neg = next(s for s in read_library(BUNDLED_LIBRARIES[0]) if s.name == "Catechin")
    hit = library.search(neg.precursor_mz, neg.peaks[:, 0], neg.peaks[:, 1], "unknown")
    assert hit["library_name"] in ("Catechin", "Epicatechin") and hit["library_score"] > 0.9


def test_a_known_polarity_is_not_searched_against_the_other_mode():
    """A library of negative spectra only (a user's MassBank export): a positive query used to be searched against
    it (the first index), naming a positive ion after a [M-H]- standard of the same nominal precursor."""
    negative = SpectralLibrary(read_library(BUNDLED_LIBRARIES[0]))
    ref = next(s for s in negative.spectra if s.name == "Catechin")
    assert negative.search(ref.precursor_mz, ref.peaks[:, 0], ref.peaks[:, 1], "negative")["library_name"]
    hit = negative.search(ref.precursor_mz, ref.peaks[:, 0], ref.peaks[:, 1], "positive")
    assert hit["library_name"] == "" and hit["analogue_name"] == ""
    assert negative.search(ref.precursor_mz, ref.peaks[:, 0], ref.peaks[:, 1], "unknown")["library_name"]
