"""benchmarks/thresholds.py: both threshold rules on the same fitted models of every fold, and its output lines."""

from __future__ import annotations

import shutil
import sys

import yaml
from builders import load_benchmark, tiny_cohort, tiny_params


def test_every_family_is_scored_under_both_rules_on_the_same_folds(tmp_path, monkeypatch, capsys) -> None:
    bench = load_benchmark("thresholds")
    cohort = tiny_cohort(tmp_path / "cohort", accessions=30, seed=7, methods=None)
    project = tmp_path / "project"
    (project / "data" / "images").mkdir(parents=True)
    (project / "data" / "raw").mkdir(parents=True)
    shutil.copy(cohort.images, project / "data" / "images" / "75x70.npz")
    shutil.copy(cohort.assays, project / "data" / "raw" / "assays.csv")
    params = tiny_params(cnn__ensemble=2)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setattr(sys, "argv", ["thresholds.py", "--project", str(project), "--assays", "DPPH"])
    assert bench.main() == 0
    lines = capsys.readouterr().out.strip().splitlines()
    scores = {line.split()[1]: float(line.split("balanced_accuracy=")[1]) for line in lines[-6:]}
    assert set(scores) == {f"{f}/{r}" for f in bench.FAMILIES for r in bench.RULES}
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    text = "\n".join(lines)
    assert "logistic - youden" in text and "threshold sd" in text and "2 folds x 1 repeats" in text
