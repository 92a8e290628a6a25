"""The ``train@<assay>`` stage: every family on the same folds, the winner, the final models and their records.

Writes (see docs/contracts.md) ``metrics/<assay>.json`` (numbers only), ``reports/<assay>/{oof.csv, folds.csv,
selection.json, run.json}``, ``models/<assay>/<family>/`` and ``plots/<assay>/*.png``, and with tracking on one
MLflow parent run per assay with a child run per family (same metric keys on every level).

``labels.mode: regression`` trains every family's regressor on the raw values on the same folds: the metrics hold
Spearman rho, RMSE and R2 per fold (mean, SD, interval) and pooled (value, interval), the winner is chosen by
Spearman, each family's figure is predicted against measured, and the descriptive PCA / OPLS-DA are skipped.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img import plots, tracking
from ms2img.atomic import atomic_dir, atomic_path, write_text
from ms2img.errors import Ms2ImgError
from ms2img.jsonio import to_jsonable
from ms2img.models.family import ENSEMBLE, FAMILIES, MULTITASK, input_kind
from ms2img.training.dataset import MIDDLE, AssayData, class_summary, cv_seed, data_from_params
from ms2img.training.experiment import CVResult, cross_validate, degenerate_families, fit_final, resolve_cohort_settings
from ms2img.training.fold_metrics import confusion_matrices, predict_labels, write_metrics_json
from ms2img.training.labels import per_accession_oof
from ms2img.training.scores import LABELS, PRIMARY, REGRESSION_SCORES, SCORES, scores_of

log = logging.getLogger(__name__)
SERVED_REPLICATES_WARNING = (
    "%s: render.per_replicate is true: cross-validation scores an accession by the mean over its injection images, "
    "while a served request renders one image per accession (replicates averaged), which the models never trained "
    "on; benchmarks/replicates.py measures the difference (development cohorts, rf-image and cnn: served -0.012 "
    "to +0.004 AUC from cross-validated)"
)
PARAM_SECTIONS = ("base", "labels", "cv", "render", "cnn", "tune", "baselines", "features")


def families_from_params(params: Mapping[str, Any]) -> list[str]:
    """The families to train (``train.families``), feature families only for the similarity methods built."""
    from ms2img.errors import ConfigError

    given = (params.get("train") or {}).get("families", FAMILIES)
    if isinstance(given, str) or not isinstance(given, Sequence) or not given:
        raise ConfigError(
            f"train.families must be a non-empty list of family names, e.g. [cnn, rf-image]; got {given!r}"
        )
    wanted = [str(f) for f in given]
    twice = sorted({f for f in wanted if wanted.count(f) > 1})
    if twice:  # found only after the whole cross-validation otherwise
        raise ConfigError(f"train.families lists {', '.join(twice)} more than once: {wanted}")
    methods = set(params["features"]["similarity"])
    unknown = [f for f in wanted if f not in FAMILIES]
    if unknown:
        raise ConfigError(f"unknown families {unknown} in train.families; known: {list(FAMILIES)}")
    kept = [f for f in wanted if input_kind(f) == "image" or f.split("-", 1)[1] in methods]
    for family in (ENSEMBLE, MULTITASK):
        if family in kept and params.get("labels", {}).get("mode") == "regression":
            log.info("%s is a classifier: not trained with labels.mode: regression", family)
            kept.remove(family)
    return sorted(kept, key=lambda f: f == ENSEMBLE)  # last: it is built from the members' fits of the same fold


def params_in_effect(params: Mapping[str, Any]) -> dict[str, Any]:
    """Only the sections that decide a model's numbers (MLflow params; serving and schedules are not)."""
    return {k: params[k] for k in PARAM_SECTIONS if k in params}


def training_provenance(assay: str, params: Mapping[str, Any], raw_data: str | Path | None) -> dict[str, str]:
    """What the models of this run were trained on, stored in every card and in run.json: the data version (DVC
    hash of the raw exports), the code (commit, source hash) and ``training_key`` over assay, data, params and
    code. The registry registers one model per family and key: a retrain of the same thing is not a new version,
    and a model folder left by an earlier run (another key) is never registered as this run's."""
    data_version = (tracking.data_hash(raw_data) if raw_data else None) or "unknown"
    code = tracking.code_hash()
    what = {"assay": assay, "data": data_version, "code": code, "params": params_in_effect(params)}
    key = hashlib.sha256(json.dumps(to_jsonable(what), sort_keys=True, default=str).encode()).hexdigest()
    return {"data_version": data_version, "code_version": tracking.code_version(), "code_hash": code,
            "training_key": key}  # fmt: skip


