"""What one assay's models learn from: accessions, raw assay values, images and feature tables, and the folds.

Every family is scored on the same repeated grouped stratified folds over accessions. The folds and repeats
(``cv.folds`` / ``cv.repeats``, numbers or ``auto``) are checked against the class counts before any training;
below :data:`SMALL_COHORT_PER_CLASS` labelled accessions per class the run is a "small cohort" and says so.
Labels are not fixed up front: each fold's min-max scaling is fitted on its training accessions only
(:class:`LabelScaling`) and applied to its test accessions, so nothing about a test accession leaks into its own
label, and the scaling that was fitted on all accessions travels with the final model.

With ``labels.mode: regression`` the target is the raw assay value itself (no scaling, no cut-offs, no middle band
left out: every accession with a value trains) and the same fold builder stratifies by value-quantile bins instead
of by class, so every test fold spans the range of activity.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.errors import ConfigError
from ms2img.render import ImageSet
from ms2img.training.labels import DEFAULT_HIGH, DEFAULT_LOW, MIDDLE, MODES, LabelScaling, label_mode, read_assays

log = logging.getLogger(__name__)
SMALL_COHORT_PER_CLASS = 20  # fewer labelled accessions in a class: a "small cohort" (said in every record)
SMALL_COHORT_MIN_FOLDS = 10  # cv.repeats auto on a small cohort: enough repeats for this many held-out folds
AUTO_FOLDS = 5  # cv.folds auto: this many, or the smallest class when it has fewer accessions
MIN_TEST = 3  # regression: accessions per test fold at least (a rank correlation of fewer says nothing)
VALUE_BINS = 5  # regression: value-quantile strata of the folds, at most


@dataclass(frozen=True)
class Protocol:
    """The cross-validation that runs on one assay, decided from its class counts before any training."""

    folds: int
    repeats: int
    low: int  # labelled accessions per class (all-data scaling); regression: below / above the median value
    high: int
    small_cohort: bool
    regression: bool = False

    def describe(self) -> str:
        """One line for the train printout, metrics and model card."""
        text = f"{self.folds}-fold CV x {self.repeats} repeat{'s' if self.repeats != 1 else ''}"
        if self.small_cohort and self.regression:
            text = (
                f"small cohort: {self.low + self.high} accessions with a value (below {2 * SMALL_COHORT_PER_CLASS}): "
                f"{text}; intervals are wide, scores vary from run to run"
            )
        elif self.small_cohort:
            text = (
                f"small cohort: {self.low} low / {self.high} high labelled accessions (below "
                f"{SMALL_COHORT_PER_CLASS} per class): {text}; intervals are wide, scores vary from run to run"
            )
        return text


def _setting_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool):  # YAML's yes/true is a bool, and int(True) is 1
        raise ConfigError(f"{name} must be a whole number or auto, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a whole number or auto, got {value!r}") from None
    if number != value and not (isinstance(value, str) and value.strip().isdigit()):
        raise ConfigError(f"{name} must be a whole number or auto, got {value!r}")
    if number < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {number}")
    return number


def cv_seed(params: Mapping[str, Any]) -> int:
    """``cv.seed``, checked by the params schema's seed rule (:func:`ms2img.params.value_problem`): the folds' and
    every fit's seed, also for params given as a dict rather than read by ``load_params``."""
    from ms2img.params import value_problem

    value = (params.get("cv") or {}).get("seed")
    problem = value_problem("seed", value)
    if problem:
        raise ConfigError(f"cv.seed {problem}, got {value!r}")
    return int(value)


