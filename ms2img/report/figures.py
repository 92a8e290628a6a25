"""Figures the report draws itself from the contract's tables (oof.csv, folds.csv), as PNG bytes.

Each function takes the tables of one assay and a scratch folder and returns PNG bytes; the ``ms2img.plots``
functions do the drawing, so the report and the training stage show the same figures.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img import plots
from ms2img.io.assay_table import read_csv_strings
from ms2img.training.fold_metrics import predict_labels

log = logging.getLogger(__name__)


def raw_cutoffs(oof: pd.DataFrame, low: float, high: float) -> tuple[float | None, float | None]:
    """The low/high cut-offs in raw assay units: each fold's training-part min-max scaling (read back from the
    oof table's ``value``/``normalized`` pairs) maps ``low``/``high`` to raw values; the median over folds."""
    if oof is None or not {"value", "normalized"} <= set(oof.columns):
        return None, None
    keys = [k for k in ("repeat", "fold") if k in oof.columns]
    lows, highs = [], []
    groups = oof.groupby(keys) if keys else [(None, oof)]
    for _, g in groups:
        g = g[["normalized", "value"]].apply(pd.to_numeric, errors="coerce").dropna().drop_duplicates()
        if g["normalized"].nunique() < 2:
            continue
        slope, intercept = np.polyfit(g["normalized"].to_numpy(float), g["value"].to_numpy(float), 1)
        lows.append(intercept + slope * low)
        highs.append(intercept + slope * high)
    if not lows:
        return None, None
    return float(np.median(lows)), float(np.median(highs))


def family_folds(oof: pd.DataFrame, family: str) -> list[tuple[np.ndarray, np.ndarray, tuple]]:
    """``(y_true, probability, (repeat, fold))`` per test fold of ``family``, labelled accessions only."""
    d = oof[(oof["family"].astype(str) == family) & (pd.to_numeric(oof["label"], errors="coerce") >= 0)]
    keys = [k for k in ("repeat", "fold") if k in d.columns]
    out = []
    for key, g in d.groupby(keys) if keys else [((0,), d)]:
        key = key if isinstance(key, tuple) else (key,)
        out.append((g["label"].to_numpy(int), g["probability"].to_numpy(float), key))
    return out


def _png(path: Path) -> bytes:
    return Path(path).read_bytes()


def oof_scatter(
    oof: pd.DataFrame,
    family: str,
    assay: str,
    scratch: Path,
    *,
    low: float,
    high: float,
    units: str | None,
    threshold: float | None = None,
    threshold_label: str | None = None,
    threshold_band: tuple[float, float] | None = None,
) -> bytes:
    """Fig. 3A: out-of-fold P(high) of ``family`` against the raw assay value (mean over repeats per accession),
    with the threshold the model is used at (none drawn when none was recorded: never a made-up 0.5)."""
    d = oof[oof["family"].astype(str) == family]
    if d.empty:
        raise ValueError(f"no out-of-fold rows for {family}")
    lo, hi = raw_cutoffs(d, low, high)
    path = plots.plot_family_oof(  # one dot per accession, as the training stage draws it
        d,
        scratch / f"{assay}_{family}_oof.png",
        value_label=assay,
        units=units,
        low_cutoff=lo,
        high_cutoff=hi,
        threshold=threshold,
        threshold_label=threshold_label,
        threshold_band=threshold_band,
        title=f"{assay}: {family} out-of-fold P(high) vs measured value",
    )
    return _png(path)


def roc(oof: pd.DataFrame, family: str, assay: str, scratch: Path) -> bytes:
    """Fig. 3B / 4C: per-fold, mean ± SD and pooled ROC of ``family``."""
    folds = [(y, p) for y, p, _ in family_folds(oof, family)]
    if not folds:
        raise ValueError(f"no labelled out-of-fold rows for {family}")
    return _png(plots.plot_roc(folds, scratch / f"{assay}_{family}_roc.png", title=f"{assay}: {family} ROC"))


