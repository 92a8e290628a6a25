"""Registration: a FamilyModel folder becomes a version of ``<prefix>-<assay>``, logged from code with its files,
signature, input example, applicability-domain reference and model card."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ms2img.models.family import has_network
from ms2img.registry.card import card_metric, model_card, registered_model_description
from ms2img.registry.store import (
    CODE_TAG,
    CONTENT_TAG,
    DATA_TAG,
    FAMILY_TAG,
    MODE_TAG,
    PENDING,
    SCALING_TAG,
    STATUS_TAG,
    TRAINING_TAG,
    content_hash,
    log,
    mlflow_client,
    model_name,
    model_versions,
    next_version,
    registry_lock,
)
from ms2img.training.scores import PRIMARY, scores_of

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PYFUNC_CODE = PACKAGE_DIR / "serving" / "pyfunc_model.py"
EXAMPLE_ROWS = 2000


def _pip_requirements(family: str) -> list[str]:
    """Pinned requirements of the served environment; ms2img itself travels in ``code_paths``."""
    import importlib.metadata as md

    pkgs = ["mlflow", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "skops", "numba", "tqdm", "pyyaml"]
    pkgs += ["keras", "tensorflow", "h5py"] if has_network(family) else []
    pkgs += ["matchms", "ms_entropy"] if family in ("rf-cosine", "rf-entropy") else []
    pins = []
    for pkg in pkgs:
        try:
            pins.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            continue
    return pins


class TrainingEvents(NamedTuple):
    """What registration reads from the training accessions' events, once per assay (the families share it)."""

    requests: tuple[tuple[str, pd.DataFrame], ...]  # (accession, request rows), replicates merged as training did
    polarity: str  # ms2img.io.schema.one_polarity of their events
    injections: np.ndarray  # precursors (with MS/MS and a height) per injection


def training_requests(accessions: list[str], events_dir: Path | None) -> list[tuple[str, pd.DataFrame]]:
    """Request rows of each training accession (the families of one assay share them: read once)."""
    if events_dir is None:
        return []
    return list(training_events(accessions, events_dir).requests)


def training_events(accessions: list[str], events_dir: str | Path) -> TrainingEvents:
    """The training accessions' requests, ion mode and precursors per injection (:class:`TrainingEvents`).

    Why per injection. A training accession merges its injections (the union of their precursors), while a lab
    often sends one injection of a new extract: in an aligned export (the GNPS PASEF set, 4 injections per
    extract) one injection holds 814-839 precursors and a merged accession 832-842, so a floor counted on merged
    accessions called ordinary single injections "too few precursors".
    """
    return _cached_events(tuple(accessions), Path(events_dir).resolve())


DOMAIN_SAMPLE = 80  # training accessions the applicability-domain reference is built from, at most


@functools.lru_cache(maxsize=2)
def _cached_events(accessions: tuple[str, ...], events_dir: Path) -> TrainingEvents:
    from ms2img.io.schema import accession_filename, one_polarity, read_events
    from ms2img.render.scaling import MERGE_MZ_DECIMALS  # a precursor as the renderer merges replicates
    from ms2img.serving.request import events_to_request

    requests, seen, counts = [], set(), []
    for acc in accessions:
        path = Path(events_dir) / accession_filename(acc)
        if not path.is_file():
            continue
        ev = read_events(path)
        req = events_to_request(ev)
        if len(req):
            requests.append((acc, req))
        seen.update(str(v) for v in ev["polarity"].unique())
        detected = ev[ev["precursor_intensity"] > 0]
        precursor = [detected["feature_id"].astype(str), detected["precursor_mz"].round(MERGE_MZ_DECIMALS)]
        per_injection = detected.groupby([detected["replicate"].astype(str), *precursor]).size().groupby(level=0).size()
        counts.extend(int(n) for n in per_injection)
    return TrainingEvents(tuple(requests), one_polarity(seen), np.asarray(counts, dtype=np.int64))


