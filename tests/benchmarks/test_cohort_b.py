"""Cohort B (benchmarks/cohort_b.py): the second development cohort is read by the project exactly like synth's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import load_benchmark

from ms2img.io.msdial import read_msdial
from ms2img.synth import ASSAYS
from ms2img.training.labels import read_assays

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("MS2IMG_SHARED_DATA", REPO.parent / "shared" / "data"))

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / "mzmine_dda_rawslices").is_dir(), reason="cohort B reads the real spectra in ../shared/data"
)


def _module():
    return load_benchmark("cohort_b")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, object]:
    cb = _module()
    out = tmp_path_factory.mktemp("cohort_b")
    cb.make_cohort_b(out, accessions=12, seed=7, data=SHARED_DATA)
    return out, cb


def test_exports_ingest_with_the_project_reader(cohort):
    out, _ = cohort
    files = sorted((out / "exports").glob("*.txt"))
    assert len(files) == 12
    result = read_msdial(files[0], accession_from="file")
    assert result.samples["type"].value_counts().to_dict() == {"Sample": 3, "Blank": 1, "QC": 1}
    ev = result.events
    samples = result.samples[result.samples["type"] == "Sample"]
    assert set(samples["accession"]) == {files[0].stem}
    reps = ev[ev["replicate"].isin(samples["replicate"])]
    assert set(ev["polarity"]) == {"positive"}
    assert reps["replicate"].nunique() == 3 and reps["feature_id"].nunique() > 100
    assert (reps["fragment_mz"] <= reps["precursor_mz"] + 1.5).all()


def test_assays_have_synth_columns_and_truth_names_every_assay(cohort):
    out, _ = cohort
    assert pd.read_csv(out / "assays.csv").columns.tolist() == ["accession", *ASSAYS]
    assays = read_assays(out / "assays.csv")
    assert len(assays) == 12 and assays[list(ASSAYS)].notna().all().all()
    assert assays["DPPH"].between(0, 100).all() and assays["elastase"].between(0, 100).all()
    truth = json.loads((out / "truth.json").read_text())
    assert set(truth["assays"]) == set(ASSAYS)
    assert truth["assays"]["TFC"]["class"]["members"] and truth["assays"]["elastase"]["synergy"]["pair"]
    assert (out / "README.txt").is_file()


def test_same_seed_same_files(cohort, tmp_path):
    out, cb = cohort
    cb.make_cohort_b(tmp_path, accessions=12, seed=7, data=SHARED_DATA)
    for name in ("assays.csv", "truth.json", "exports/CB0001.txt", "exports/CB0012.txt"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    first = np.loadtxt(out / "assays.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3, 4))
    assert np.ptp(first, axis=0).min() > 0  # the assays vary across accessions