def cohort_protocol(assay: str, counts: Mapping[str, int], folds: Any = AUTO_FOLDS, repeats: Any = 1) -> Protocol:
    """``cv.folds`` / ``cv.repeats`` (numbers or ``auto``) checked against the class counts, naming the setting.

    ``auto`` folds: :data:`AUTO_FOLDS`, or the smallest class when smaller (every test fold then holds each class);
    ``auto`` repeats: 1, or on a small cohort enough repeats for :data:`SMALL_COHORT_MIN_FOLDS` held-out folds.
    """
    low, high = int(counts["low"]), int(counts["high"])
    smallest = min(low, high)
    if smallest < 2:
        raise ConfigError(
            f"assay {assay}: {low} low and {high} high labelled accessions; cross-validation needs at least 2 per "
            "class (labels.low / labels.high decide the classes)"
        )
    k = min(AUTO_FOLDS, smallest) if str(folds).strip().lower() == "auto" else _setting_int(folds, "cv.folds", 2)
    if k > smallest:
        raise ConfigError(
            f"cv.folds {k}: assay {assay} has {low} low and {high} high labelled accessions, so {k} folds cannot "
            f"each hold both classes; set cv.folds: {smallest} (or auto)"
        )
    small = smallest < SMALL_COHORT_PER_CLASS
    if str(repeats).strip().lower() == "auto":
        r = -(-SMALL_COHORT_MIN_FOLDS // k) if small else 1
    else:
        r = _setting_int(repeats, "cv.repeats", 1)
    return Protocol(folds=k, repeats=r, low=low, high=high, small_cohort=small)


def regression_protocol(assay: str, n: int, folds: Any = AUTO_FOLDS, repeats: Any = 1) -> Protocol:
    """:func:`cohort_protocol` for ``labels.mode: regression``: ``n`` accessions with a value, every test fold
    holding at least :data:`MIN_TEST` of them; a small cohort below ``2 x`` :data:`SMALL_COHORT_PER_CLASS`."""
    most = n // MIN_TEST
    if most < 2:
        raise ConfigError(
            f"assay {assay}: {n} accessions with a value; regression cross-validation needs at least {2 * MIN_TEST}"
        )
    k = min(AUTO_FOLDS, most) if str(folds).strip().lower() == "auto" else _setting_int(folds, "cv.folds", 2)
    if k > most:
        raise ConfigError(
            f"cv.folds {k}: assay {assay} has {n} accessions with a value, so {k} folds cannot each test "
            f"{MIN_TEST}; set cv.folds: {most} (or auto)"
        )
    small = n < 2 * SMALL_COHORT_PER_CLASS
    if str(repeats).strip().lower() == "auto":
        r = -(-SMALL_COHORT_MIN_FOLDS // k) if small else 1
    else:
        r = _setting_int(repeats, "cv.repeats", 1)
    return Protocol(folds=k, repeats=r, low=n // 2, high=n - n // 2, small_cohort=small, regression=True)


@dataclass
class Fold:
    """One split of one repeat, as accession positions."""

    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


@dataclass
class AssayData:
    """One assay's accessions (with a value and an image), their inputs, and the shared folds."""

    assay: str
    accessions: np.ndarray  # (n,) str, one per accession
    values: np.ndarray  # (n,) raw assay values
    images: ImageSet  # all images (one per accession, or per replicate)
    image_rows: list[np.ndarray]  # image rows of each accession
    features: dict[str, pd.DataFrame] = field(default_factory=dict)  # method -> accessions x features (raw)
    folds: list[Fold] = field(default_factory=list)
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH
    protocol: Protocol | None = None  # folds x repeats that made ``folds``; says "small cohort" when it is one
    mode: str = MODES[0]  # labels.mode: classification (low/high from cut-offs) or regression (the raw value)
    companions: pd.DataFrame | None = None  # accessions x the cohort's other assays, raw values (NaN: not measured)

    @property
    def size(self) -> str:
        return self.images.size

    @property
    def regression(self) -> bool:
        return self.mode == "regression"

    def scaling(self, positions: np.ndarray | None = None) -> LabelScaling:
        v = self.values if positions is None else self.values[positions]
        return LabelScaling.fit(v, self.low, self.high)

    def image_input(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Images of the accessions at ``positions`` and, per image, the position it belongs to."""
        rows = [self.image_rows[p] for p in positions]
        owner = np.repeat(np.asarray(positions), [len(r) for r in rows])
        return self.images.images[np.concatenate(rows)], owner

    def feature_input(self, method: str, positions: np.ndarray) -> np.ndarray:
        return self.features[method].to_numpy(dtype=np.float32)[positions]

    def companion_labels(self, positions: np.ndarray) -> np.ndarray:
        """The other assays' labels of the accessions at ``positions``, ``(n, assays)``: each assay min-max scaled on
        these accessions' own values with this assay's cut-offs, as its own training would; NaN where an assay was
        not measured, in its middle band, or cannot be scaled here (fewer than 2 distinct values)."""
        if self.companions is None or self.companions.shape[1] == 0:
            return np.zeros((len(positions), 0))
        out = np.full((len(positions), self.companions.shape[1]), np.nan)
        for j, values in enumerate(self.companions.to_numpy(dtype=float)[positions].T):
            known = np.isfinite(values)
            if len(np.unique(values[known])) < 2:
                continue
            labels = LabelScaling.fit(values[known], self.low, self.high).labels(values[known]).astype(float)
            labels[labels == MIDDLE] = np.nan
            out[np.flatnonzero(known), j] = labels
        return out


def class_summary(labels: np.ndarray) -> dict[str, int]:
    labels = np.asarray(labels)
    return {"low": int((labels == 0).sum()), "high": int((labels == 1).sum()), "middle": int((labels == MIDDLE).sum())}


def value_strata(values: np.ndarray, n_splits: int) -> np.ndarray:
    """Equal-count value-quantile bins (at most :data:`VALUE_BINS`, each with at least ``n_splits`` accessions, ties
    broken by position): the regression folds' strata, so every test fold spans the range of activity."""
    n = len(values)
    bins = max(1, min(VALUE_BINS, n // max(int(n_splits), 1)))
    ranks = np.argsort(np.argsort(np.asarray(values, dtype=float), kind="stable"), kind="stable")
    return (ranks * bins // n).astype(int)


def repeated_folds(
    values: np.ndarray,
    n_splits: int,
    repeats: int,
    seed: int,
    low: float = DEFAULT_LOW,
    high: float = DEFAULT_HIGH,
    mode: str = MODES[0],
) -> list[Fold]:
    """``repeats`` x ``n_splits`` stratified folds over accessions (stratified by the all-data class, so every
    test fold holds both classes; the labels themselves are refitted per fold). Regression: stratified by
    :func:`value_strata` instead."""
    from sklearn.model_selection import StratifiedKFold

    if mode == "regression":
        strata = value_strata(values, n_splits)
    else:
        scaling = LabelScaling.fit(values, low, high)
        counts = class_summary(scaling.labels(values))
        strata = (scaling.normalize(values) > 0.5).astype(int)  # two strata: the middle joins its nearer side
    if mode != "regression" and min(counts["low"], counts["high"]) < n_splits:
        raise ConfigError(
            f"{n_splits}-fold cross-validation needs at least {n_splits} accessions per class; class counts are "
            f"{counts}; lower cv.folds or widen labels.low/labels.high"
        )
    out = []
    for r in range(int(repeats)):
        splitter = StratifiedKFold(n_splits=int(n_splits), shuffle=True, random_state=int(seed) + r)
        for k, (train, test) in enumerate(splitter.split(np.zeros(len(values)), strata), start=1):
            out.append(Fold(r, k, np.sort(train), np.sort(test)))
    return out


def load_assay_data(
    assay: str,
    images_path: str | Path,
    assays_csv: str | Path,
    *,
    features_dir: str | Path | None = None,
    methods: Sequence[str] = (),
    low: float = DEFAULT_LOW,
    high: float = DEFAULT_HIGH,
    n_splits: int | str = 5,
    repeats: int | str = 1,
    seed: int = 42,
    mode: str = MODES[0],
) -> AssayData:
    """Everything one assay's models need, checked before any training: clear errors name the assay and counts."""
    assays = read_assays(assays_csv)
    if assay not in assays.columns:
        raise ConfigError(f"unknown assay '{assay}'; {assays_csv} has: {', '.join(c for c in assays.columns[1:])}")
    values = pd.to_numeric(assays[assay], errors="coerce")
    table = pd.Series(values.to_numpy(), index=assays["accession"].astype(str).str.strip())
    missing = table[table.isna()]
    if len(missing):
        log.warning("assay %s: %d accession(s) without a value are left out", assay, len(missing))
    table = table.dropna()
    imageset = ImageSet.load(images_path)
    ids = np.asarray(imageset.ids).astype(str)
    rows: dict[str, list[int]] = {}
    for i, a in enumerate(ids):
        rows.setdefault(a, []).append(i)
    without = [a for a in table.index if a not in rows]
    if without:
        raise ConfigError(
            f"assay {assay}: {len(without)} accession(s) with a value have no image, e.g. {without[:5]} "
            "(render them, or remove them from the assay table)"
        )
    accessions = table.index.to_numpy(dtype=str)
    vals = table.to_numpy(dtype=float)
    if np.ptp(vals) == 0:
        raise ConfigError(f"assay {assay} is constant ({vals[0]:g} for all {len(vals)} accessions); cannot label it")
    data = AssayData(
        assay=assay,
        accessions=accessions,
        values=vals,
        images=imageset,
        image_rows=[np.asarray(rows[a]) for a in accessions],
        low=float(low),
        high=float(high),
        mode=mode,
        companions=assays.set_index(assays["accession"].astype(str).str.strip())
        .drop(columns=["accession", assay])
        .reindex(accessions),
    )
    if features_dir is not None:
        from ms2img.features.table import FeatureTable

        for method in methods:
            t = FeatureTable.load(features_dir, method)
            data.features[method] = t.values.reindex(index=accessions, fill_value=0.0).astype(np.float32)
    if data.regression:
        counts = {"regression": f"{vals.min():g}..{vals.max():g}"}
        data.protocol = regression_protocol(assay, len(vals), n_splits, repeats)
    else:
        counts = class_summary(data.scaling().labels(vals))
        data.protocol = cohort_protocol(assay, counts, n_splits, repeats)
    data.folds = repeated_folds(vals, data.protocol.folds, data.protocol.repeats, seed, low, high, mode)
    p = data.protocol
    log.info(
        "%s: %d accessions (%s) at %s, %d folds x %d repeats", assay, len(vals), counts, data.size, p.folds, p.repeats
    )
    return data


def data_from_params(
    assay: str,
    params: Mapping[str, Any],
    images_path: str | Path,
    assays_csv: str | Path,
    features_dir: str | Path | None = None,
) -> AssayData:
    """:func:`load_assay_data` with thresholds, folds, repeats and seed from params.yaml."""
    cv = params.get("cv") or {}
    if not isinstance(cv, Mapping) or "folds" not in cv:
        raise ConfigError("params.yaml has no cv section with folds (e.g. cv: {folds: 5, repeats: 1, seed: 42})")
    return load_assay_data(
        assay,
        images_path,
        assays_csv,
        features_dir=features_dir,
        methods=list(params["features"]["similarity"]) if features_dir is not None else (),
        low=float(params["labels"]["low"]),
        high=float(params["labels"]["high"]),
        n_splits=cv["folds"],
        repeats=cv.get("repeats", 1),
        seed=cv_seed(params),
        mode=label_mode(params["labels"]),
    )
