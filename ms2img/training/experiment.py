"""The one cross-validation loop: every family on the same repeated folds, labels scaled inside each fold.

Per fold: fit the label scaling on the training accessions, drop their middle band, fit each family (its own
selection stays inside the training part), predict every test accession (middle ones too) and score the
labelled ones at the family's own threshold. The out-of-fold predictions, per-fold scores, intervals, paired
tests and the winner follow from that, and the final models are fitted on all labelled accessions.

With ``labels.mode: regression`` (``data.regression``) the targets are the raw values of every training accession,
each family is its regressor (:mod:`ms2img.models.regressors`), and each fold is scored by Spearman rho, RMSE and R2
(:data:`ms2img.training.scores.REGRESSION_SCORES`); the pooled out-of-fold predictions get the same scores with
intervals, and the winner is chosen by Spearman's rho with the same rule.

Settings that depend on the cohort's size are checked (``auto`` ones decided) by :func:`resolve_cohort_settings`
before any fit. Every interval is at least as wide as the labelled accessions allow
(:func:`ms2img.training.scores.count_floor`); on a small cohort (:class:`ms2img.training.dataset.Protocol`) so is
every paired difference's, and a family flagged degenerate never wins.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ms2img.errors import ConfigError
from ms2img.models.estimators import make_estimator
from ms2img.models.family import ENSEMBLE, MULTITASK, NETWORKS, SIMPLICITY, FamilyModel, has_network, input_kind
from ms2img.training.dataset import MIDDLE, AssayData, Fold, Protocol, class_summary
from ms2img.training.fold_metrics import predict_labels
from ms2img.training.labels import per_accession_oof
from ms2img.training.scores import (
    BOUNDS,
    LABELS,
    PRIMARY,
    corrected_interval,
    corrected_paired_test,
    count_floor,
    fold_scores,
    pooled_classification,
    pooled_regression,
    regression_scores,
    scores_of,
    select_winner,
    spearman,
    widen,
)

INNER_SPLIT = 0.25  # tune.validation_split auto: this share, or more when a class would get no inner image
OPLSDA_FOLDS = 7  # baselines.oplsda_cv_folds auto: this many, or one per accession when fewer

log = logging.getLogger(__name__)


@dataclass
class CVResult:
    """Out-of-fold predictions and per-fold scores of every family on one assay."""

    assay: str
    oof: pd.DataFrame  # accession, repeat, fold, family, probability, value, normalized, label (regression:
    # accession, repeat, fold, family, prediction, value)
    folds: pd.DataFrame  # family, repeat, fold, <scores_of(mode)>, threshold (classification), n_test, seconds
    test_train_ratio: float
    seconds: dict[str, float] = field(default_factory=dict)
    histories: dict[str, list[dict[str, list[float]]]] = field(default_factory=dict)  # CNN inner curves per fold
    protocol: Protocol | None = None  # intervals floored by its counts; small cohort: degeneracy judged on pooled
    mode: str = "classification"  # labels.mode

    @property
    def small_cohort(self) -> bool:
        return bool(self.protocol and self.protocol.small_cohort)

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(self.folds["family"]))

    @property
    def metric(self) -> str:
        """The score that selects and promotes: AUC, or Spearman's rho in regression."""
        return PRIMARY[self.mode]

    def fold_metric(self, metric: str | None = None) -> dict[str, np.ndarray]:
        """Per family, ``metric`` (default :attr:`metric`) of every fold in (repeat, fold) order."""
        key = metric or self.metric
        return {f: g.sort_values(["repeat", "fold"])[key].to_numpy() for f, g in self.folds.groupby("family")}

    def fold_auc(self) -> dict[str, np.ndarray]:
        return self.fold_metric("auc")

    def summary(self) -> dict[str, Any]:
        """Numbers only: per family mean/SD/interval of each score and the rank correlation (regression: the pooled
        scores with intervals); paired tests on the selecting metric."""
        fams: dict[str, Any] = {}
        for fam, g in self.folds.groupby("family", sort=False):
            scores = [s for s in scores_of(self.mode) if s in g.columns]  # a table from before a score existed
            entry = {s: corrected_interval(g[s].to_numpy(), self.test_train_ratio, bounds=BOUNDS[s]) for s in scores}
            if "precision_top10" in entry and g["precision_top10"].isna().any():  # not a mean over a silent subset
                entry["precision_top10"] = dict.fromkeys(("mean", "sd", "ci_low", "ci_high"), float("nan"))
            if self.protocol is not None:  # five agreeing folds must not claim more than the accessions allow
                p = self.protocol
                entry = {s: widen(e, count_floor(s, e["mean"], p.low, p.high)) for s, e in entry.items()}
            if self.mode == "regression":
                o = per_accession_oof(self.oof[self.oof["family"] == fam])
                entry["pooled"] = pooled_regression(o["value"], o["prediction"])
            else:
                o = per_accession_oof(self.oof[self.oof["family"] == fam])
                entry["spearman"] = spearman(o["probability"], o["value"])
                entry["pooled"] = pooled_classification(o["label"], o["probability"], o["value"])
            entry["seconds"] = round(float(self.seconds.get(fam, 0.0)), 2)
            fams[fam] = entry
        per_fold = self.fold_metric()
        paired = {}
        for i, a in enumerate(self.families):
            for b in self.families[i + 1 :]:
                paired[f"{a} vs {b}"] = corrected_paired_test(
                    per_fold[a],
                    per_fold[b],
                    self.test_train_ratio,
                    cohort=self.cohort,
                    score=self.metric,
                    counts=None if self.protocol is None else (self.protocol.low, self.protocol.high),
                )
        return {"families": fams, "paired": paired}

    @property
    def cohort(self) -> tuple[int, int] | None:
        """``(low, high)`` accessions on a small cohort: paired differences get the floor their scores' floors allow
        (:func:`ms2img.training.scores.paired_floor`); None otherwise."""
        return (self.protocol.low, self.protocol.high) if self.small_cohort else None

    def selection(self, degenerate: Sequence[str] = ()) -> dict[str, Any]:
        """The winner among the families not in ``degenerate`` (see :func:`degenerate_families`)."""
        return select_winner(
            self.fold_metric(), self.test_train_ratio, SIMPLICITY, exclude=degenerate, metric=self.metric,
            cohort=self.cohort,
        )  # fmt: skip


