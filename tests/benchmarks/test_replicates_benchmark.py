"""benchmarks/replicates.py: per-accession and per-injection images on the same folds, and the served image."""

from __future__ import annotations

import shutil
import sys

import numpy as np
from builders import load_benchmark, tiny_cohort


def test_both_image_sets_are_rendered_and_every_variant_is_scored(tmp_path, monkeypatch, capsys) -> None:
    bench = load_benchmark("replicates")
    cohort = tiny_cohort(tmp_path / "cohort", accessions=30, seed=7, methods=None)
    project = tmp_path / "project"
    shutil.copytree(cohort.events, project / "data" / "events")
    (project / "data" / "raw").mkdir(parents=True)
    shutil.copy(cohort.assays, project / "data" / "raw" / "assays.csv")
    monkeypatch.setattr(sys, "argv", ["replicates.py", "--project", str(project), "--families", "rf-image",
                                      "--assays", "DPPH"])  # fmt: skip
    assert bench.main() == 0
    accession = np.load(project / "data/images/75x70.npz")["images"]
    injection = np.load(project / "data/images/replicates_75x70.npz")["images"]
    assert len(accession) == 30 and len(injection) == 3 * 30  # synth writes three replicate injections
    lines = capsys.readouterr().out.strip().splitlines()
    scores = {line.split()[1]: float(line.split("auc=")[1]) for line in lines[-3:]}
    assert set(scores) == {f"rf-image/{v}" for v in bench.VARIANTS}
    assert all(0.0 <= a <= 1.0 for a in scores.values())
    assert "replicate - accession" in "\n".join(lines) and "5 folds x 1 repeats" in "\n".join(lines)
