"""Assay values -> binary activity labels, image/label alignment and accession-grouped CV folds.

The paper's protocol: min-max normalise each assay over the accessions that have a value, call
``normalized < low`` (0.4) low activity (0) and ``normalized > high`` (0.6) high activity (1), and leave the
ambiguous middle out. Every way this can go wrong (unknown assay, bad thresholds, too few samples for the
folds, images that do not match the assay table) raises :class:`~ms2img.errors.ConfigError` here, before any
model is trained, with a message that says what to change.

With ``labels.mode: regression`` (:func:`label_mode`) there are no labels: the raw assay value is the target and
every accession with a value trains (:mod:`ms2img.training.dataset`); classification stays the default.

Folds are grouped by accession: with one image per replicate several images share an accession, and putting
replicates of one extract on both sides of a split would leak near-duplicates into the test fold.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.errors import ConfigError, InputFileError

logger = logging.getLogger(__name__)

ACCESSION = "accession"
LABEL_COLUMNS = ["accession", "value", "normalized", "label"]
CLASS_NAMES = ("low", "high")  # label 0, label 1


def _few(items: Sequence, n: int = 5) -> str:
    """'a, b, c and 7 more' -- name a few offenders, count the rest."""
    items = [str(i) for i in items]
    head = ", ".join(repr(i) for i in items[:n])
    rest = len(items) - n
    return f"{head} and {rest} more" if rest > 0 else head


# --------------------------------------------------------------------------------------------------------------
# Reading the assay table
# --------------------------------------------------------------------------------------------------------------


def read_assays(path: str | Path) -> pd.DataFrame:
    """Read an assay CSV: an ``accession`` column plus one numeric column per assay (empty or ``NA``: not measured).

    Returns a DataFrame with ``accession`` (str) first and one float64 column per assay, in file order. The text is
    read by ``io.assay_table.read_csv_strings``, so training and ``ms2img validate`` read one file
    the same way. Raises :class:`InputFileError` naming the line for a missing accession column, an empty
    accession, a value that is not a finite number, or an accession listed twice. Content checks beyond these
    (ranges, coverage of the events) are the validation stage's job.
    """
    from ms2img.io.assay_table import cell_numbers, read_csv_strings

    path = Path(path)
    table = read_csv_strings(path)
    names = list(map(str, table.columns))
    if ACCESSION not in names:
        raise InputFileError(path, f"no 'accession' column; the header has {names}", line=1)
    lines = table.index.to_numpy()
    no_acc = table[ACCESSION].isna().to_numpy()
    if no_acc.any():
        raise InputFileError(path, "row has assay values but no accession", line=int(lines[no_acc][0]))
    accessions = table[ACCESSION].astype(str)
    dup = accessions.duplicated(keep=False).to_numpy()
    if dup.any():
        first = accessions[dup].iloc[0]
        at = [int(n) for n in lines[(accessions == first).to_numpy()]]
        n_dup = accessions[dup].nunique()
        more = f" ({n_dup} accessions are duplicated)" if n_dup > 1 else ""
        raise InputFileError(path, f"accession '{first}' is listed more than once (lines {at}){more}", line=at[1])
    assay_cols = [c for c in names if c != ACCESSION]
    if not assay_cols:
        raise InputFileError(path, "no assay columns besides 'accession'", line=1)
    out = pd.DataFrame({ACCESSION: accessions.to_numpy()})
    for col in assay_cols:
        text = table[col]
        values = cell_numbers(text)  # NaN where not written as a number, inf where too large for a float
        bad = text.notna().to_numpy() & ~np.isfinite(values)
        if bad.any():
            i = bad.nonzero()[0][0]
            raise InputFileError(
                path,
                f"value {text.iloc[i]!r} is not a finite number ({int(bad.sum())} bad value(s) in this column)",
                line=int(lines[i]),
                column=col,
            )
        out[col] = values
    return out


# --------------------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------------------


def _assay_frame(assays: pd.DataFrame) -> pd.DataFrame:
    if ACCESSION not in assays.columns:
        if assays.index.name == ACCESSION:
            assays = assays.reset_index()
        else:
            raise ConfigError(f"assay table has no '{ACCESSION}' column (columns: {list(assays.columns)})")
    return assays


DEFAULT_LOW, DEFAULT_HIGH = 0.4, 0.6  # the paper's cut-offs; params.yaml labels.low / labels.high decide what runs
MIDDLE = -1  # label of an accession between the thresholds: predicted and rank-scored, never trained on
MODES = ("classification", "regression")  # labels.mode: low/high classes (the paper's) or the raw assay value


def label_mode(labels: Mapping[str, Any] | None) -> str:
    """``labels.mode`` of params.yaml (``classification`` when absent): a ConfigError names the choices."""
    mode = str((labels or {}).get("mode", MODES[0]) or MODES[0]).strip().lower()
    if mode not in MODES:
        raise ConfigError(f"labels.mode = {mode!r}; choose one of {', '.join(MODES)}")
    return mode


@dataclass(frozen=True)
class LabelScaling:
    """Min-max scaling of an assay fitted on some accessions, and the paper's low/high cut-offs."""

    min: float
    max: float
    low: float = DEFAULT_LOW
    high: float = DEFAULT_HIGH

    @classmethod
    def fit(
        cls, values: Sequence[float] | np.ndarray, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH
    ) -> LabelScaling:
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size < 2 or v.max() == v.min():
            raise ConfigError(f"cannot scale {v.size} assay value(s) with range {np.ptp(v) if v.size else 0:g}")
        check_thresholds(low, high)
        return cls(float(v.min()), float(v.max()), float(low), float(high))

    def normalize(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=float) - self.min) / (self.max - self.min)

    def labels(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """0 below ``low``, 1 above ``high``, :data:`MIDDLE` in between (values outside the fitted range
        simply fall on one side)."""
        z = self.normalize(values)
        return np.where(z < self.low, 0, np.where(z > self.high, 1, MIDDLE)).astype(int)

    def to_dict(self) -> dict[str, float]:
        return {"min": self.min, "max": self.max, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> LabelScaling:
        """The scaling a model card or registry tag stored (``to_dict``), so a served class means what it meant."""
        return cls(float(stored["min"]), float(stored["max"]), float(stored["low"]), float(stored["high"]))


def check_thresholds(low: float, high: float) -> None:
    """Raise ConfigError unless ``0 <= low < high <= 1``."""
    for name, v in (("low", low), ("high", high)):
        if not isinstance(v, int | float | np.floating | np.integer) or not np.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ConfigError(f"labels.{name} = {v!r} must be a number in [0, 1] (a fraction of the min-max range)")
    if low >= high:
        raise ConfigError(
            f"labels.low ({low}) must be smaller than labels.high ({high}); values between them are left out"
        )


def make_labels(
    assays: pd.DataFrame, assay: str, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH, n_splits: int | None = None
) -> pd.DataFrame:
    """Binary activity labels for one assay: DataFrame[accession, value, normalized, label].

    ``normalized = (value - min) / (max - min)`` over accessions with a value (missing values are dropped and
    counted in a warning). ``normalized < low`` -> 0, ``normalized > high`` -> 1; values equal to a threshold
    and those between are left out (as in the paper). Row order follows the assay table. ``df.attrs`` records
    the assay, thresholds, min/max and how many accessions were missing or left out.
    With ``n_splits`` also checks that each class has enough accessions for that many folds.
    """
    check_thresholds(low, high)
    assays = _assay_frame(assays)
    available = [c for c in assays.columns if c != ACCESSION]
    if assay not in available:
        close = [c for c in available if c.lower() == str(assay).lower()]
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown assay '{assay}'{hint}; the assay table has: {', '.join(map(str, available))}")

    acc = assays[ACCESSION].astype(str).str.strip()
    dups = acc[acc.duplicated()].unique().tolist()
    if dups:
        raise ConfigError(f"assay table lists accession(s) more than once: {_few(dups)}")
    try:
        values = pd.to_numeric(assays[assay], errors="raise").astype("float64")
    except (ValueError, TypeError):
        raise ConfigError(f"assay '{assay}' has non-numeric values; read the table with read_assays()") from None
    values = pd.Series(values.to_numpy(), index=acc.to_numpy())
    inf = values[np.isinf(values)]
    if len(inf):
        raise ConfigError(f"assay '{assay}' has infinite values for accession(s) {_few(inf.index.tolist())}")

    missing = values.isna()
    if missing.any():
        logger.warning(
            "assay %s: %d of %d accessions have no value and are left out (%s)",
            assay,
            int(missing.sum()),
            len(values),
            _few(values.index[missing].tolist(), 3),
        )
    values = values[~missing]
    if len(values) < 2:
        raise ConfigError(f"assay '{assay}' has {len(values)} accession(s) with a value; need at least 2 per class")
    vmin, vmax = float(values.min()), float(values.max())
    if vmax == vmin:
        raise ConfigError(f"assay '{assay}' is constant ({vmin:g} for all {len(values)} accessions); cannot label it")

    scaling = LabelScaling(vmin, vmax, float(low), float(high))  # the one label rule (training, registry, report)
    normalized = scaling.normalize(values.to_numpy())
    label = scaling.labels(values.to_numpy())
    keep = label != MIDDLE
    out = pd.DataFrame(
        {
            "accession": values.index[keep].astype(str),
            "value": values.to_numpy()[keep],
            "normalized": normalized[keep],
            "label": label[keep].astype("int64"),
        }
    )
    counts = class_counts(out)
    thin = {k: v for k, v in counts.items() if v < 2}
    if thin:
        raise ConfigError(
            f"assay '{assay}' with low={low}, high={high}: class(es) {thin} have fewer than 2 accessions "
            f"(counts {counts}, {int((~keep).sum())} in the middle band left out); widen the thresholds or "
            "choose another assay"
        )
    out.attrs.update(
        assay=assay,
        low=float(low),
        high=float(high),
        min=vmin,
        max=vmax,
        n_missing=int(missing.sum()),
        n_middle=int((~keep).sum()),
    )
    logger.info(
        "assay %s: %d labelled (%d low, %d high), %d in the middle band left out, %d without a value",
        assay,
        len(out),
        counts["low"],
        counts["high"],
        int((~keep).sum()),
        int(missing.sum()),
    )
    if n_splits is not None:
        check_cv_feasible(out, n_splits)
    return out


def _label_array(labels: pd.DataFrame | Sequence[int] | np.ndarray) -> np.ndarray:
    y = labels["label"].to_numpy() if isinstance(labels, pd.DataFrame) else np.asarray(labels)
    return np.asarray(y).astype("int64").ravel()


def class_counts(labels: pd.DataFrame | Sequence[int] | np.ndarray) -> dict[str, int]:
    """``{"low": n0, "high": n1}`` for a labels DataFrame (its ``label`` column) or an array of 0/1 labels."""
    y = _label_array(labels)
    return {name: int((y == i).sum()) for i, name in enumerate(CLASS_NAMES)}


def check_cv_feasible(labels: pd.DataFrame | Sequence[int] | np.ndarray, n_splits: int) -> None:
    """Raise ConfigError unless every class has at least ``n_splits`` labelled accessions.

    Pass one label per accession (the labels table), not per image: folds are split by accession.
    """
    if not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ConfigError(f"cv.folds = {n_splits!r} must be an integer >= 2")
    counts = class_counts(labels)
    short = {k: v for k, v in counts.items() if v < n_splits}
    if short:
        raise ConfigError(
            f"{n_splits}-fold cross-validation needs at least {n_splits} labelled accessions per class, but "
            f"class counts are {counts}; lower cv.folds or widen labels.low/labels.high"
        )


def per_accession_oof(oof: pd.DataFrame) -> pd.DataFrame:
    """One family's out-of-fold rows (per repeat: ``accession``, ``value`` and ``probability`` + ``label``, or
    ``prediction`` in regression) as one row per accession: the means over the repeats and, with labels, one label.
    Each fold scales the assay on its own training accessions, so an accession near a cut-off can be high in one
    repeat and middle in another: it keeps a class only when every repeat agrees, else :data:`MIDDLE` (the pooled
    scores and the training and report figures count accessions this way)."""
    rows = oof.groupby("accession")
    out = rows[[c for c in ("probability", "prediction", "value") if c in oof.columns]].mean()
    if "label" in oof.columns:
        out["label"] = rows["label"].agg(lambda s: s.iat[0] if s.nunique() == 1 else MIDDLE)
    return out


# --------------------------------------------------------------------------------------------------------------
# Images <-> labels
# --------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------
# Folds
# --------------------------------------------------------------------------------------------------------------