def family_input(data: AssayData, family: str, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model input of ``family`` for the accessions at ``positions`` and, per row, its accession position."""
    if input_kind(family) == "image":
        return data.image_input(positions)
    method = family.split("-", 1)[1]
    return np.log1p(data.feature_input(method, positions)), np.asarray(positions)


def _per_accession(prob: np.ndarray, owner: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Mean probability over the rows (replicate images) of each accession, in ``positions`` order."""
    s = pd.Series(prob).groupby(owner).mean()
    return s.reindex(positions).to_numpy()


def fold_seed(seed: int, fold: Fold) -> int:
    """The seed every family's fit on ``fold`` gets (benchmarks that refit a fold use it to match the CV)."""
    return int(seed) + 100 * fold.repeat + fold.fold


def fit_family(
    data: AssayData,
    family: str,
    params: Mapping[str, Any],
    positions: np.ndarray,
    y_acc: np.ndarray,
    seed: int,
    on_trial_end=None,
    fitted: dict[str, Any] | None = None,
):
    """``family``'s estimator fitted on the accessions at ``positions`` with their labels ``y_acc`` (one per
    accession; replicate images inherit it); in regression its regressor, ``y_acc`` the raw values.

    ``fitted``: the estimators already fitted on these same rows, by family; the image ensemble is built from its
    members there (fitting and adding any that is missing), and a member asked for later is taken from it.

    ``cnn-mt`` learns the companion assays' labels of the same accessions beside ``y_acc``
    (:meth:`AssayData.companion_labels`). With several images per accession (``render.per_replicate``) the inner
    splits and out-of-bag predictions keep each accession's images together (``groups``)."""
    x, owner = family_input(data, family, positions)
    if family == MULTITASK and not data.regression and (companions := data.companion_labels(positions)).shape[1]:
        y_acc = np.column_stack([y_acc, companions])  # no companion assay: the single-assay network
    rows = pd.DataFrame(np.asarray(y_acc), index=positions).reindex(owner).to_numpy()  # replicate images inherit
    y = rows if np.ndim(y_acc) == 2 else rows[:, 0]
    groups = owner if input_kind(family) == "image" and len(np.unique(owner)) < len(owner) else None  # replicates
    fit = {} if groups is None else {"groups": groups}
    if data.regression:
        from ms2img.models.regressors import make_regressor

        if family in (ENSEMBLE, MULTITASK):
            raise ConfigError(f"{family} is a classifier; drop it from train.families with labels.mode: regression")
        return make_regressor(family, params, seed, on_trial_end).fit(x, y, **fit)
    if fitted is None:
        return make_estimator(family, params, seed, on_trial_end).fit(x, y, **fit)
    if family == ENSEMBLE:
        from ms2img.models.ensemble import MEMBERS, ImageEnsembleClassifier

        cnn, forest = (fit_family(data, m, params, positions, y_acc, seed, on_trial_end, fitted) for m in MEMBERS)
        return ImageEnsembleClassifier.from_members(cnn, forest, y)
    if family not in fitted:
        fitted[family] = make_estimator(family, params, seed, on_trial_end).fit(x, y, **fit)
    return fitted[family]


def fold_targets(data: AssayData, fold: Fold) -> dict[str, np.ndarray]:
    """What one fold trains on and is scored against: ``train`` positions and their targets ``y_train`` (labels
    from the training part's own scaling, middle band dropped; regression: every training accession's raw value),
    and per test accession ``normalized`` and ``label`` (classification only)."""
    if data.regression:
        return {"train": fold.train, "y_train": data.values[fold.train]}
    scaling = data.scaling(fold.train)
    y_train = scaling.labels(data.values[fold.train])
    keep = y_train != MIDDLE
    return {
        "train": fold.train[keep],
        "y_train": y_train[keep],
        "label": scaling.labels(data.values[fold.test]),
        "normalized": scaling.normalize(data.values[fold.test]),
    }


def score_fold(
    data: AssayData, model: Any, family: str, fold: Fold, t: Mapping[str, np.ndarray]
) -> tuple[dict[str, float], dict[str, Any], dict[str, np.ndarray]]:
    """``(scores, fold-row extras, oof columns)`` of a fitted ``model`` on ``fold``'s test accessions (replicate
    images averaged per accession)."""
    x_test, owner = family_input(data, family, fold.test)
    if data.regression:
        pred = _per_accession(model.predict(x_test), owner, fold.test)
        return regression_scores(data.values[fold.test], pred), {"n_test": len(fold.test)}, {"prediction": pred}
    prob = _per_accession(model.predict_proba(x_test)[:, 1], owner, fold.test)
    scored = t["label"] != MIDDLE
    scores = fold_scores(t["label"][scored], prob[scored], model.threshold_)
    extra = {"threshold": float(model.threshold_), "n_test": int(scored.sum())}
    return scores, extra, {"probability": prob, "normalized": t["normalized"], "label": t["label"]}


def cross_validate(
    data: AssayData,
    families: Sequence[str],
    params: Mapping[str, Any],
    *,
    seed: int = 42,
    on_fold: Callable[[str, Fold, dict[str, float]], None] | None = None,
) -> CVResult:
    """Score every family on ``data.folds`` (the same folds for all); see the module docstring."""
    oof_rows, fold_rows, histories = [], [], {}
    seconds: dict[str, float] = dict.fromkeys(families, 0.0)
    n_train = np.mean([len(f.train) for f in data.folds])
    n_test = np.mean([len(f.test) for f in data.folds])
    total = len(data.folds) * len(families)
    bar = tqdm(total=total, desc=f"{data.assay} CV", unit="fit", disable=None)
    t0, done = time.perf_counter(), 0
    metric = PRIMARY[data.mode]
    for fold in data.folds:
        t = fold_targets(data, fold)
        fitted: dict[str, Any] = {}  # this fold's estimators: the ensemble reuses its members' fits
        fit_seconds: dict[str, float] = {}
        for family in families:
            for member in _members(family):  # an ensemble's members are fitted (and timed) as families of their own
                if member not in fit_seconds:
                    started = time.perf_counter()
                    fit_family(data, member, params, t["train"], t["y_train"], fold_seed(seed, fold), fitted=fitted)
                    fit_seconds[member] = time.perf_counter() - started
            # fits done before this one that it reuses: the ensemble's members, or this family fitted as a member
            earlier = sum(fit_seconds.get(m, 0.0) for m in (*_members(family), family))
            started = time.perf_counter()
            model = fit_family(data, family, params, t["train"], t["y_train"], fold_seed(seed, fold), fitted=fitted)
            scores, extra, predicted = score_fold(data, model, family, fold, t)
            took = time.perf_counter() - started + earlier
            fit_seconds.setdefault(family, took)
            seconds[family] += took
            if getattr(model, "history_", None):  # inner-split curves: call them inner, never "validation"
                histories.setdefault(family, []).append(
                    {k.replace("val_", "inner_val_"): v for k, v in model.history_.items()}
                )
            row = {"family": family, "repeat": fold.repeat, "fold": fold.fold, **scores, **extra}
            fold_rows.append({**row, "seconds": round(took, 2)})
            oof_rows.append(
                pd.DataFrame(
                    {
                        "accession": data.accessions[fold.test],
                        "repeat": fold.repeat,
                        "fold": fold.fold,
                        "family": family,
                        **{k: v for k, v in predicted.items() if k not in ("normalized", "label")},
                        "value": data.values[fold.test],
                        **{k: v for k, v in predicted.items() if k in ("normalized", "label")},
                    }
                )
            )
            name = LABELS.get(metric, metric)
            bar.set_postfix_str(f"r{fold.repeat + 1} f{fold.fold} {family} {name} {scores[metric]:.2f}", refresh=False)
            bar.update(1)
            done += 1
            left = (time.perf_counter() - t0) / done * (total - done)
            log.info(
                "%s repeat %d fold %d/%d %-10s %s %.3f (%.0f s; fit %d/%d, ~%.0f s left)",
                data.assay,
                fold.repeat + 1,
                fold.fold,
                len({f.fold for f in data.folds}),
                family,
                name,
                scores[metric],
                took,
                done,
                total,
                left,
            )
            if on_fold is not None:
                on_fold(family, fold, scores)
            del model
        fitted.clear()
        if any(has_network(f) for f in families):
            _free_backend()
    bar.close()
    return CVResult(
        assay=data.assay,
        oof=pd.concat(oof_rows, ignore_index=True),
        folds=pd.DataFrame(fold_rows),
        test_train_ratio=float(n_test / n_train),
        seconds=seconds,
        histories=histories,
        protocol=data.protocol,
        mode=data.mode,
    )


def degenerate_families(result: CVResult) -> dict[str, str]:
    """Families that predict one class, with a loud note each: F1 = 0 or balanced accuracy 0.5 in most folds;
    on a small cohort (a fold tests two or three accessions) in most repeats, judged on the repeat's pooled
    out-of-fold predictions at each fold's threshold."""
    notes = {}
    if result.mode == "regression":  # a constant prediction has no rank: rho undefined in most folds
        for fam, g in result.folds.groupby("family", sort=False):
            flat = g["spearman"].isna().mean()
            if flat > 0.5:
                notes[fam] = f"{result.assay} {fam}: constant predictions in {flat:.0%} of folds (degenerate)"
    elif result.small_cohort:
        thresholds = result.folds.set_index(["family", "repeat", "fold"])["threshold"]
        oof = result.oof[result.oof["label"] != MIDDLE]
        for fam, g in oof.groupby("family", sort=False):
            one_class = []
            for _, r in g.groupby("repeat"):
                thr = thresholds.reindex(pd.MultiIndex.from_arrays([[fam] * len(r), r["repeat"], r["fold"]]))
                scores = fold_scores(r["label"].to_numpy(), r["probability"].to_numpy(), thr.to_numpy())
                pred = predict_labels(r["probability"].to_numpy(), thr.to_numpy()) == 1
                one_class.append(pred.all() or not pred.any() or scores["balanced_accuracy"] == 0.5)
            share = float(np.mean(one_class))
            if share > 0.5:
                notes[fam] = (
                    f"{result.assay} {fam}: predicts a single class in {share:.0%} of repeats (pooled out-of-fold "
                    "predictions; degenerate, never chosen)"
                )
    else:
        for fam, g in result.folds.groupby("family", sort=False):
            one_class = ((g["f1"] == 0) | (g["balanced_accuracy"] == 0.5)).mean()
            if one_class > 0.5:
                notes[fam] = f"{result.assay} {fam}: predicts a single class in {one_class:.0%} of folds (degenerate)"
    for n in notes.values():
        log.warning(n)
    return notes


def degenerate_warnings(result: CVResult) -> list[str]:
    """Loud notes for families that predict one class (see :func:`degenerate_families`)."""
    return list(degenerate_families(result).values())


def _inner_split_ok(n_low: int, n_high: int, fraction: float) -> bool:
    """Can a stratified ``fraction`` inner split of ``n_low + n_high`` images hold both classes on each side?"""
    n = n_low + n_high
    n_val = math.ceil(fraction * n)
    return min(n_low, n_high) >= 2 and n_val >= 2 and n - n_val >= 2


def resolve_cohort_settings(data: AssayData, params: Mapping[str, Any], families: Sequence[str]) -> dict[str, Any]:
    """``params`` with the cohort-size settings checked and ``auto`` ones decided, before any training: the CNN's
    inner split (``tune.validation_split``) on the smallest outer training part, and the OPLS-DA folds
    (``baselines.oplsda_cv_folds``) on the labelled accessions. A setting that cannot work is a ConfigError
    naming it and the value that would."""
    out = copy.deepcopy(dict(params))
    if data.regression:
        return _resolve_regression_settings(data, out, families)
    if any(has_network(f) for f in families):
        tune = dict(out.get("tune") or {})
        parts = []  # (low, high) accessions (inner splits are grouped) of each training part and the final fit
        for fold in [*data.folds, Fold(-1, 0, np.arange(len(data.values)), np.empty(0, int))]:
            y = data.scaling(fold.train).labels(data.values[fold.train])
            parts.append((int((y == 0).sum()), int((y == 1).sum())))
        low, high = min(parts, key=lambda c: c[0] + c[1])
        fewest = min(min(c) for c in parts)
        if fewest < 2:
            networks = ", ".join(f for f in families if has_network(f))
            raise ConfigError(
                f"tune.validation_split: a training part of assay {data.assay} holds {fewest} accession of one class; "
                "the CNN's inner split needs 2 per class (an accession's replicate images stay on one side): drop "
                f"the families with a network ({networks}) from train.families"
            )
        value = tune.get("validation_split", INNER_SPLIT)
        if str(value).strip().lower() == "auto":
            n = low + high
            value = (
                INNER_SPLIT if all(_inner_split_ok(a, b, INNER_SPLIT) for a, b in parts) else math.ceil(200 / n) / 100
            )
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"tune.validation_split must be a fraction in (0, 1) or auto, got {value!r}") from None
        # cross-fitted members (cnn.cross_fit) split into folds, which the 2-per-class check above covers; the single
        # inner split is checked only where it is used
        single_split = not bool((out.get("cnn") or {}).get("cross_fit", False))
        bad = [(a, b) for a, b in parts if single_split and not _inner_split_ok(a, b, value)]
        if not 0 < value < 1 or bad:
            a, b = bad[0] if bad else (low, high)
            need = math.ceil(200 / (a + b)) / 100
            raise ConfigError(
                f"tune.validation_split {value:g}: the smallest training part of assay {data.assay} has {a + b} "
                f"accessions ({a} low, {b} high), and the CNN's inner split needs both classes on each side; set "
                f"tune.validation_split: {need:g} (or auto)"
            )
        tune["validation_split"] = value
        out["tune"] = tune
    base = dict(out.get("baselines") or {})
    if data.features and "oplsda_cv_folds" in base:
        n = int((data.scaling().labels(data.values) != MIDDLE).sum())
        k = base["oplsda_cv_folds"]
        k = min(OPLSDA_FOLDS, n) if str(k).strip().lower() == "auto" else k
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise ConfigError(f"baselines.oplsda_cv_folds must be a whole number or auto, got {k!r}") from None
        if not 2 <= k <= n:
            raise ConfigError(
                f"baselines.oplsda_cv_folds {k}: OPLS-DA of assay {data.assay} runs on {n} labelled accessions; set "
                f"it between 2 and {n} (or auto)"
            )
        base["oplsda_cv_folds"] = k
        out["baselines"] = base
    return out


