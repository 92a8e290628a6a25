"""The paper's central claim, tested: are fingerprint images robust to the drift that breaks alignment?

Every family is trained once per fold on the unchanged training accessions; its test accessions are then scored
as if they came from a second instrument batch, at increasing perturbation levels applied to their raw events:
a shared mass-calibration offset plus per-sample m/z jitter, a shared RT shift plus per-sample jitter, fragment
dropout and intensity noise. Image families see the perturbed events rendered with their own render settings;
feature-table families re-match the perturbed precursors to their training features with their own MS1/RT/MS2
rule (``ms2img.features.match``, as the server does), so level 0 is the serving path on clean data.

    .venv/bin/python benchmarks/drift.py --project /tmp/sci1 --assays DPPH,TPC

``--project`` is a folder holding ``data/events``, ``data/features``, ``data/images`` and ``data/raw/assays.csv``
(e.g. the ``--keep`` folder of benchmarks/science.py). Prints a table, writes ``reports/drift.json`` and
``plots/drift.png`` in that folder (the report embeds them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
LEVELS = [  # (batch m/z offset ppm, RT shift min, fragment dropout, intensity noise sigma)
    (0.0, 0.0, 0.0, 0.0),
    (5.0, 0.2, 0.1, 0.1),
    (10.0, 0.5, 0.2, 0.2),
    (20.0, 1.0, 0.4, 0.3),
]


def perturb(events: pd.DataFrame, level: tuple[float, float, float, float], rng: np.random.Generator) -> pd.DataFrame:
    """A second-batch copy of ``events``: shared offsets plus per-sample jitter, dropout, intensity noise."""
    ppm, rt_shift, dropout, noise = level
    if not any(level):
        return events
    ev = events.copy()
    acc = ev["accession"].astype(str).to_numpy()
    names, code = np.unique(acc, return_inverse=True)
    sample_ppm = ppm + rng.normal(0, ppm / 4 if ppm else 0, len(names))
    sample_rt = rt_shift + rng.normal(0, rt_shift / 4 if rt_shift else 0, len(names))
    factor = 1 + sample_ppm[code] * 1e-6
    ev["precursor_mz"] = ev["precursor_mz"].to_numpy() * factor
    ev["fragment_mz"] = ev["fragment_mz"].to_numpy() * factor
    ev["rt_min"] = ev["rt_min"].to_numpy() + sample_rt[code]
    if noise:
        key = pd.factorize(pd.MultiIndex.from_frame(ev[["accession", "replicate", "feature_id"]].astype(str)))[0]
        prec = rng.lognormal(0, noise, key.max() + 1)
        ev["precursor_intensity"] = ev["precursor_intensity"].to_numpy() * prec[key]
        ev["fragment_intensity"] = ev["fragment_intensity"].to_numpy() * rng.lognormal(0, noise, len(ev))
    if dropout:
        ev = ev[rng.random(len(ev)) >= dropout]
    return ev.reset_index(drop=True)


def main() -> int:
    from ms2img.features.match import FeatureMatcher, matching_rule, training_feature_spectra
    from ms2img.features.table import FeatureTable
    from ms2img.io.schema import read_events
    from ms2img.models.family import input_kind
    from ms2img.render import RenderConfig, images_path, render_events
    from ms2img.serving.predictor import served_match
    from ms2img.serving.request import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_ROWS, events_to_request, parse_request
    from ms2img.training.dataset import MIDDLE, data_from_params
    from ms2img.training.experiment import fit_family
    from ms2img.training.scores import fold_scores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--assays", default="DPPH")
    ap.add_argument("--families", default="cnn,rf-image,rf-cosine,rf-entropy")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    params = yaml.safe_load((args.project / "params.yaml").read_text()) if (args.project / "params.yaml").exists() \
        else yaml.safe_load((REPO / "params.yaml").read_text())  # fmt: skip
    families = args.families.split(",")
    proj = args.project
    size = params["render"]["size"]
    rng = np.random.default_rng(args.seed)
    matchers = {}
    for fam in families:
        if input_kind(fam) == "features":
            table = FeatureTable.load(proj / "data" / "features", fam.split("-", 1)[1])
            feats = training_feature_spectra(table, proj / "data" / "events")
            matchers[fam] = FeatureMatcher.from_features(feats, matching_rule(table))
    events = {p.stem: p for p in (proj / "data" / "events").glob("*.parquet")}
    rows = []
    started = time.perf_counter()
    for assay in args.assays.split(","):
        images = images_path(size, proj / "data" / "images")
        assays_csv = proj / "data" / "raw" / "assays.csv"
        data = data_from_params(assay, params, images, assays_csv, features_dir=proj / "data" / "features")
        config = RenderConfig(**data.images.config)
        for fold in data.folds:
            scaling = data.scaling(fold.train)
            y_train = scaling.labels(data.values[fold.train])
            keep = y_train != MIDDLE
            y_test = scaling.labels(data.values[fold.test])
            scored = y_test != MIDDLE
            test_ids = data.accessions[fold.test]
            clean = pd.concat([read_events(events[a]) for a in test_ids], ignore_index=True)
            models = {f: fit_family(data, f, params, fold.train[keep], y_train[keep], 42 + fold.fold) for f in families}
            for li, level in enumerate(LEVELS):
                ev = perturb(clean, level, rng)
                rendered = render_events(ev, config, progress=False)
                order = pd.Index(rendered.ids.astype(str)).get_indexer(test_ids)
                request = events_to_request(ev)
                for fam, model in models.items():
                    if input_kind(fam) == "image":
                        x = rendered.images[order]
                    else:
                        parsed = parse_request(request, DEFAULT_MAX_ROWS, DEFAULT_MAX_FRAGMENTS)
                        m = served_match(*parsed, matchers[fam])  # injections matched alone, as served
                        x = np.log1p(m["matrix"][pd.Index(np.asarray(m["ids"]).astype(str)).get_indexer(test_ids)])
                    prob = model.predict_proba(x)[:, 1]
                    auc = fold_scores(y_test[scored], prob[scored], model.threshold_)["auc"]
                    rows.append({"assay": assay, "family": fam, "fold": fold.fold, "level": li, "auc": auc})
            last = rows[-len(LEVELS) * len(families) :]
            print(
                f"{assay} fold {fold.fold}: " + ", ".join(f"{r['family']} L{r['level']} {r['auc']:.2f}" for r in last)
            )
    table = pd.DataFrame(rows)
    summary = table.groupby(["assay", "family", "level"])["auc"].agg(["mean", "std"]).reset_index()
    print("\nlevel: (m/z offset ppm, RT shift min, fragment dropout, intensity noise)")
    for li, lv in enumerate(LEVELS):
        print(f"  L{li} = {lv}")
    print(f"{'assay':<9} {'family':<11} " + " ".join(f"{'L' + str(i):>12}" for i in range(len(LEVELS))))
    for (assay, fam), g in summary.groupby(["assay", "family"], sort=False):
        cells = [f"{m:.3f}±{s:.3f}" for m, s in zip(g["mean"], g["std"], strict=True)]
        print(f"{assay:<9} {fam:<11} " + " ".join(f"{c:>12}" for c in cells))
    print(f"wall time {time.perf_counter() - started:.0f} s")
    out = {"levels": [dict(zip(("mz_ppm", "rt_min", "dropout", "noise"), lv, strict=True)) for lv in LEVELS],
           "results": summary.rename(columns={"std": "sd"}).to_dict(orient="records")}  # fmt: skip
    (proj / "reports").mkdir(exist_ok=True)
    (proj / "reports" / "drift.json").write_text(json.dumps(out, indent=2) + "\n")
    _plot(summary, proj / "plots" / "drift.png")
    return 0


def _plot(summary: pd.DataFrame, path: Path) -> None:
    from ms2img.plots import family_color, new_figure, save_figure

    assays = list(dict.fromkeys(summary["assay"]))
    fig = new_figure(4.2 * len(assays), 3.8)
    for i, assay in enumerate(assays):
        ax = fig.add_subplot(1, len(assays), i + 1)
        for fam, g in summary[summary["assay"] == assay].groupby("family", sort=False):
            ax.errorbar(g["level"], g["mean"], yerr=g["std"], marker="o", capsize=3, label=fam, color=family_color(fam))
        ax.set_xticks(range(len(LEVELS)), [f"L{i}\n{lv[0]:g} ppm\n{lv[1]:g} min" for i, lv in enumerate(LEVELS)])
        ax.set_ylabel("held-out AUC")
        ax.set_title(f"{assay}: second-batch drift")
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
