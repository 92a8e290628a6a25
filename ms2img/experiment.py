"""The one cross-validation loop: every family on the same repeated folds, labels scaled inside each fold.

Per fold: fit the label scaling on the training accessions, drop their middle band, fit each family (its own
selection stays inside the training part), predict every test accession (middle ones too) and score the
labelled ones at the family's own threshold. The out-of-fold predictions, per-fold scores, intervals, paired
tests and the winner follow from that, and the final models are fitted on all labelled accessions.

Settings that depend on the cohort's size are checked (``auto`` ones decided) by :func:`resolve_cohort_settings`
before any fit. On a small cohort (:class:`ms2img.dataset.Protocol`) intervals are at least as wide as the
accessions allow (:func:`ms2img.stats.small_cohort_interval`), and a family flagged degenerate never wins.
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

from ms2img.dataset import MIDDLE, AssayData, Fold, Protocol, class_summary
from ms2img.errors import ConfigError
from ms2img.models.estimators import make_estimator
from ms2img.models.family import SIMPLICITY, FamilyModel, input_kind
from ms2img.stats import (
    BOUNDS,
    SCORES,
    corrected_interval,
    corrected_paired_test,
    fold_scores,
    select_winner,
    small_cohort_interval,
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
    oof: pd.DataFrame  # accession, repeat, fold, family, probability, value, normalized, label
    folds: pd.DataFrame  # family, repeat, fold, auc, balanced_accuracy, mcc, f1, threshold, n_test, seconds
    test_train_ratio: float
    seconds: dict[str, float] = field(default_factory=dict)
    histories: dict[str, list[dict[str, list[float]]]] = field(default_factory=dict)  # CNN inner curves per fold
    protocol: Protocol | None = None  # small cohort: intervals floored, degeneracy judged on pooled predictions

    @property
    def small_cohort(self) -> bool:
        return bool(self.protocol and self.protocol.small_cohort)

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(self.folds["family"]))

    def fold_auc(self) -> dict[str, np.ndarray]:
        return {f: g.sort_values(["repeat", "fold"])["auc"].to_numpy() for f, g in self.folds.groupby("family")}

    def summary(self) -> dict[str, Any]:
        """Numbers only: per family mean/SD/interval of each score and the rank correlation; paired tests."""
        fams: dict[str, Any] = {}
        for fam, g in self.folds.groupby("family", sort=False):
            entry = {s: corrected_interval(g[s].to_numpy(), self.test_train_ratio, bounds=BOUNDS[s]) for s in SCORES}
            if self.small_cohort:
                p = self.protocol
                entry = {s: widen(e, small_cohort_interval(s, e["mean"], p.low, p.high)) for s, e in entry.items()}
            o = self.oof[self.oof["family"] == fam].groupby("accession")[["probability", "value"]].mean()
            entry["spearman"] = spearman(o["probability"], o["value"])
            entry["seconds"] = round(float(self.seconds.get(fam, 0.0)), 2)
            fams[fam] = entry
        auc = self.fold_auc()
        paired = {}
        for i, a in enumerate(self.families):
            for b in self.families[i + 1 :]:
                paired[f"{a} vs {b}"] = corrected_paired_test(auc[a], auc[b], self.test_train_ratio)
        return {"families": fams, "paired": paired}

    def selection(self, degenerate: Sequence[str] = ()) -> dict[str, Any]:
        """The winner among the families not in ``degenerate`` (see :func:`degenerate_families`)."""
        return select_winner(self.fold_auc(), self.test_train_ratio, SIMPLICITY, exclude=degenerate)


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


def fit_family(
    data: AssayData,
    family: str,
    params: Mapping[str, Any],
    positions: np.ndarray,
    y_acc: np.ndarray,
    seed: int,
    on_trial_end=None,
):
    """``family``'s estimator fitted on the accessions at ``positions`` with their labels ``y_acc`` (one per
    accession; replicate images inherit it)."""
    x, owner = family_input(data, family, positions)
    y = pd.Series(y_acc, index=positions).reindex(owner).to_numpy()
    return make_estimator(family, params, seed, on_trial_end).fit(x, y)


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
    for fold in data.folds:
        scaling = data.scaling(fold.train)
        y_train = scaling.labels(data.values[fold.train])
        keep = y_train != MIDDLE
        train_pos, y_pos = fold.train[keep], y_train[keep]
        y_test = scaling.labels(data.values[fold.test])
        normalized = scaling.normalize(data.values[fold.test])
        scored = y_test != MIDDLE
        for family in families:
            started = time.perf_counter()
            fold_seed = seed + 100 * fold.repeat + fold.fold
            model = fit_family(data, family, params, train_pos, y_pos, fold_seed)
            x_test, owner = family_input(data, family, fold.test)
            prob = _per_accession(model.predict_proba(x_test)[:, 1], owner, fold.test)
            took = time.perf_counter() - started
            seconds[family] += took
            if getattr(model, "history_", None):  # inner-split curves: call them inner, never "validation"
                histories.setdefault(family, []).append(
                    {k.replace("val_", "inner_val_"): v for k, v in model.history_.items()}
                )
            scores = fold_scores(y_test[scored], prob[scored], model.threshold_)
            fold_rows.append(
                {
                    "family": family,
                    "repeat": fold.repeat,
                    "fold": fold.fold,
                    **scores,
                    "threshold": float(model.threshold_),
                    "n_test": int(scored.sum()),
                    "seconds": round(took, 2),
                }
            )
            oof_rows.append(
                pd.DataFrame(
                    {
                        "accession": data.accessions[fold.test],
                        "repeat": fold.repeat,
                        "fold": fold.fold,
                        "family": family,
                        "probability": prob,
                        "value": data.values[fold.test],
                        "normalized": normalized,
                        "label": y_test,
                    }
                )
            )
            bar.set_postfix_str(f"r{fold.repeat + 1} f{fold.fold} {family} AUC {scores['auc']:.2f}", refresh=False)
            bar.update(1)
            done += 1
            left = (time.perf_counter() - t0) / done * (total - done)
            log.info(
                "%s repeat %d fold %d/%d %-10s AUC %.3f (%.0f s; fit %d/%d, ~%.0f s left)",
                data.assay,
                fold.repeat + 1,
                fold.fold,
                len({f.fold for f in data.folds}),
                family,
                scores["auc"],
                took,
                done,
                total,
                left,
            )
            if on_fold is not None:
                on_fold(family, fold, scores)
            del model
            _free_backend(family)
    bar.close()
    return CVResult(
        assay=data.assay,
        oof=pd.concat(oof_rows, ignore_index=True),
        folds=pd.DataFrame(fold_rows),
        test_train_ratio=float(n_test / n_train),
        seconds=seconds,
        histories=histories,
        protocol=data.protocol,
    )


def degenerate_families(result: CVResult) -> dict[str, str]:
    """Families that predict one class, with a loud note each: F1 = 0 or balanced accuracy 0.5 in most folds;
    on a small cohort (a fold tests two or three accessions) in most repeats, judged on the repeat's pooled
    out-of-fold predictions at each fold's threshold."""
    notes = {}
    if result.small_cohort:
        thresholds = result.folds.set_index(["family", "repeat", "fold"])["threshold"]
        oof = result.oof[result.oof["label"] != MIDDLE]
        for fam, g in oof.groupby("family", sort=False):
            one_class = []
            for _, r in g.groupby("repeat"):
                thr = thresholds.reindex(pd.MultiIndex.from_arrays([[fam] * len(r), r["repeat"], r["fold"]]))
                scores = fold_scores(r["label"].to_numpy(), r["probability"].to_numpy(), thr.to_numpy())
                pred = r["probability"].to_numpy() > thr.to_numpy()
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
    if "cnn" in families:
        tune = dict(out.get("tune") or {})
        parts = []  # (low images, high images) of each outer training part and of the final fit
        for fold in [*data.folds, Fold(-1, 0, np.arange(len(data.values)), np.empty(0, int))]:
            y = data.scaling(fold.train).labels(data.values[fold.train])
            images = np.array([len(data.image_rows[p]) for p in fold.train])
            parts.append((int(images[y == 0].sum()), int(images[y == 1].sum())))
        low, high = min(parts, key=lambda c: c[0] + c[1])
        fewest = min(min(c) for c in parts)
        if fewest < 2:
            raise ConfigError(
                f"tune.validation_split: a training part of assay {data.assay} holds {fewest} image of one class; the "
                "CNN's inner split needs 2 per class: render.per_replicate: true (one image per replicate) gives more, "
                "or drop cnn from train.families"
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
        bad = [(a, b) for a, b in parts if not _inner_split_ok(a, b, value)]
        if not 0 < value < 1 or bad:
            a, b = bad[0] if bad else (low, high)
            need = math.ceil(200 / (a + b)) / 100
            raise ConfigError(
                f"tune.validation_split {value:g}: the smallest training part of assay {data.assay} has {a + b} images "
                f"({a} low, {b} high), and the CNN's inner split needs both classes on each side; set "
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


def fit_final(
    data: AssayData,
    family: str,
    params: Mapping[str, Any],
    *,
    seed: int,
    summary: Mapping[str, Any],
    features: pd.DataFrame | None = None,
    extra: Mapping[str, Any] | None = None,
) -> FamilyModel:
    """The served model of ``family``: fitted on every labelled accession, with the scaling fitted on all."""
    started = time.perf_counter()
    scaling = data.scaling()
    y = scaling.labels(data.values)
    keep = y != MIDDLE
    model = fit_family(data, family, params, np.flatnonzero(keep), y[keep], seed)
    estimator = model.members_ if family == "cnn" else model.model_
    hp = model.best_hp_ if family == "cnn" else model.best_params_
    card = {
        "assay": data.assay,
        "render": data.images.config,
        "size": data.size,
        "threshold": float(model.threshold_),
        "label_scaling": scaling.to_dict(),
        "class_counts": class_summary(y),
        "n_accessions": int(keep.sum()),
        "small_cohort": bool(data.protocol and data.protocol.small_cohort),
        "protocol": data.protocol.describe() if data.protocol else None,
        "metrics": {s: summary["families"][family][s] for s in SCORES},
        "spearman": summary["families"][family]["spearman"],
        "hyperparameters": hp,
        "seconds": round(time.perf_counter() - started, 2),
        **dict(extra or {}),
    }
    out = FamilyModel(family, card, estimator, accessions=data.accessions[keep].tolist(), features=features)
    _free_backend(family, keep_models=True)
    return out


def _free_backend(family: str, keep_models: bool = False) -> None:
    """Release Keras' global graph state between folds (memory grows fold after fold otherwise)."""
    if family != "cnn" or keep_models:
        return
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()
