"""One image per accession or one per injection? And what does a per-injection model make of a served request?

``render.per_replicate: true`` trains on one image per replicate injection (an accession's images held out together
everywhere; its test probability is the mean over its images). A served request's injections are averaged by the
server as the renderer averages them (:func:`ms2img.serving.request.events_to_request`), so a served accession is one
averaged image, which a per-injection model never saw. On the same folds (``cv.folds`` x ``--repeats``) this prints,
per assay and family, the AUC on the labelled test accessions of

* ``accession``: trained and scored on per-accession images (the default),
* ``replicate``: trained on per-injection images, scored as cross-validation scores them (mean over the images),
* ``replicate-served``: the same models scored on the per-accession (averaged) image, as a served request renders,

and the paired differences ``replicate - accession`` and ``replicate-served - replicate`` with their corrected 95%
intervals. Last lines ``<assay> <family>/<variant> auc=<mean>``.

    .venv/bin/python benchmarks/replicates.py --project DIR [--families rf-image,cnn] [--assays elastase]

``DIR`` holds ``data/events`` (``ms2img ingest``) and ``data/raw/assays.csv``: a project after ``make demo``, or
``benchmarks/science.py --keep DIR``. Both image sets are rendered at ``render.size`` into ``DIR/data/images/``
(``<size>.npz`` when missing, ``replicates_<size>.npz``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # project_study, ms2img
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from project_study import print_fold, print_footer, project_params, study_arguments  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from ms2img.render import RenderConfig, render_files  # noqa: E402
from ms2img.training.dataset import data_from_params  # noqa: E402
from ms2img.training.experiment import fit_family, fold_seed, fold_targets  # noqa: E402
from ms2img.training.labels import MIDDLE  # noqa: E402
from ms2img.training.scores import corrected_paired_test  # noqa: E402

VARIANTS = ("accession", "replicate", "replicate-served")


def images(project: Path, params: dict) -> tuple[Path, Path]:
    """The per-accession and per-injection image files at ``render.size`` (rendered when missing)."""
    size = params["render"]["size"]
    paths = (project / f"data/images/{size}.npz", project / f"data/images/replicates_{size}.npz")
    for path, per_replicate in zip(paths, (False, True), strict=True):
        if not path.exists():
            config = RenderConfig.from_params(params["render"], per_replicate=per_replicate)
            [imageset] = render_files(project / "data/events", [config])
            path.parent.mkdir(parents=True, exist_ok=True)
            imageset.save(path)
    return paths


def assay_aucs(project: Path, assay: str, params: dict, families: list[str]) -> tuple[dict, float]:
    """Per ``family/variant`` the AUC of every fold; and the folds' test/train size ratio."""
    per_accession, per_replicate = images(project, params)
    assays_csv = project / "data/raw/assays.csv"
    acc = data_from_params(assay, params, per_accession, assays_csv)
    rep = data_from_params(assay, params, per_replicate, assays_csv)
    if not np.array_equal(acc.accessions, rep.accessions):
        raise SystemExit(f"{assay}: the two image files hold different accessions")
    aucs = {f"{f}/{v}": [] for f in families for v in VARIANTS}
    ratios = []
    for fold in acc.folds:  # the same values, accessions and seed: the same folds for both
        t = fold_targets(acc, fold)
        seed = fold_seed(int(params["cv"]["seed"]), fold)
        scored = t["label"] != MIDDLE
        test = fold.test[scored]
        x_avg, _ = acc.image_input(test)
        x_rep, owner = rep.image_input(test)
        for family in families:
            model = fit_family(acc, family, params, t["train"], t["y_train"], seed)
            p = {"accession": model.predict_proba(x_avg)[:, 1]}
            model = fit_family(rep, family, params, t["train"], t["y_train"], seed)
            per_image = model.predict_proba(x_rep)[:, 1]
            p["replicate"] = np.array([per_image[owner == q].mean() for q in test])
            p["replicate-served"] = model.predict_proba(x_avg)[:, 1]
            for variant, prob in p.items():
                aucs[f"{family}/{variant}"].append(float(roc_auc_score(t["label"][scored], prob)))
        ratios.append(scored.sum() / len(t["train"]))
        print_fold(assay, fold, aucs)
    return aucs, float(np.mean(ratios))


def main() -> int:
    families_arg = argparse.ArgumentParser(add_help=False)
    families_arg.add_argument("--families", default="rf-image,cnn", help="comma-separated image families")
    args = study_arguments(__doc__.splitlines()[0], families_arg)
    params, assays = project_params(args)
    families = args.families.split(",")
    started = time.perf_counter()
    table, per_assay = [], {}
    for assay in assays:
        aucs, ratio = assay_aucs(args.project, assay, params, families)
        for f in families:
            mean = {v: np.mean(aucs[f"{f}/{v}"]) for v in VARIANTS}
            line = f"{assay:<9} {f:<15} " + "  ".join(f"{v} {mean[v]:.3f}" for v in VARIANTS)
            for a, b in (("replicate", "accession"), ("replicate-served", "replicate")):
                t = corrected_paired_test(aucs[f"{f}/{a}"], aucs[f"{f}/{b}"], ratio)
                line += f"  | {a} - {b} {t['diff']:+.3f} [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}] p={t['p_value']:.2f}"
            table.append(line)
        per_assay[assay] = aucs
    print_footer(table, per_assay, started, params)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
