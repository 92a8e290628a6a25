"""Read what the pipeline stages wrote (docs/contracts.md) into one :class:`ReportInputs`, never failing.

Every reader returns ``None`` (and records why in ``missing``) when its file is absent or unreadable, so the
report can say "not run" for that piece instead of crashing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ms2img.models.family import FAMILIES

log = logging.getLogger(__name__)


@dataclass
class AssayInputs:
    """Everything the report shows for one assay; any field may be None (that piece was not run)."""

    name: str
    metrics: dict[str, Any] | None = None  # metrics/<A>.json
    resolution: dict[str, Any] | None = None  # metrics/<A>_resolution.json
    oof: pd.DataFrame | None = None  # reports/<A>/oof.csv
    folds: pd.DataFrame | None = None  # reports/<A>/folds.csv
    selection: dict[str, Any] | None = None  # reports/<A>/selection.json
    promotion: dict[str, Any] | None = None  # reports/<A>/promotion.json: which version the registry serves, why
    rollback: dict[str, Any] | None = None  # reports/<A>/rollback.json: a rollback by hand since (ms2img rollback)
    drivers: pd.DataFrame | None = None  # reports/<A>/drivers.csv
    drivers_csv: Path | None = None  # linked from the report (the table shows the top rows only)
    drivers_meta: dict[str, Any] | None = None  # reports/<A>/drivers.json: on which accessions, how attributed
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # models/<A>/<family>/model.json by family
    plots: dict[str, Path] = field(default_factory=dict)  # plots/<A>/*.png (then reports/<A>/*.png) by stem

    @property
    def families(self) -> list[str]:
        """Families named by any of this assay's files, in the contract's order, then the rest as met."""
        seen: list[str] = []
        if self.metrics and isinstance(self.metrics.get("families"), dict):
            seen += list(self.metrics["families"])
        for df in (self.folds, self.oof):
            if df is not None and "family" in df.columns:
                seen += [str(f) for f in dict.fromkeys(df["family"].astype(str))]
        if self.selection:
            seen += [r["family"] if isinstance(r, dict) else str(r) for r in self.selection.get("ranking") or []]
        unique = list(dict.fromkeys(seen))
        return [f for f in FAMILIES if f in unique] + [f for f in unique if f not in FAMILIES]

    @property
    def winner(self) -> str | None:
        return (self.selection or {}).get("winner")

    @property
    def rolled_back(self) -> dict[str, Any] | None:
        """The rollback by hand (``champion``, ``family``, ``replaces``, ``reason``) when it replaced the champion
        the last promotion left, so the registry serves its version; None otherwise (a later promotion decided)."""
        after = (self.promotion or {}).get("champion_after")
        rollback = self.rollback or {}
        return rollback if after and str(rollback.get("replaces")) == str(after) else None

    @property
    def regression(self) -> bool:
        """Trained with ``labels.mode: regression`` (selection.json says so; else folds.csv has no AUC but rho)."""
        if self.selection and self.selection.get("mode"):
            return self.selection["mode"] == "regression"
        cols = set(self.folds.columns) if self.folds is not None else set()
        return "spearman" in cols and "auc" not in cols


@dataclass
class ReportInputs:
    root: Path
    assays: list[AssayInputs]
    params: dict[str, Any] | None = None
    params_text: str | None = None
    validation: dict[str, Any] | None = None
    validation_html: Path | None = None  # reports/validation.html, linked from the report
    drift: Any = None
    drift_plots: list[Path] = field(default_factory=list)
    data_version: str | None = None
    data_version_source: str | None = None
    images: Path | None = None  # data/images/<WxH>.npz used for example fingerprints
    assays_csv: Path | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def families(self) -> list[str]:
        unique = list(dict.fromkeys(f for a in self.assays for f in a.families))
        return [f for f in FAMILIES if f in unique] + [f for f in unique if f not in FAMILIES]


def read_json(path: Path, missing: list[str]) -> Any:
    if not path.is_file():
        missing.append(f"{path} (absent)")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        missing.append(f"{path} (unreadable: {exc.__class__.__name__}: {exc})")
        log.warning("report: cannot read %s: %s", path, exc)
        return None


def read_csv(path: Path, missing: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        missing.append(f"{path} (absent)")
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        missing.append(f"{path} (unreadable: {exc.__class__.__name__}: {exc})")
        log.warning("report: cannot read %s: %s", path, exc)
        return None


def data_version(root: Path) -> tuple[str | None, str | None]:
    """The DVC md5 of data/raw, from data/raw.dvc or else dvc.lock (the hash the pipeline ran on)."""
    pointer = root / "data" / "raw.dvc"
    try:
        if pointer.is_file():
            outs = (yaml.safe_load(pointer.read_text(encoding="utf-8")) or {}).get("outs") or [{}]
            if outs[0].get("md5"):
                return f"md5:{outs[0]['md5']}", str(pointer.relative_to(root))
        lock = root / "dvc.lock"
        if lock.is_file():
            stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages") or {}
            for stage in stages.values():
                for dep in stage.get("deps") or []:
                    if str(dep.get("path", "")).rstrip("/") == "data/raw" and dep.get("md5"):
                        return f"md5:{dep['md5']}", "dvc.lock"
    except (OSError, yaml.YAMLError, AttributeError, IndexError, TypeError) as exc:
        log.warning("report: cannot read the data version: %s", exc)
    return None, None


def _discover_assays(root: Path, metrics_dir: Path, reports_dir: Path, params: dict[str, Any] | None) -> list[str]:
    names: list[str] = []
    labels = (params or {}).get("labels") or {}
    if isinstance(labels.get("assays"), list):
        names += [str(a) for a in labels["assays"]]
    if metrics_dir.is_dir():
        for p in sorted(metrics_dir.glob("*.json")):
            if p.stem.endswith(("_resolution", "_promotion")):  # files about an assay, not assays
                continue
            names.append(p.stem)
    if reports_dir.is_dir():
        for d in sorted(p for p in reports_dir.iterdir() if p.is_dir()):
            if any((d / f).is_file() for f in ("oof.csv", "folds.csv", "selection.json")):
                names.append(d.name)
    return list(dict.fromkeys(names))


def _images_file(root: Path, params: dict[str, Any] | None) -> Path | None:
    folder = root / "data" / "images"
    if not folder.is_dir():
        return None
    from ms2img.render import images_path

    size = str(((params or {}).get("render") or {}).get("size") or "")
    if size and images_path(size, folder).is_file():
        return images_path(size, folder)
    found = sorted(folder.glob("*.npz"))
    return found[0] if found else None


def _model_cards(folder: Path) -> dict[str, dict[str, Any]]:
    """The saved models' cards (threshold, class counts): the numbers the served model was trained with."""
    cards: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return cards
    for card in sorted(folder.glob("*/model.json")):
        try:
            data = json.loads(card.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("report: cannot read %s: %s", card, exc)
            continue
        if isinstance(data, dict):
            cards[card.parent.name] = data
    return cards


def collect(
    root: str | Path = ".",
    *,
    assays: list[str] | None = None,
    metrics_dir: str | Path = "metrics",
    reports_dir: str | Path = "reports",
    plots_dir: str | Path = "plots",
    models_dir: str | Path = "models",
    params_path: str | Path | None = "params.yaml",
    params: dict[str, Any] | None = None,
) -> ReportInputs:
    """Gather every stage output under ``root`` (relative directories are taken from ``root``)."""
    root = Path(root)
    metrics_dir, reports_dir, plots_dir, models_dir = (
        root / Path(d) for d in (metrics_dir, reports_dir, plots_dir, models_dir)
    )
    missing: list[str] = []
    params_text = None
    if params is None and params_path is not None:
        ppath = root / Path(params_path)
        if ppath.is_file():
            try:
                params_text = ppath.read_text(encoding="utf-8")
                params = yaml.safe_load(params_text) or {}
            except (OSError, yaml.YAMLError) as exc:
                missing.append(f"{ppath} (unreadable: {exc})")
        else:
            missing.append(f"{ppath} (absent)")
    elif params is not None:
        params_text = yaml.safe_dump(params, sort_keys=False)
    names = assays or _discover_assays(root, metrics_dir, reports_dir, params)
    items = []
    for name in names:
        a = AssayInputs(name=name)
        a.metrics = read_json(metrics_dir / f"{name}.json", missing)
        a.resolution = read_json(metrics_dir / f"{name}_resolution.json", missing)
        rdir = reports_dir / name
        a.oof = read_csv(rdir / "oof.csv", missing)
        a.folds = read_csv(rdir / "folds.csv", missing)
        a.selection = read_json(rdir / "selection.json", missing)
        a.promotion = read_json(rdir / "promotion.json", missing)
        if (rdir / "rollback.json").is_file():  # `ms2img rollback` by hand after that promotion
            a.rollback = read_json(rdir / "rollback.json", missing)
        a.drivers = read_csv(rdir / "drivers.csv", missing)
        a.drivers_csv = rdir / "drivers.csv" if a.drivers is not None else None
        if a.drivers is not None:
            a.drivers_meta = read_json(rdir / "drivers.json", missing)
        a.cards = _model_cards(models_dir / name)
        pdir = plots_dir / name
        if pdir.is_dir():
            a.plots = {p.stem: p for p in sorted(pdir.glob("*.png"))}
        if rdir.is_dir():  # figures written next to the tables (e.g. ms2img explain's drivers.png)
            a.plots.update({p.stem: p for p in sorted(rdir.glob("*.png")) if p.stem not in a.plots})
        items.append(a)
    version, source = data_version(root)
    drift_plots = sorted({*reports_dir.glob("drift*.png"), *plots_dir.glob("drift*.png")}) if root.is_dir() else []
    assays_csv = root / "data" / "raw" / "assays.csv"
    return ReportInputs(
        root=root,
        assays=items,
        params=params,
        params_text=params_text,
        validation=read_json(reports_dir / "validation.json", missing),
        validation_html=reports_dir / "validation.html" if (reports_dir / "validation.html").is_file() else None,
        drift=read_json(reports_dir / "drift.json", missing),
        drift_plots=drift_plots,
        data_version=version,
        data_version_source=source,
        images=_images_file(root, params),
        assays_csv=assays_csv if assays_csv.is_file() else None,
        missing=missing,
    )