def _domain_reference(folder: Path, events: TrainingEvents | None):
    """The applicability-domain reference of a model from its training accessions' events (requests, ion mode,
    precursors per injection); None without two requests."""
    from ms2img.serving.domain import DomainReference
    from ms2img.serving.predictor import FamilyPredictor
    from ms2img.serving.request import RequestError

    requests = list(events.requests) if events is not None else []
    if len(requests) < 2:
        return None
    step = max(1, len(requests) // DOMAIN_SAMPLE)  # an even sample bounds the cost (feature matching is per row)
    requests = requests[::step]
    predictor = FamilyPredictor.from_folder(folder)
    xs, n_prec, mzs = [], [], []
    for _, req in requests:
        try:
            inp = predictor.inputs(req)
        except RequestError:
            continue
        xs.append(inp["x"][0])
        n_prec.append(int(inp["n_precursors"][0]))
        mzs.append(inp["mz"])
    if len(xs) < 2:
        return None
    floor = events.injections if len(events.injections) else np.asarray(n_prec)
    return DomainReference.build(
        np.stack(xs), floor, np.concatenate(mzs), log=predictor.kind == "features", polarity=events.polarity
    )


# ----------------------------------------------------------------------------------------------- registration
def register_family(
    model_dir: str | Path,
    *,
    run_id: str | None = None,
    data_hash: str | None = None,
    code_version: str | None = None,
    events_dir: str | Path | None = None,
    prefix: str = "ms2img",
    max_rows: int | None = None,
    oof: pd.DataFrame | None = None,
) -> str:
    """Register a FamilyModel folder as a version of ``<prefix>-<assay>``; returns the version (as a string).

    A model is registered once: a folder with the same content (SHA-256), or of the same family with the same
    training key (same assay, data, params and code: a retrain of the same thing), returns the existing version.
    The data and code versions are the model's own (its card, written when it was trained); ``data_hash`` and
    ``code_version`` only stand in for a card without them. The new version is tagged ``promotion.status:
    pending`` until a promotion judges it, so a version left by a killed promote is recognised. ``events_dir``
    (canonical events, ``data/events``) gives the input example (a training accession) and the applicability
    domain reference; without it the example is synthetic and answers carry no domain flag. ``oof`` (the rows of
    ``reports/<assay>/oof.csv``) is stored with the version as ``oof.csv`` (its own out-of-fold predictions).
    The version is logged in ``run_id`` when given, else in a new run of the assay's experiment.
    """
    import mlflow

    from ms2img import tracking
    from ms2img.models.family import FamilyModel
    from ms2img.serving.predictor import request_signature
    from ms2img.serving.request import DEFAULT_MAX_ROWS, random_request

    model_dir = Path(model_dir)
    fm = FamilyModel.load(model_dir)
    name = model_name(fm.assay, prefix=prefix)
    digest = content_hash(model_dir)
    key = fm.card.get("training_key")
    data_hash = fm.card.get("data_version") or data_hash or "unknown"
    code_version = fm.card.get("code_version") or code_version or "unknown"
    for v in model_versions(name):
        same_training = key and v.tags.get(TRAINING_TAG) == key and v.tags.get(FAMILY_TAG) == fm.family
        if v.tags.get(CONTENT_TAG) == digest or same_training:
            log.info("%s: %s already registered as version %s", name, model_dir, v.version)
            return str(v.version)
    events = training_events(fm.accessions, events_dir) if events_dir else None
    requests = events.requests if events is not None else ()
    if requests:
        example = requests[0][1].head(EXAMPLE_ROWS).reset_index(drop=True)
    else:
        example = random_request(n_precursors=50, n_fragments=10, seed=0, accession="EXAMPLE")
    trained_at = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime((model_dir / "model.json").stat().st_mtime))
    card = fm.card
    primary = PRIMARY[fm.mode]  # auc, or spearman for a regression model
    headline = card_metric(card, primary)
    with tempfile.TemporaryDirectory(prefix="ms2img-register-") as tmp:
        staged = Path(tmp) / "model_dir"
        shutil.copytree(model_dir, staged)
        domain = _domain_reference(staged, events)
        if domain is not None:
            from ms2img.serving.domain import FILE

            domain.save(staged / FILE)
        if oof is not None and len(oof):
            oof.to_csv(staged / "oof.csv", index=False)
        with registry_lock(name):
            version = next_version(name)
            config = {"model_version": version, "max_rows": int(max_rows or DEFAULT_MAX_ROWS), "registered_model": name}
            tracking.ensure_experiment(fm.assay)
            run_ctx = mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(
                run_name=f"{fm.assay.lower()} register {fm.family}"
            )  # fmt: skip
            with run_ctx as run:
                if not run_id:  # a run of its own: give it the model's scores, which MLflow links to the model
                    mlflow.log_metrics({f"{score}_{stat}": v for score in scores_of(fm.mode)
                                        for stat, v in card_metric(card, score).items()})  # fmt: skip
                info = mlflow.pyfunc.log_model(
                    name=fm.family,
                    python_model=str(PYFUNC_CODE),
                    artifacts={"model_dir": str(staged)},
                    model_config=config,
                    code_paths=[str(PACKAGE_DIR)],
                    signature=request_signature(fm.mode),
                    input_example=example,
                    pip_requirements=_pip_requirements(fm.family),
                )
                run_id = run.info.run_id
            scaling = card.get("label_scaling") or {}
            tags = {
                FAMILY_TAG: fm.family,
                "assay": fm.assay,
                CONTENT_TAG: digest,
                DATA_TAG: data_hash,
                CODE_TAG: code_version,
                TRAINING_TAG: key or "unknown",
                STATUS_TAG: PENDING,
                SCALING_TAG: json.dumps(scaling, sort_keys=True),
                MODE_TAG: fm.mode,
                **({"threshold": f"{fm.threshold:.6g}"} if fm.mode == "classification" else {}),
                **({"units": str(card.get("units") or "")} if fm.mode == "regression" else {}),
                "n_accessions": str(card.get("n_accessions", len(fm.accessions))),
                "class_counts": json.dumps(card.get("class_counts") or {}, sort_keys=True),
                "run_id": run_id,
                "trained_at": trained_at,
                "domain": "stored" if domain is not None else "none",
                **{f"{primary}_{k}": f"{v:.6f}" for k, v in headline.items()},
            }
            mv = mlflow.register_model(info.model_uri, name, tags=tags)
            if str(mv.version) != version:  # someone registered in between without the lock
                mlflow_client().set_model_version_tag(name, mv.version, "note", f"served model_version says {version}")
            version = str(mv.version)
            client = mlflow_client()
            client.update_model_version(
                name,
                version,
                description=model_card(
                    card, version=version, data_hash=data_hash, code_version=code_version, trained_at=trained_at
                ),
            )
            client.update_registered_model(name, description=registered_model_description(fm.assay, fm.mode))
    log.info("%s: registered %s as version %s", name, model_dir, version)
    return version
