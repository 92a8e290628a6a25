"""``ms2img explain``: attribution of an assay's champion, its drivers, their annotation, the report files.

What is explained, and on which accessions (also written to ``reports/<assay>/drivers.json``):

* the champion is ``reports/<assay>/selection.json``'s ``winner`` (or ``family=``), loaded from
  ``models/<assay>/<family>/`` with :meth:`FamilyModel.load`; labels and folds come from
  ``reports/<assay>/oof.csv`` (repeat 0) when it exists, else from the assay table;
* **held-out attribution** for the random-forest families: the per-fold models are not saved, so the saved
  estimator's configuration is refitted on each fold's training part (``clone``) and the fold's test
  accessions are occluded/permuted with it (``attribution = "held-out refits"``);
* the CNN (and any family with ``refit=False``): the **final model on all labelled accessions**, i.e. in-sample
  (``attribution = "in-sample final model"``); refitting a CNN per fold is training, not explaining.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.atomic import write_text
from ms2img.errors import ConfigError, InputFileError
from ms2img.explain.annotation import SpectralLibrary, annotate
from ms2img.explain.attribution import explain_images, permutation_importance, window_boxes
from ms2img.explain.drivers import collect_precursors, find_drivers, read_events_dir
from ms2img.explain.report import plot_drivers
from ms2img.models.family import has_network

log = logging.getLogger(__name__)

DRIVER_COLUMNS = [
    "rank", "precursor_mz", "rt_min", "importance", "direction", "conditional_effect", "conditional_importance",
    "fold_change", "log2_fold_change", "mean_high", "mean_low", "n_accessions", "n_high", "n_low", "library_name",
    "library_score", "library_precursor_mz", "library_adduct", "matched_peaks", "analogue_name", "analogue_score",
    "analogue_precursor_mz", "analogue_matched_peaks", "adducts", "boxes", "polarity", "n_fragments",
    "consensus_spectrum",
]  # fmt: skip
FEATURE_METHOD = {"rf-cosine": "cosine", "rf-entropy": "entropy"}


@dataclass
class ExplainConfig:
    """Settings of one explanation (``params.yaml`` ``explain.*``; see :func:`config_from_params`)."""

    block: int = 3  # occlusion window (pixels per side)
    stride: int | None = None  # None: non-overlapping windows
    refit: bool = True  # held-out attribution by per-fold refits (random-forest families)
    n_repeats: int = 5  # permutation repeats (feature families)
    mz_ppm: float = 10.0  # grouping of precursors across accessions
    rt_tol_min: float = 0.1
    min_accessions: int = 2
    top: int = 50  # rows of drivers.csv (and annotated)
    conditional: bool = True  # rank by importance x effect given the other candidates (drivers module docstring)
    direction_first: bool = True  # drivers more abundant in high-activity accessions rank first
    libraries: list[str] | None = None  # MSP/MGF paths; None: the bundled PhenolicsDB
    ms1_tol_da: float = 0.01
    ms2_tol_da: float = 0.02
    translator_url: str | None = None
    translator_timeout_s: float = 10.0
    translator_top: int = 10
    seed: int = 0


def config_from_params(params: dict[str, Any] | None) -> ExplainConfig:
    """``ExplainConfig`` from the ``explain`` section of params (unknown keys are an error)."""
    section = dict((params or {}).get("explain") or {})
    known = set(ExplainConfig.__dataclass_fields__)
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"params.yaml explain: unknown key(s) {unknown}; known: {sorted(known)}")
    return ExplainConfig(**section)


@dataclass
class ExplainResult:
    """What :func:`explain_assay` wrote and found."""

    assay: str
    family: str
    drivers: pd.DataFrame
    boxes: pd.DataFrame
    paths: dict[str, Path]
    meta: dict[str, Any] = field(default_factory=dict)


def read_selection(reports_dir: Path, assay: str) -> str:
    path = reports_dir / assay / "selection.json"
    try:
        winner = json.loads(path.read_text(encoding="utf-8"))["winner"]
    except FileNotFoundError:
        raise InputFileError(path, "no selection (run `ms2img train` for this assay first)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(path, f"unreadable selection ({exc.__class__.__name__}: {exc})") from None
    return str(winner)


def labels_and_folds(
    reports_dir: Path, assay: str, family: str, assays_csv: Path | None, low: float, high: float
) -> tuple[pd.DataFrame, str]:
    """``accession, label, fold`` (fold -1 when unknown) from oof.csv (repeat 0), else from the assay table."""
    oof_path = reports_dir / assay / "oof.csv"
    if oof_path.is_file():
        try:
            oof = pd.read_csv(oof_path, dtype={"accession": str})
            sub = oof[(oof["family"].astype(str) == family) & oof["label"].isin([0, 1])]
            if "repeat" in sub.columns and len(sub):
                sub = sub[sub["repeat"] == sub["repeat"].min()]
            out = sub[["accession", "label", "fold"]].drop_duplicates("accession")
        except (ValueError, KeyError) as exc:
            raise InputFileError(oof_path, f"unreadable out-of-fold table ({exc.__class__.__name__}: {exc})") from None
        if len(out):
            return out.astype({"label": int, "fold": int}).reset_index(drop=True), str(oof_path)
    if assays_csv is None:
        raise InputFileError(oof_path, "no out-of-fold table and no assay table to take labels from")
    from ms2img.training.labels import make_labels, read_assays

    lab = make_labels(read_assays(assays_csv), assay, low=low, high=high)
    return lab.assign(fold=-1)[["accession", "label", "fold"]].reset_index(drop=True), str(assays_csv)


def _fold_splits(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in np.unique(folds)]


def _attribute_images(model, images, y, folds, cfg: ExplainConfig, ids) -> tuple[Any, str]:
    from sklearn.base import clone

    if cfg.refit and not has_network(model.family) and (folds >= 0).all() and len(np.unique(folds)) > 1:
        results = []
        for train, test in _fold_splits(folds):
            if len(np.unique(y[train])) < 2:
                continue
            est = clone(model.estimator).fit(images[train], y[train])
            results.append((test, explain_images(est, images[test], y[test], block=cfg.block, stride=cfg.stride)))
        if results:
            return _merge_folds(results, len(y), images.shape[1:], ids, y), "held-out refits"
    return explain_images(model, images, y, block=cfg.block, stride=cfg.stride, ids=ids), "in-sample final model"


def _merge_folds(results, n, shape, ids, y):
    """One OcclusionResult over all accessions from per-fold results (windows united, absent = 0 contribution)."""
    from ms2img.explain.attribution import OcclusionResult, class_aware

    keys = sorted({tuple(w) for _, r in results for w in r.windows.tolist()})
    pos = {k: i for i, k in enumerate(keys)}
    contrib = np.zeros((n, len(keys)))
    baseline = np.zeros(n)
    for test, r in results:
        cols = [pos[tuple(w)] for w in r.windows.tolist()]
        contrib[np.ix_(test, cols)] = r.contribution
        baseline[test] = r.baseline
    windows = np.asarray(keys, dtype=np.int64).reshape(-1, 4)
    return OcclusionResult(windows, baseline, contrib, class_aware(contrib, y), tuple(shape), np.asarray(ids), y)


def _feature_boxes(model, features_dir: Path, y, folds, accessions, cfg: ExplainConfig) -> tuple[pd.DataFrame, str]:
    """Permutation importance of a feature-family model as m/z x RT boxes (one per training feature)."""
    from sklearn.base import clone

    from ms2img.features.table import FeatureTable

    feats = model.features
    if feats is None or "feature_id" not in feats.columns:
        raise InputFileError(features_dir, f"the {model.family} model has no features.parquet to explain")
    table = FeatureTable.load(features_dir, FEATURE_METHOD[model.family])
    values = table.values.copy()
    values.index = values.index.astype(str)
    missing = [a for a in accessions if a not in values.index]
    if missing:
        raise InputFileError(features_dir, f"{len(missing)} accession(s) missing from the feature table: {missing[:3]}")
    x = values.reindex(index=list(accessions), columns=feats["feature_id"].astype(str).tolist()).fillna(0.0)
    x = x.to_numpy(dtype=np.float32)
    how = "in-sample final model"
    if cfg.refit and (folds >= 0).all() and len(np.unique(folds)) > 1:
        parts = []
        for train, test in _fold_splits(folds):
            est = clone(model.estimator).fit(np.log1p(np.clip(x[train], 0, None)), y[train])
            wrapped = _LogModel(est)
            parts.append(permutation_importance(wrapped, x[test], y[test], cfg.n_repeats, cfg.seed))
        imp = pd.concat(parts).groupby("column", as_index=False)[["importance", "contribution"]].mean()
        how = "held-out refits"
    else:
        imp = permutation_importance(model, x, y, cfg.n_repeats, cfg.seed)
    f = feats.iloc[imp["column"].to_numpy()].reset_index(drop=True)
    mz = f["mz"].to_numpy(dtype=np.float64)
    tol = mz * cfg.mz_ppm * 1e-6 + 0.002
    boxes = pd.DataFrame(
        {
            "precursor_mz_lo": mz - tol,
            "precursor_mz_hi": mz + tol,
            "fragment_mz_lo": 0.0,
            "fragment_mz_hi": np.inf,
            "rt_lo": f["rt"].to_numpy(dtype=np.float64) - 2 * cfg.rt_tol_min,
            "rt_hi": f["rt"].to_numpy(dtype=np.float64) + 2 * cfg.rt_tol_min,
            "importance": imp["importance"].to_numpy(),
            "contribution": imp["contribution"].to_numpy(),
            "feature_id": f["feature_id"].astype(str).to_numpy(),
        }
    )
    boxes = boxes.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    boxes.insert(0, "box", np.arange(1, len(boxes) + 1))
    return boxes, how


class _LogModel:
    """A bare refitted forest behaving like a feature-family FamilyModel (log1p of raw heights inside)."""

    family = "rf-features"

    def __init__(self, est):
        self.estimator = est

    def predict_proba(self, x):
        return self.estimator.predict_proba(np.log1p(np.clip(np.asarray(x, dtype=np.float32), 0, None)))[:, 1]


def explain_assay(
    assay: str,
    models_dir: str | Path = "models",
    reports_dir: str | Path = "reports",
    images_dir: str | Path = "data/images",
    events_dir: str | Path = "data/events",
    features_dir: str | Path = "data/features",
    assays_csv: str | Path | None = "data/raw/assays.csv",
    config: ExplainConfig | None = None,
    family: str | None = None,
    low: float = 0.4,
    high: float = 0.6,
    out_dir: str | Path | None = None,
) -> ExplainResult:
    """Explain an assay's champion and write ``reports/<assay>/drivers.{csv,png,json}`` (module docstring), or into
    ``out_dir`` (the stage's outputs and the champion's selection stay where they are)."""
    from ms2img.models.family import FamilyModel, input_kind
    from ms2img.render import ImageSet, images_path

    cfg = config or ExplainConfig()
    t0 = time.perf_counter()
    models_dir, reports_dir = Path(models_dir), Path(reports_dir)
    family = family or read_selection(reports_dir, assay)
    model = FamilyModel.load(models_dir / assay / family)
    if model.mode == "regression":
        from ms2img.errors import ConfigError

        raise ConfigError(
            f"{assay}: the {family} champion predicts the value (labels.mode: regression); model attribution explains "
            f"the low/high classes. Use `ms2img explain --assay {assay} --method correlation` (no model needed)"
        )
    lab, label_source = labels_and_folds(
        reports_dir, assay, family, Path(assays_csv) if assays_csv else None, low, high
    )
    meta: dict[str, Any] = {"assay": assay, "family": family, "labels_from": label_source}
    meta["training_key"] = model.card.get("training_key")  # which training of the model: the report tells stale ones

    if input_kind(family) == "image":
        render = model.card.get("render") or {}
        size = f"{render.get('width')}x{render.get('height')}" if render.get("width") else None
        path = images_path(size, images_dir) if size else None
        if path is None or not path.is_file():
            found = sorted(Path(images_dir).glob("*.npz"))
            if len(found) != 1:
                want = f"{size}.npz (run `ms2img render --sizes {size}`)" if size else "one image tensor"
                raise InputFileError(Path(images_dir), f"the {family} model reads {want}; found {len(found)} file(s)")
            path = found[0]
        ims = ImageSet.load(path)
        idx = {a: i for i, a in enumerate(ims.ids)}
        lab = lab[lab["accession"].isin(idx)].reset_index(drop=True)
        if lab["label"].nunique() < 2:
            raise ConfigError(f"assay {assay}: need labelled accessions of both classes with images in {path}")
        x = ims.images[[idx[a] for a in lab["accession"]]]
        y, folds = lab["label"].to_numpy(), lab["fold"].to_numpy()
        occ, how = _attribute_images(model, x, y, folds, cfg, lab["accession"].to_numpy())
        boxes = window_boxes(occ, ims.x_edges, ims.y_edges)
        mean_image, x_edges, y_edges = x.mean(axis=0), ims.x_edges, ims.y_edges
        meta.update(images=str(path), block=cfg.block, stride=cfg.stride or cfg.block, n_windows=len(boxes))
    else:
        y, folds = lab["label"].to_numpy(), lab["fold"].to_numpy()
        boxes, how = _feature_boxes(model, Path(features_dir), y, folds, lab["accession"].tolist(), cfg)
        mean_image = x_edges = y_edges = None
        found = sorted(Path(images_dir).glob("*.npz"))  # a fingerprint to draw the drivers on, when rendered
        if found:
            ims = ImageSet.load(found[0])
            keep = [i for i, a in enumerate(ims.ids) if a in set(lab["accession"])]
            if keep:
                mean_image, x_edges, y_edges = ims.images[keep].mean(axis=0), ims.x_edges, ims.y_edges
        meta.update(features=str(features_dir), n_features=len(boxes), n_repeats=cfg.n_repeats)
    meta.update(attribution=how, n_accessions=len(lab), n_high=int((y == 1).sum()), n_low=int((y == 0).sum()))
    t_attr = time.perf_counter() - t0

    events = read_events_dir(events_dir, lab["accession"].tolist())
    precursors = collect_precursors(events)
    drivers = find_drivers(
        boxes,
        precursors,
        dict(zip(lab["accession"], lab["label"].astype(int), strict=True)),
        mz_ppm=cfg.mz_ppm,
        rt_tol_min=cfg.rt_tol_min,
        min_accessions=cfg.min_accessions,
        conditional=cfg.conditional,
        direction_first=cfg.direction_first,
        seed=cfg.seed,
        top=cfg.top,
    )
    library = SpectralLibrary.from_paths(cfg.libraries, ms1_tol_da=cfg.ms1_tol_da, ms2_tol_da=cfg.ms2_tol_da)
    drivers = annotate(drivers, library)
    columns = list(DRIVER_COLUMNS)
    if cfg.translator_url:
        from ms2img.explain.translator import TranslatorClient, translate_drivers

        client = TranslatorClient(cfg.translator_url, timeout_s=cfg.translator_timeout_s)
        drivers = translate_drivers(drivers, client, top=cfg.translator_top)
        columns += ["translator_smiles", "translator_score"]
    drivers = drivers[columns]
    meta.update(
        seconds_attribution=round(t_attr, 2),
        seconds_total=round(time.perf_counter() - t0, 2),
        library_spectra=len(library),
        libraries=[str(p) for p in (cfg.libraries or [])] or ["bundled PhenolicsDB (pos + neg)"],
        n_drivers=len(drivers),
    )

    out_dir = Path(out_dir) if out_dir is not None else reports_dir / assay
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / "drivers.csv", "png": out_dir / "drivers.png", "json": out_dir / "drivers.json"}
    write_text(paths["csv"], drivers.to_csv(index=False, float_format="%.8g", lineterminator="\n"))
    if mean_image is not None:
        title = f"{assay}: drivers of the {family} champion ({how}, {len(lab)} accessions)"
        image_boxes = boxes if input_kind(family) == "image" else boxes.iloc[0:0]  # features have no m/z boxes
        plot_drivers(mean_image, x_edges, y_edges, image_boxes, drivers, paths["png"], title=title)
    else:
        paths.pop("png")
    top_boxes = boxes.head(50).replace([np.inf, -np.inf], None)
    meta["boxes"] = json.loads(top_boxes.to_json(orient="records", double_precision=6))
    write_text(paths["json"], json.dumps(meta, indent=2, default=str) + "\n")
    log.info("%s: %d drivers (%s) in %.1f s -> %s", assay, len(drivers), how, meta["seconds_total"], out_dir)
    return ExplainResult(assay=assay, family=family, drivers=drivers, boxes=boxes, paths=paths, meta=meta)
