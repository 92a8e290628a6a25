"""Classes or graded targets? The CNN and the forest on pixels, each trained both ways on the same folds.

Issue 20, item 3. The paper trains on two classes (fold-scaled value < ``labels.low`` low, > ``labels.high`` high),
so the middle band (about a third of a cohort) never trains anything. The graded target trains on every training
accession's fold-scaled value (clipped to 0..1): the column CNN with binary cross-entropy on that soft target
(its cross-fitted members, inner folds stratified by low / middle / high), the forest as a regression forest on
it. Both are scored exactly as ``ms2img train`` scores the classes: AUC on the labelled test accessions of the same
folds (``cv.folds`` x ``--repeats``). Prints per assay each model's mean AUC and the paired difference
graded - classes with its corrected 95% interval, and which target wins; last lines ``<assay> <model> auc=<mean>``.

    .venv/bin/python benchmarks/graded_targets.py --project DIR [--assays TFC,TPC] [--repeats 1]

``DIR`` holds ``params.yaml`` (else the repository's), ``data/images/<render.size>.npz`` and
``data/raw/assays.csv``: a project after ``make demo``, or ``benchmarks/science.py --keep DIR``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # project_study, ms2img
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from project_study import print_fold, print_footer, project_params, study_arguments  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

from ms2img.models.baselines import FlattenImages  # noqa: E402
from ms2img.models.cnn import as_model_input  # noqa: E402
from ms2img.models.estimators import CNNClassifier, make_estimator  # noqa: E402
from ms2img.training.dataset import data_from_params  # noqa: E402
from ms2img.training.experiment import fold_seed, fold_targets  # noqa: E402
from ms2img.training.labels import MIDDLE  # noqa: E402
from ms2img.training.scores import corrected_paired_test  # noqa: E402

MODELS = ("cnn", "cnn-graded", "rf-image", "rf-image-graded")


class GradedCNN(CNNClassifier):
    """The default CNN's cross-fitted members trained on the fold-scaled value (soft targets, no class weights)."""

    def fit(self, X: Any, y: Any, low: float = 0.4, high: float = 0.6) -> GradedCNN:
        x, z = as_model_input(X), np.clip(np.asarray(y, dtype=np.float32), 0.0, 1.0)
        hypermodel = self._hypermodel(x)
        inputs = hypermodel.prepare(x)
        strata = np.digitize(z, [low, high])  # low / middle / high, so every inner fold holds each band
        folds = StratifiedKFold(max(2, int(self.ensemble)), shuffle=True, random_state=int(self.seed)).split(x, strata)
        self.members_ = [
            hypermodel.served(
                self._tune(inputs, z, hypermodel, int(self.seed) + 7919 * k, (train, val), continuous=True).best_model
            )
            for k, (train, val) in enumerate(folds)
        ]
        return self


def graded_forest(x: np.ndarray, z: np.ndarray, x_test: np.ndarray, params: dict, seed: int) -> np.ndarray:
    """A regression forest on the flattened pixels (the classifier's trees and max_features), its test predictions."""
    b = params["baselines"]
    flat = FlattenImages(drop_zero_columns=True).fit(x)
    rf = RandomForestRegressor(int(b["rf_trees"][0]), max_features=b["rf_max_features"][0], random_state=seed)
    return rf.fit(flat.transform(x), z).predict(flat.transform(x_test))


def assay_aucs(project: Path, assay: str, params: dict) -> tuple[dict[str, list[float]], float]:
    """Per model, the AUC of every fold; and the folds' test/train size ratio (for the corrected test)."""
    size = params["render"]["size"]
    data = data_from_params(assay, params, project / f"data/images/{size}.npz", project / "data/raw/assays.csv")
    aucs: dict[str, list[float]] = {m: [] for m in MODELS}
    ratios = []
    for fold in data.folds:
        t = fold_targets(data, fold)
        seed = fold_seed(int(params["cv"]["seed"]), fold)
        scaling = data.scaling(fold.train)
        z = scaling.normalize(data.values[fold.train])
        x_all, _ = data.image_input(fold.train)
        x_labelled, _ = data.image_input(t["train"])
        x_test, _ = data.image_input(fold.test)
        scored = t["label"] != MIDDLE
        low, high = float(params["labels"]["low"]), float(params["labels"]["high"])
        predictions = {
            "cnn": make_estimator("cnn", params, seed).fit(x_labelled, t["y_train"]).predict_proba(x_test)[:, 1],
            "cnn-graded": GradedCNN(**make_estimator("cnn", params, seed).get_params())
            .fit(x_all, z, low, high)
            .predict_proba(x_test)[:, 1],
            "rf-image": make_estimator("rf-image", params, seed)
            .fit(x_labelled, t["y_train"])
            .predict_proba(x_test)[:, 1],
            "rf-image-graded": graded_forest(x_all, np.clip(z, 0, 1), x_test, params, seed),
        }
        for m, p in predictions.items():
            aucs[m].append(float(roc_auc_score(t["label"][scored], p[scored])))
        ratios.append(scored.sum() / len(t["train"]))
        print_fold(assay, fold, aucs)
    return aucs, float(np.mean(ratios))


def main() -> int:
    args = study_arguments(__doc__.splitlines()[0])
    params, assays = project_params(args)
    started = time.perf_counter()
    table, per_assay = [], {}
    for assay in assays:
        aucs, ratio = assay_aucs(args.project, assay, params)
        for base in ("cnn", "rf-image"):
            t = corrected_paired_test(aucs[f"{base}-graded"], aucs[base], ratio)
            wins = "graded" if t["ci_low"] > 0 else "classes" if t["ci_high"] < 0 else "neither (interval across 0)"
            table.append(
                f"{assay:<9} {base:<9} classes {np.mean(aucs[base]):.3f}  graded {np.mean(aucs[f'{base}-graded']):.3f}"
                f"  graded - classes {t['diff']:+.3f} [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}] p={t['p_value']:.2f}"
                f" ({t['n_folds']} folds): {wins}"
            )
        per_assay[assay] = aucs
    print_footer(table, per_assay, started, params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