def _resolve_regression_settings(data: AssayData, out: dict[str, Any], families: Sequence[str]) -> dict[str, Any]:
    """:func:`resolve_cohort_settings` in regression: the CNN's inner split holds at least 2 images on each side of
    the smallest training part (value-stratified, no classes); OPLS-DA does not run (discriminant analysis)."""
    if not any(has_network(f) for f in families):
        return out
    tune = dict(out.get("tune") or {})
    n = min(int(sum(len(data.image_rows[p]) for p in fold.train)) for fold in data.folds)
    value = tune.get("validation_split", INNER_SPLIT)
    if str(value).strip().lower() == "auto":
        value = max(INNER_SPLIT, math.ceil(200 / n) / 100)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"tune.validation_split must be a fraction in (0, 1) or auto, got {value!r}") from None
    n_val = math.ceil(value * n)
    if not 0 < value < 1 or n_val < 2 or n - n_val < 2:
        raise ConfigError(
            f"tune.validation_split {value:g}: the smallest training part of assay {data.assay} has {n} images and "
            f"the CNN's inner split needs 2 on each side; set tune.validation_split: {math.ceil(200 / n) / 100:g}"
        )
    tune["validation_split"] = value
    out["tune"] = tune
    return out


def fit_final(
    data: AssayData,
    family: str,
    params: Mapping[str, Any],
    *,
    seed: int,
    summary: Mapping[str, Any],
    features: pd.DataFrame | None = None,
    extra: Mapping[str, Any] | None = None,
    fitted: dict[str, Any] | None = None,
) -> FamilyModel:
    """The served model of ``family``: fitted on every labelled accession, with the scaling fitted on all (regression:
    on every accession's raw value; the card says ``mode: regression`` and the training values' range). ``fitted``:
    as in :func:`fit_family`, shared by the final fits of one assay (the ensemble reuses its members')."""
    started = time.perf_counter()
    if data.regression:
        return _fit_final_regressor(data, family, params, seed=seed, summary=summary, features=features, extra=extra)
    scaling = data.scaling()
    y = scaling.labels(data.values)
    keep = y != MIDDLE
    model = fit_family(data, family, params, np.flatnonzero(keep), y[keep], seed, fitted=fitted)
    estimator, hp = _saved_form(family, model)
    card = _card(
        data, summary["families"][family], hp, started, extra,
        threshold=float(model.threshold_),
        label_scaling=scaling.to_dict(),
        class_counts=class_summary(y),
        n_accessions=int(keep.sum()),
        spearman=summary["families"][family]["spearman"],
    )  # fmt: skip
    return FamilyModel(family, card, estimator, accessions=data.accessions[keep].tolist(), features=features)