def confusion(oof: pd.DataFrame, folds: pd.DataFrame | None, family: str, assay: str, scratch: Path) -> bytes:
    """Fig. 3C: mean ± SD confusion matrix over folds, each fold at its own threshold (folds.csv)."""
    thresholds: dict[tuple, float] = {}
    if folds is not None and {"family", "threshold"} <= set(folds.columns):
        f = folds[folds["family"].astype(str) == family]
        keys = [k for k in ("repeat", "fold") if k in f.columns]
        for _, row in f.iterrows():
            thresholds[tuple(row[k] for k in keys)] = float(row["threshold"])
    mats = []
    for y, p, key in family_folds(oof, family):
        t = thresholds.get(tuple(key), 0.5)
        t = 0.5 if not np.isfinite(t) else t
        pred = predict_labels(p, t)
        m = np.zeros((2, 2))
        for yt, yp in zip(y, pred, strict=True):
            m[int(yt), int(yp)] += 1
        mats.append(m)
    if not mats:
        raise ValueError(f"no labelled out-of-fold rows for {family}")
    stack = np.stack(mats)
    sd = stack.std(axis=0, ddof=1) if len(mats) > 1 else None
    return _png(
        plots.plot_confusion(
            stack.mean(axis=0),
            sd,
            scratch / f"{assay}_{family}_cm.png",
            title=f"{assay}: {family} confusion, mean ± SD over {len(mats)} folds",
        )
    )


def boxplots(
    folds: pd.DataFrame, assay: str, scratch: Path, families: Sequence[str], metrics: Sequence[str] = plots.FOLD_METRICS
) -> bytes:
    """Fig. 5: per-fold metrics per family (``metrics``: the mode's scores)."""
    return _png(
        plots.plot_metric_boxplots(
            folds,
            scratch / f"{assay}_box.png",
            metrics=metrics,
            families=list(families),
            title=f"{assay}: per-fold scores by model family ({len(folds)} fold results)",
        )
    )


def example_fingerprints(
    images: Path,
    assays_csv: Path | None,
    assay: str | None,
    scratch: Path,
    *,
    per_class: int = 1,
    low: float = 0.4,
    high: float = 0.6,
    units: str | None = None,
) -> list[tuple[str, bytes]]:
    """One fingerprint of the most and of the least active accession of ``assay`` (or the first images)."""
    with np.load(images, allow_pickle=False) as z:
        stack, ids, xe, ye = z["images"], z["ids"].astype(str), z["x_edges"], z["y_edges"]
    picks: list[tuple[int, str]] = []
    values: dict[str, float] = {}
    if assays_csv is not None and assay:
        table = read_csv_strings(assays_csv)  # Excel's Windows-1252 read; accession 001 stays 001
        if assay in table.columns and "accession" in table.columns:
            v = pd.to_numeric(table[assay], errors="coerce")
            values = dict(zip(table["accession"].astype(str), v, strict=True))
    known = [(values[a], i) for i, a in enumerate(ids) if a in values and np.isfinite(values[a])]
    if known:
        known.sort()
        vmin, vmax = known[0][0], known[-1][0]
        picks = [(i, "high") for _, i in known[::-1][:per_class]] + [(i, "low") for _, i in known[:per_class]]
    else:
        picks = [(i, "") for i in range(min(2 * per_class, len(ids)))]
    out = []
    for i, _cls in picks:
        acc = ids[i]
        value = values.get(acc)
        label = None
        if value is not None and known and vmax > vmin:
            norm = (value - vmin) / (vmax - vmin)
            label = 1 if norm > high else 0 if norm < low else -1
        title = plots.fingerprint_title(acc, assay if value is not None else None, value, label, units)
        path = plots.plot_fingerprint(stack[i], xe, ye, scratch / f"fp_{i}.png", title)
        out.append((title, _png(path)))
    return out


def safe(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``(result, None)`` or ``(None, reason)``: a figure that cannot be drawn never stops the report."""
    try:
        return fn(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - the report shows the reason instead of crashing
        log.warning("report: %s failed: %s: %s", getattr(fn, "__name__", fn), exc.__class__.__name__, exc)
        return None, f"{exc.__class__.__name__}: {exc}"