def _write_table(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return path


def _family_plots(
    data: AssayData, cv: CVResult, family: str, plot_dir: Path, units: str | None, threshold: float | None = None
) -> list[Path]:
    """ROC, confusion (mean ± SD at the family's own thresholds) and out-of-fold predictions of one family: one dot
    per accession (mean over repeats), ``threshold`` the saved model's (:func:`ms2img.plots.decision_threshold`)."""
    folds = cv.folds[cv.folds["family"] == family]
    oof = cv.oof[cv.oof["family"] == family]
    y_true, y_prob, y_pred = [], [], []
    if cv.mode == "regression":  # one dot per accession, as the pooled scores count them (metrics' "pooled")
        per = per_accession_oof(oof)
        repeats = int(oof["repeat"].nunique())
        return [
            plots.plot_regression_oof(
                per["value"].to_numpy(),
                per["prediction"].to_numpy(),
                plot_dir / f"regression_{family.replace('-', '_')}.png",
                value_label=data.assay,
                units=units,
                title=f"{data.assay} {family}: out-of-fold predicted vs measured value"
                + (f" (mean of {repeats} repeats)" if repeats > 1 else ""),
            )
        ]
    for (_, _), g in oof.groupby(["repeat", "fold"], sort=True):
        scored = g[g["label"] != MIDDLE]
        thr = float(
            folds[(folds["repeat"] == g["repeat"].iat[0]) & (folds["fold"] == g["fold"].iat[0])]["threshold"].iat[0]
        )
        y_true.append(scored["label"].to_numpy())
        y_prob.append(scored["probability"].to_numpy())
        y_pred.append(predict_labels(scored["probability"].to_numpy(), thr))
    name = family.replace("-", "_")
    mean, sd = confusion_matrices(y_true, y_pred)
    s = data.scaling()
    t, t_label, band = plots.decision_threshold(threshold, folds["threshold"].tolist())
    return [
        plots.plot_roc(
            list(zip(y_true, y_prob, strict=True)),
            plot_dir / f"roc_{name}.png",
            title=f"{data.assay} {family}: ROC ({len(y_true)} held-out folds)",
        ),
        plots.plot_confusion(
            mean,
            sd,
            plot_dir / f"confusion_{name}.png",
            title=f"{data.assay} {family}: confusion (mean ± SD over folds)",
        ),
        plots.plot_family_oof(
            oof,
            plot_dir / f"predictions_{name}.png",
            value_label=data.assay,
            units=units,
            low_cutoff=s.min + s.low * (s.max - s.min),
            high_cutoff=s.min + s.high * (s.max - s.min),
            threshold=t,
            threshold_label=t_label,
            threshold_band=band,
            title=f"{data.assay} {family}: out-of-fold P(high) vs measured value",
        ),
    ]


def multivariate(data: AssayData, params: Mapping[str, Any], plot_dir: Path, seed: int) -> tuple[dict, list[Path]]:
    """PCA and OPLS-DA on the first feature table with all-data labels: the paper's descriptive Fig. 4."""
    from ms2img.models.baselines import pca_scores
    from ms2img.models.oplsda import oplsda

    if not data.features:
        return {}, []
    method = next(iter(data.features))
    y = data.scaling().labels(data.values)
    keep = y != MIDDLE
    X = np.log1p(data.feature_input(method, np.flatnonzero(keep)))
    y = y[keep]
    b = params["baselines"]
    pca = pca_scores(X, y)
    result = oplsda(X, y, cv_folds=int(b["oplsda_cv_folds"]), permutations=int(b["oplsda_permutations"]), seed=seed)
    raw = result.summary()
    summary = {k: raw[k] for k in ("r2x", "r2y", "q2y", "n_orthogonal") if isinstance(raw.get(k), int | float)}
    summary.update(p_r2y=raw["permutation_p_r2y"], p_q2y=raw["permutation_p_q2y"], n_permutations=raw["n_permutations"])
    figures = [
        plots.plot_pca(pca, y, plot_dir / "pca_scores.png", assay=data.assay, data_label=f"{method} feature table"),
        plots.plot_oplsda(result, y, plot_dir / "oplsda_scores.png", assay=data.assay),
        plots.plot_permutation(result, plot_dir / "oplsda_permutation.png", assay=data.assay),
    ]
    evr = pca.explained_variance_ratio
    return {"oplsda": summary, "pca": {"pc1": float(evr[0]), "pc2": float(evr[1])}}, figures


def _feature_definitions(family: str, features_dir: Path, events_dir: Path | None) -> tuple[pd.DataFrame | None, dict]:
    """The training features a feature-family model matches requests against, and the rule it matches with."""
    if input_kind(family) != "features":
        return None, {}
    from ms2img.features.match import matching_rule, training_feature_spectra
    from ms2img.features.table import FeatureTable

    table = FeatureTable.load(features_dir, family.split("-", 1)[1])
    return training_feature_spectra(table, events_dir), {"matching": matching_rule(table)}


def replicate_warning(events_dir: str | Path | None, accessions: Sequence[str]) -> str | None:
    """Ingest's replicate hint over the ``accessions`` trained on, said again where the scores are made: training
    accessions that look like injections of one extract are split across folds like different extracts, so every
    family scores a near-copy of what it trained on. A lab that skips the sample sheet sees the hint once in
    ingest's output, which a flow run hides."""
    from ms2img.io.sample_sheet import read_manifest, replicate_hint

    manifest = read_manifest(events_dir) if events_dir else None
    if manifest is None or not {"accession", "sample", "type"} <= set(manifest.columns):
        return None
    trained = manifest[manifest["accession"].isin({str(a) for a in accessions})]
    hint = replicate_hint(trained, tuple(trained["type"].unique()))
    if hint is None:
        return None
    return (f"{hint}. Until then the folds can hold injections of one extract on both sides, and every score here "
            "is optimistic")  # fmt: skip


def class_confound_warning(events_dir: str | Path | None, labels: pd.Series) -> str | None:
    """Said when the low/high labels follow the samples' class (sample sheet or metadata ``class``) exactly.

    Why: FERMO's 4 active extracts are its 4 samples of one strain group. Every family can then score by telling the
    groups apart (strain, batch, extraction day) without finding the active compounds, and cross-validation cannot
    see it; only a class that holds both high and low accessions can. ``labels``: 0/1 by accession (middle left out).
    """
    from ms2img.io.sample_sheet import read_manifest

    manifest = read_manifest(events_dir) if events_dir else None
    if manifest is None or "class" not in manifest.columns or labels.nunique() < 2:
        return None
    classes = manifest[manifest["class"].str.strip() != ""].groupby("accession")["class"].agg(set)
    classes = classes[classes.map(len) == 1].map(lambda c: next(iter(c)))  # accessions of one class
    both = pd.DataFrame({"class": classes, "label": labels}).dropna()
    if both["class"].nunique() < 2 or both["class"].nunique() >= len(both) or both["label"].nunique() < 2:
        return None  # one class, or every accession its own: nothing to confound
    per_class = both.groupby("class")["label"].agg(["nunique", "first", "size"])
    if (per_class["nunique"] > 1).any():
        return None
    said = "; ".join(f"{r.Index}: {int(r.size)} {'high' if r.first == 1 else 'low'}" for r in per_class.itertuples())
    return (f"the labels follow the sample class exactly ({said}): a model can score by telling the classes apart "
            "(strain, batch, extraction) without finding the active compounds, and cross-validation cannot see it; "
            "high and low accessions within one class would")  # fmt: skip


def train_assay(
    *,
    assay: str,
    params: Mapping[str, Any],
    images_path: str | Path,
    assays_csv: str | Path,
    features_dir: str | Path = "data/features",
    events_dir: str | Path | None = "data/events",
    raw_data: str | Path | None = "data/raw",
    validation_report: str | Path | None = None,
    metrics_dir: str | Path = "metrics",
    reports_dir: str | Path = "reports",
    models_dir: str | Path = "models",
    plots_dir: str | Path = "plots",
    track: bool = True,
    units: str | None = None,
) -> dict[str, Any]:
    """Cross-validate every family, choose the winner, fit and save the final models; see the module docstring."""
    started = time.perf_counter()
    seed = cv_seed(params)
    units = units or (params["labels"].get("units") or {}).get(assay)  # labels.units: axes, cards, served values
    families = families_from_params(params)
    data = data_from_params(assay, params, images_path, assays_csv, features_dir=features_dir)
    labels = None if data.regression else data.scaling().labels(data.values)  # all-data scaling, as the final fit
    counts = {} if labels is None else class_summary(labels)
    protocol = data.protocol
    fitting = resolve_cohort_settings(data, params, families)  # cohort-size settings checked before any fit
    (log.warning if protocol.small_cohort else log.info)("%s: %s", assay, protocol.describe())
    warnings = [replicate_warning(events_dir, data.accessions)]
    if labels is not None:
        labelled = pd.Series(labels, index=pd.Index(data.accessions, dtype=str))
        warnings.append(class_confound_warning(events_dir, labelled[labelled.isin((0, 1))]))
    warnings = [w for w in warnings if w]
    for warning in warnings:
        log.warning("%s: %s", assay, warning)
    if (
        data.images is not None
        and data.images.render_config().per_replicate
        and any(input_kind(f) == "image" for f in families)
    ):
        log.warning(SERVED_REPLICATES_WARNING, assay)
    report_dir, plot_dir = Path(reports_dir) / assay, Path(plots_dir) / assay
    cv = cross_validate(data, families, fitting, seed=seed)
    summary = cv.summary()
    degenerate = degenerate_families(cv)
    notes = list(degenerate.values())
    selection = cv.selection(degenerate=list(degenerate))
    if selection["winner"] is None:
        raise Ms2ImgError(f"assay {assay}: {selection['reason']}; nothing to serve ({protocol.describe()})")
    if data.regression:
        extras, figures = {}, []
        log.info("%s: PCA / OPLS-DA skipped in regression mode (they describe the low/high classes)", assay)
    else:
        extras, figures = multivariate(data, fitting, plot_dir, seed)
    figures.append(
        plots.plot_metric_boxplots(
            cv.folds,
            plot_dir / "model_comparison.png",
            metrics=scores_of(data.mode),
            title=f"{assay}: per-fold scores, every family on the same folds",
        )
    )

    provenance = training_provenance(assay, params, raw_data)
    # models/<assay> is swapped in whole once every final model is saved: a run stopped during the final fits (Ctrl-C,
    # out of memory) leaves the last good models beside the reports that describe them; the new folder holds exactly
    # this run's families (one dropped from train.families goes with the swap)
    fitted: dict[str, Any] = {}
    with atomic_dir(Path(models_dir) / assay) as staging:
        for fam in families:
            features, extra = _feature_definitions(fam, Path(features_dir), Path(events_dir) if events_dir else None)
            model = fit_final(
                data,
                fam,
                fitting,
                seed=seed,
                summary=summary,
                features=features,
                extra={
                    **extra,
                    **provenance,
                    "images": str(images_path),
                    **({"units": units} if data.regression else {}),
                },
                fitted=fitted,
            )
            model.save(staging / fam)
            # after the final fit: Fig. 3A draws the threshold the saved model is served at, not one fold's
            figures += _family_plots(data, cv, fam, plot_dir, units, None if data.regression else model.threshold)
    saved = {fam: Path(models_dir) / assay / fam for fam in families}

    classes = {f"n_{k}": counts[k] for k in ("low", "high", "middle")} if counts else {}
    metrics = {
        "n_accessions": len(data.values),
        **classes,
        "folds": protocol.folds,
        "repeats": protocol.repeats,
        "small_cohort": int(protocol.small_cohort),  # 1: below 20 labelled accessions per class (numbers only)
        **summary,
        "selection_bias": selection.get("selection_bias"),  # the winner's mean is this optimistic (scores.py)
        **extras,
    }
    _write_table(cv.oof, report_dir / "oof.csv")
    _write_table(cv.folds, report_dir / "folds.csv")
    # "paired": every pair of families on the same folds, which the registry's "selection" rule quotes
    selection = {**selection, "paired": summary["paired"], "degenerate": notes, "families": families,
                 "small_cohort": protocol.small_cohort,
                 "protocol": protocol.describe(), "mode": data.mode,
                 "warnings": warnings}  # fmt: skip
    write_text(report_dir / "selection.json", json.dumps(to_jsonable(selection), indent=2, sort_keys=True) + "\n")
    write_metrics_json(Path(metrics_dir) / f"{assay}.json", metrics)
    run = {"seconds": round(time.perf_counter() - started, 1), **provenance}
    if track:
        # the values in effect, not "auto": a run's protocol is comparable in the MLflow UI
        cv_in_effect = {**(fitting.get("cv") or {}), "folds": protocol.folds, "repeats": protocol.repeats}
        in_effect = {**fitting, "cv": cv_in_effect}
        run["mlflow_run_id"], run["mlflow_family_runs"] = log_training_run(
            assay,
            in_effect,
            data,
            cv,
            summary,
            selection,
            saved,
            figures,
            raw_data=raw_data,
            validation_report=validation_report,
            started_at=time.time() - (time.perf_counter() - started),
        )
    write_text(report_dir / "run.json", json.dumps(to_jsonable(run), indent=2, sort_keys=True) + "\n")
    log.info("%s: winner %s, %.0f s", assay, selection["winner"], run["seconds"])
    return {"metrics": metrics, "selection": selection, "run": run}


def _headline(assay: str, fam: str, entry: Mapping[str, Any], n: int, metric: str = "auc") -> str:
    a = entry[metric]
    what = "labelled accessions" if metric == "auc" else "accessions"
    return (
        f"{assay} {fam}: cross-validated {LABELS[metric]} {a['mean']:.3f} ± {a['sd']:.3f} "
        f"(95% CI {a['ci_low']:.3f}-{a['ci_high']:.3f}) on {n} {what}"
    )


def score_metrics(entry: Mapping[str, Any]) -> dict[str, float]:
    """``auc_mean, auc_sd, auc_ci_low, ...`` (regression: ``spearman_mean, ..., rmse_..., r2_...`` and the pooled
    ``pooled_spearman, pooled_spearman_ci_low, ...``): the same keys on every run level."""
    stats = ("mean", "sd", "ci_low", "ci_high")
    out = {f"{s}_{k}": entry[s][k] for s in (*SCORES, *REGRESSION_SCORES) if isinstance(entry.get(s), Mapping)
           for k in stats if k in entry[s]}  # fmt: skip
    if isinstance(entry.get("spearman"), int | float):  # classification: pooled P(high) against the raw value
        out["spearman"] = entry["spearman"]
    for s, e in (entry.get("pooled") or {}).items():
        out.update({f"pooled_{s}": e["value"], f"pooled_{s}_ci_low": e["ci_low"], f"pooled_{s}_ci_high": e["ci_high"]})
        if "p_value" in e:  # the pooled rho's permutation p, as card and report print it
            out[f"pooled_{s}_p"] = e["p_value"]
    return out


def log_training_run(
    assay: str,
    params: Mapping[str, Any],
    data: AssayData,
    cv: CVResult,
    summary: Mapping,
    selection: Mapping,
    saved: Mapping[str, Path],
    figures: Sequence[Path],
    *,
    raw_data=None,
    validation_report=None,
    started_at: float | None = None,
) -> tuple[str, dict[str, str]]:
    """One parent run per assay (headline = the winner), one child per family (its metrics, dataset, plots; the
    registry logs the family's model there too), metrics logged in batches. Returns the parent's run id and each
    family's. ``started_at`` (epoch seconds): when the training began, the parent run's start."""
    import mlflow

    if data.regression:
        n = len(data.values)
    else:
        n = int(sum(v for k, v in class_summary(data.scaling().labels(data.values)).items() if k != "middle"))
    winner, metric = selection["winner"], PRIMARY[data.mode]
    with tracking.parent_run(
        assay,
        f"{assay.lower()} train {data.size}",
        params_in_effect(params),
        raw_data,
        {"run.kind": "training", "size": data.size, "winner": winner},
        started_at=started_at,
    ) as logger:
        run_id = mlflow.active_run().info.run_id
        tracking.log_dataset(raw_data, name=f"{assay} raw exports", context="training")
        mlflow.set_tag(
            "mlflow.note.content",
            _headline(assay, winner, summary["families"][winner], n, metric)
            + f". Winner: {winner} ({selection['reason']}).",
        )
        logger.log_metrics({**score_metrics(summary["families"][winner]), "n_labelled": n})
        logger.log_metrics({f"p_{k.replace(' ', '_')}": v["p_value"] for k, v in summary["paired"].items()})
        family_runs = {}
        for fam in cv.families:
            entry = summary["families"][fam]
            with logger.child(f"{assay.lower()} {fam}") as child:
                family_runs[fam] = mlflow.active_run().info.run_id
                tracking.log_dataset(raw_data, name=f"{assay} raw exports", context="training")
                child.set_tags(
                    {
                        "run.kind": "family",
                        "family": fam,
                        "mlflow.note.content": _headline(assay, fam, entry, n, metric),
                    }
                )
                child.log_metrics(score_metrics(entry))
                folds = cv.folds[cv.folds["family"] == fam].reset_index(drop=True)
                tracking.log_series({f"fold_{s}": folds[s].tolist() for s in scores_of(data.mode)})
                card = json.loads((saved[fam] / "model.json").read_text())
                child.log_params({f"hp.{k}": v for k, v in (card.get("hyperparameters") or {}).items()})
                for path in figures:
                    if fam.replace("-", "_") in path.stem:
                        child.log_artifact(path, "plots")
                child.log_artifact(saved[fam] / "model.json", "model_card")
        for path in figures:
            if not any(f.replace("-", "_") in path.stem for f in cv.families):
                logger.log_artifact(path, "plots")
        if validation_report and Path(validation_report).exists():
            logger.log_artifact(validation_report, "validation")
    return run_id, family_runs


def study_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the ``resolution`` section's folds / trials / epochs / ensemble in ``cv``, ``tune``, ``cnn``
    (and ``labels.mode: classification``: the study is the paper's AUC table)."""
    out = copy.deepcopy(dict(params))
    if "labels" in out:  # the paper's Table 1 compares AUC, in either labels.mode
        out["labels"] = {**out["labels"], "mode": "classification"}
    study = dict(out.get("resolution") or {})
    if "folds" in study:
        out["cv"] = {**out["cv"], "folds": int(study["folds"]), "repeats": 1}
    if "trials" in study:
        out["tune"] = {**out["tune"], "trials": int(study["trials"])}
    for key in ("epochs", "ensemble"):
        if key in study:
            out["cnn"] = {**out["cnn"], key: int(study[key])}
    return out


def resolution_study(
    *,
    assay: str,
    image_paths: Mapping[str, str | Path],
    assays_csv: str | Path,
    params: Mapping[str, Any],
    metrics_dir: str | Path = "metrics",
    reports_dir: str | Path = "reports",
) -> dict[str, Any]:
    """The paper's Table 1: the CNN on the same folds at each resolution, with its inner learning curves.

    params.yaml's ``resolution`` section (trials, epochs, ensemble) overrides ``tune``/``cnn`` here only: the
    study compares sizes under one protocol, and at 300x280 the full protocol does not fit a CPU budget.
    """
    seed = cv_seed(params)
    params = study_params(params)
    results, rows = {}, []
    for size, path in image_paths.items():
        data = data_from_params(assay, params, path, assays_csv)
        cv = cross_validate(data, ["cnn"], resolve_cohort_settings(data, params, ["cnn"]), seed=seed)
        entry = cv.summary()["families"]["cnn"]
        summary = {s: entry[s] for s in ("auc", "balanced_accuracy")}  # stats.SCORES names, as in every file
        results[size] = {"histories": cv.histories.get("cnn", []), "summary": summary}
        rows.append({"size": size, **score_metrics(entry), "fit_seconds": entry["seconds"]})
    figure = plots.plot_resolution_study(
        results,
        Path(reports_dir) / assay / "resolution_study.png",
        title=f"{assay}: input image resolution",
        heldout_prefix="heldout_",
        inner_prefix="inner_val_",
    )
    write_metrics_json(Path(metrics_dir) / f"{assay}_resolution.json", {"assay": assay, "table": rows})
    _write_table(pd.DataFrame(rows), Path(reports_dir) / assay / "resolution.csv")
    return {"assay": assay, "table": rows, "figure": str(figure)}