def _fit_final_regressor(
    data: AssayData,
    family: str,
    params: Mapping[str, Any],
    *,
    seed: int,
    summary: Mapping[str, Any],
    features: pd.DataFrame | None,
    extra: Mapping[str, Any] | None,
) -> FamilyModel:
    started = time.perf_counter()
    everyone = np.arange(len(data.values))
    model = fit_family(data, family, params, everyone, data.values, seed)
    estimator, hp = _saved_form(family, model)
    card = _card(
        data, summary["families"][family], hp, started, extra,
        mode="regression",
        value_range={"min": float(data.values.min()), "max": float(data.values.max())},
        n_accessions=len(everyone),
    )  # fmt: skip
    return FamilyModel(family, card, estimator, accessions=data.accessions.tolist(), features=features)


def _card(
    data: AssayData,
    entry: Mapping[str, Any],
    hp: Any,
    started: float,
    extra: Mapping[str, Any] | None,
    **specific: Any,
) -> dict[str, Any]:
    """What every final model's card holds, classes or values: the data, its protocol, the CV scores of ``entry``
    (the family's summary), the hyperparameters and the fit's seconds; then the mode's ``specific`` keys and
    ``extra``."""
    card = {
        "assay": data.assay,
        "render": data.images.config,
        "size": data.size,
        "small_cohort": bool(data.protocol and data.protocol.small_cohort),
        "protocol": data.protocol.describe() if data.protocol else None,
        "metrics": {s: entry[s] for s in scores_of(data.mode)},
        "pooled": entry.get("pooled"),
        "hyperparameters": hp,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return {**card, **specific, **dict(extra or {})}


def _members(family: str) -> tuple[str, ...]:
    """The families an ensemble family is built from (none for the others)."""
    from ms2img.models.ensemble import MEMBERS

    return MEMBERS if family == ENSEMBLE else ()


def _saved_form(family: str, model: Any) -> tuple[Any, Any]:
    """(what :class:`FamilyModel` stores, the card's hyperparameters) of a fitted estimator of ``family``."""
    if family == ENSEMBLE:
        saved = {"networks": model.cnn_.members_, "forest": model.forest_.model_, "references": model.references_}
        return saved, model.best_params_
    if family in NETWORKS:
        return model.members_, model.best_hp_
    return model.model_, model.best_params_


def _free_backend() -> None:
    """Release Keras' global graph state between folds (memory grows fold after fold otherwise)."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()
