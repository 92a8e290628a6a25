"""How much does building the feature table over every accession, test folds included, flatter the table forests?

``ms2img features`` merges the spectra of every accession into one aligned table before ``ms2img train``
cross-validates on its rows, as the paper's forest on an MZmine alignment did and as a lab's MS-DIAL or MZmine
export of many samples already is: no label is used, but each test accession helped define the features it is
scored on. A served extract is instead matched to the training features (:func:`ms2img.serving.predictor.served_match`).
This benchmark fits each feature family once per fold on the training rows and scores the same test accessions
three ways:

* ``cv``: the test rows of the all-accession table (what ``ms2img train`` reports);
* ``served``: the test accessions' events matched to that table's features as the server matches them;
* ``honest``: a table merged from the training accessions only (the params' rule, m/z sigma estimated on them), a
  forest fitted on it, and the test accessions matched to it as served.

It prints per assay and family the mean AUC of each, the paired differences ``cv - honest`` and ``served - honest``
over the folds, and its wall time.

    .venv/bin/python benchmarks/table_transduction.py --project DIR [--assays DPPH,TPC] [--families rf-cosine]

``--project`` holds ``data/events``, ``data/features``, ``data/images`` and ``data/raw/assays.csv`` and a
``params.yaml`` (e.g. the ``--keep`` folder of benchmarks/science.py; the repository's params.yaml otherwise).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from sklearn.metrics import roc_auc_score

    from ms2img.features.match import FeatureMatcher, matching_rule, training_feature_spectra
    from ms2img.features.table import FeatureTable, collapse_spectra, merge_features
    from ms2img.io.schema import read_events
    from ms2img.models.estimators import make_estimator
    from ms2img.serving.predictor import served_match
    from ms2img.serving.request import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_ROWS, events_to_request, parse_request
    from ms2img.training.dataset import MIDDLE, data_from_params
    from ms2img.training.experiment import fold_seed, fold_targets
    from ms2img.training.scores import corrected_paired_test

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--assays", default=None, help="comma-separated (default: labels.assays)")
    ap.add_argument("--families", default="rf-cosine,rf-entropy")
    args = ap.parse_args()
    started = time.perf_counter()
    proj = args.project
    params_path = proj / "params.yaml" if (proj / "params.yaml").is_file() else REPO / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    assays = args.assays.split(",") if args.assays else list(params["labels"]["assays"])
    families = args.families.split(",")
    events_dir = proj / "data" / "events"
    events = {p.stem: read_events(p) for p in sorted(events_dir.glob("*.parquet"))}
    fp = params["features"]
    rule = {k: fp[k] for k in ("mz_tol_ppm", "rt_tol_min", "threshold", "ms2_tol_da", "mz_sigma_factor")}
    rule["mz_sigma_ppm"] = fp.get("mz_sigma_ppm")
    images = next((proj / "data" / "images").glob("*.npz"))
    seed = int(params["cv"]["seed"])

    def as_served(matcher: FeatureMatcher, ids: list[str]) -> np.ndarray:
        request = events_to_request(pd.concat([events[a] for a in ids], ignore_index=True))
        m = served_match(*parse_request(request, DEFAULT_MAX_ROWS, DEFAULT_MAX_FRAGMENTS), matcher)
        return np.log1p(m["matrix"][pd.Index(m["ids"].astype(str)).get_indexer(ids)])

    rows = []
    for assay in assays:
        data = data_from_params(assay, params, images, proj / "data/raw/assays.csv", proj / "data/features")
        for fam in families:
            method = fam.split("-", 1)[1]
            full = FeatureTable.load(proj / "data" / "features", method)
            full_matcher = FeatureMatcher.from_features(training_feature_spectra(full, events_dir), matching_rule(full))
            for fold in data.folds:
                t = fold_targets(data, fold)
                scored = t["label"] != MIDDLE
                y = t["label"][scored]
                test_ids = [str(a) for a in data.accessions[fold.test]]
                train_ids = [str(a) for a in data.accessions[t["train"]]]
                s = fold_seed(seed, fold)
                forest = make_estimator(fam, params, s).fit(
                    np.log1p(data.feature_input(method, t["train"])), t["y_train"]
                )
                p_cv = forest.predict_proba(np.log1p(data.feature_input(method, fold.test)))[:, 1]
                p_served = forest.predict_proba(as_served(full_matcher, test_ids))[:, 1]
                merged = [str(a) for a in data.accessions[fold.train]]  # every training accession, middle band too
                spectra = collapse_spectra(pd.concat([events[a] for a in merged], ignore_index=True))
                own = merge_features(spectra, method, progress=False, **rule)
                x_own = np.log1p(own.values.reindex(index=train_ids, fill_value=0.0).to_numpy(np.float32))
                honest = make_estimator(fam, params, s).fit(x_own, t["y_train"])
                own_matcher = FeatureMatcher.from_features(
                    training_feature_spectra(own, events_dir), matching_rule(own)
                )
                p_honest = honest.predict_proba(as_served(own_matcher, test_ids))[:, 1]
                row = {"assay": assay, "family": fam, "repeat": fold.repeat, "fold": fold.fold}
                row.update({k: roc_auc_score(y, p[scored]) for k, p in
                            (("cv", p_cv), ("served", p_served), ("honest", p_honest))})  # fmt: skip
                rows.append(row)
                print(f"{assay} {fam} fold {fold.fold}: " + ", ".join(f"{k} {row[k]:.3f}" for k in
                      ("cv", "served", "honest")), flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    ratio = 1.0 / max(table["fold"].nunique() - 1, 1)  # n_test / n_train of k-fold CV
    print("\nassay family: mean AUC cv / served / honest; cv - honest and served - honest [corrected 95% interval]")
    for (assay, fam), g in table.groupby(["assay", "family"], sort=False):
        d = {k: corrected_paired_test(g[k].to_numpy(), g["honest"].to_numpy(), ratio) for k in ("cv", "served")}
        print(
            f"{assay} {fam}: {g['cv'].mean():.3f} / {g['served'].mean():.3f} / {g['honest'].mean():.3f}; "
            + "; ".join(
                f"{k} - honest {t['diff']:+.3f} [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}]" for k, t in d.items()
            )
        )
    overall = table[["cv", "served", "honest"]].mean()
    print(f"mean over assays and families: cv {overall['cv']:.3f}, served {overall['served']:.3f}, "
          f"honest {overall['honest']:.3f} ({len(table)} fold fits)")  # fmt: skip
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
