"""Which decision threshold holds on new accessions? Rules for the cut-off, each applied to the same held-out
predictions of the same fitted models, scored by balanced accuracy on the test accessions of the same folds.

A family's classes (balanced accuracy, MCC, F1 in the metrics, the served ``class``) come from its threshold, chosen
on the training rows' held-out predictions (the CNN's cross-fitted members, the forest's out-of-bag votes, the
image ensemble's mean quantile of both). The rules:

- ``youden`` (``youden_threshold``): the cut that maximises balanced accuracy on those predictions (the middle of
  the best plateau). On a hundred-odd rows whose classes barely overlap, the plateau is wide and its middle moves
  from fold to fold.
- ``logistic`` (``choose_threshold``, what training uses): a class-balanced logistic regression of the label on the
  logit of the prediction; the cut is where it crosses 1/2. Every row moves it a little, none decides it.

Prints per assay and family each rule's mean balanced accuracy, the SD of its thresholds over the folds and the
paired difference logistic - youden with its corrected 95% interval; last lines
``<assay> <family>/<rule> balanced_accuracy=<mean>``.

    .venv/bin/python benchmarks/thresholds.py --project DIR [--assays TFC,TPC] [--repeats 1]

``DIR`` holds ``params.yaml`` (else the repository's), ``data/images/<render.size>.npz`` and
``data/raw/assays.csv``: a project after ``make demo``, or ``benchmarks/science.py --keep DIR``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # project_study, ms2img
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from project_study import print_fold, project_params, study_arguments  # noqa: E402
from sklearn.metrics import balanced_accuracy_score  # noqa: E402

from ms2img.models.ensemble import ImageEnsembleClassifier  # noqa: E402
from ms2img.models.estimators import make_estimator  # noqa: E402
from ms2img.training.dataset import data_from_params  # noqa: E402
from ms2img.training.experiment import fold_seed, fold_targets  # noqa: E402
from ms2img.training.labels import MIDDLE  # noqa: E402
from ms2img.training.scores import choose_threshold, corrected_paired_test, youden_threshold  # noqa: E402

FAMILIES = ("cnn", "rf-image", "image-ensemble")
RULES = {"youden": youden_threshold, "logistic": choose_threshold}


def assay_scores(project: Path, assay: str, params: dict) -> tuple[dict, dict, float]:
    """Per ``family/rule``: balanced accuracy and threshold of every fold; the folds' test/train size ratio."""
    size = params["render"]["size"]
    data = data_from_params(assay, params, project / f"data/images/{size}.npz", project / "data/raw/assays.csv")
    keys = [f"{f}/{r}" for f in FAMILIES for r in RULES]
    accuracy: dict[str, list[float]] = {k: [] for k in keys}
    cuts: dict[str, list[float]] = {k: [] for k in keys}
    ratios = []
    for fold in data.folds:
        t = fold_targets(data, fold)
        seed = fold_seed(int(params["cv"]["seed"]), fold)
        x_train, _ = data.image_input(t["train"])
        x_test, _ = data.image_input(fold.test)
        y = np.asarray(t["y_train"]).astype(int)
        cnn = make_estimator("cnn", params, seed).fit(x_train, y)
        forest = make_estimator("rf-image", params, seed).fit(x_train, y)
        ensemble = ImageEnsembleClassifier.from_members(cnn, forest, y)
        models = {"cnn": cnn, "rf-image": forest, "image-ensemble": ensemble}
        scored = t["label"] != MIDDLE
        for family, model in models.items():
            held, p = model.inner_proba_, model.predict_proba(x_test)[:, 1]
            seen = np.isfinite(held)
            for rule, choose in RULES.items():
                cut = choose(y[seen], held[seen])
                key = f"{family}/{rule}"
                cuts[key].append(cut)
                accuracy[key].append(float(balanced_accuracy_score(t["label"][scored], (p[scored] > cut).astype(int))))
        ratios.append(scored.sum() / len(t["train"]))
        print_fold(assay, fold, accuracy)
    return accuracy, cuts, float(np.mean(ratios))


def main() -> int:
    args = study_arguments(__doc__.splitlines()[0])
    params, assays = project_params(args)
    started = time.perf_counter()
    table, lines = [], []
    for assay in assays:
        accuracy, cuts, ratio = assay_scores(args.project, assay, params)
        for family in FAMILIES:
            t = corrected_paired_test(accuracy[f"{family}/logistic"], accuracy[f"{family}/youden"], ratio)
            cells = "  ".join(
                f"{r} {np.mean(accuracy[f'{family}/{r}']):.3f} (threshold sd {np.std(cuts[f'{family}/{r}']):.3f})"
                for r in RULES
            )
            table.append(
                f"{assay:<9} {family:<15} {cells}  logistic - youden {t['diff']:+.3f} "
                f"[{t['ci_low']:+.3f}, {t['ci_high']:+.3f}] p={t['p_value']:.2f}"
            )
        lines += [f"{assay} {k} balanced_accuracy={np.mean(v):.4f}" for k, v in accuracy.items()]
    print("\nBalanced accuracy on the labelled test accessions, same folds and models; paired corrected t, 95%:")
    print("\n".join(table))
    cv = params["cv"]
    print(f"wall time {time.perf_counter() - started:.0f} s; {cv['folds']} folds x {cv['repeats']} repeats")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
