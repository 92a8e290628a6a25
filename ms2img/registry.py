"""Model registry: one registered model ``ms2img-<assay>`` per assay, one version per trained family model.

Every ``models/<assay>/<family>/`` folder (``FamilyModel``) is registered as a version of ``ms2img-<assay>``
(tag ``family``), logged from code (``ms2img/pyfunc_model.py``) with the ``ms2img`` package in ``code_paths``, its
files as artifacts (``.keras`` / ``.skops``, no pickle), a real input signature, an input example, an
applicability-domain reference and a model card as the version's description.

``@champion`` follows ``reports/<assay>/selection.json``'s winner, safely:

* **new accessions** (in the challenger's ``oof.csv`` but not in the champion's ``accessions.txt``): both models
  are scored on exactly those accessions, labelled with the champion's stored label scaling, each without having
  seen them (the champion predicts them through its served pyfunc, the challenger brings its out-of-fold
  predictions). The challenger wins only when its AUC exceeds the champion's by more than ``z`` standard errors
  of the AUC difference (stratified paired bootstrap over the accessions), a margin taken from the measured
  uncertainty, not a fixed number.
* **no new accessions** (first training, same data): the selection's paired comparison decides (its winner, ties
  to the simpler model); a refit of the champion's own family replaces it when its cross-validated AUC is not lower.

A rejected challenger keeps the ``challenger`` alias with the reason tagged (``promotion.rejected``). Promotion is
a compare-and-set: it runs under a file lock next to a local store, and the champion is re-read right before the
alias moves; if it changed, the comparison is redone against the new champion.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
AUC_TAG = "auc_mean"
DATA_TAG = "data.hash"
CODE_TAG = "code.version"
FAMILY_TAG = "family"
CONTENT_TAG = "content.hash"
SCALING_TAG = "label_scaling"
REJECTED_TAG = "promotion.rejected"
PACKAGE_DIR = Path(__file__).resolve().parent
PYFUNC_CODE = PACKAGE_DIR / "pyfunc_model.py"
DEFAULT_Z = 1.645  # one-sided 95 %: better by more than the noise of the comparison
MIN_PER_CLASS = 3  # fewer new accessions of a class than this: the new-data comparison cannot decide
EXAMPLE_ROWS = 2000


def model_name(assay: str, kind: str | None = None, prefix: str = "ms2img") -> str:
    """Registered model of an assay: ``ms2img-DPPH`` (every family is a version of it; ``kind`` is ignored)."""
    return f"{prefix}-{assay}"


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


# ----------------------------------------------------------------------------------------------- locking
@contextlib.contextmanager
def registry_lock(name: str, timeout: float = 600.0) -> Iterator[Path | None]:
    """An exclusive lock for ``name``'s aliases next to a local store (sqlite / file); no-op for a server store
    (there the re-check before moving the alias does the compare-and-set)."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    folder = None
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).resolve().parent
    elif uri.startswith("file:") or "://" not in uri:
        folder = Path(uri.removeprefix("file://").removeprefix("file:")).resolve()
    if folder is None:
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.promote.lock"
    with path.open("a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigError(f"another promotion of '{name}' holds {path} for over {timeout:.0f} s") from None
                time.sleep(0.2)
        try:
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------------------------- helpers
def _alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _set_alias(name: str, alias: str, version: str, reason: str) -> None:
    client = _client()
    client.set_registered_model_alias(name, alias, version)
    client.set_model_version_tag(name, version, f"alias.{alias}.reason", reason[:4900])
    client.set_model_version_tag(name, version, f"alias.{alias}.at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    log.info("%s: alias %s -> version %s (%s)", name, alias, version, reason)


def next_version(name: str) -> str:
    """The version number the registry will give the next registration of ``name``."""
    from mlflow.exceptions import MlflowException

    try:
        versions = _client().search_model_versions(f"name='{name}'")
    except MlflowException:
        return "1"
    return str(max((int(v.version) for v in versions), default=0) + 1)


def _versions(name: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        return list(_client().search_model_versions(f"name='{name}'"))
    except MlflowException:
        return []


def require_model(name: str) -> None:
    """Raise a clear ConfigError when ``name`` is not registered (nothing is changed)."""
    from mlflow.exceptions import MlflowException

    try:
        _client().get_registered_model(name)
    except MlflowException:
        raise ConfigError(
            f"no registered model '{name}' (train the assay and run `ms2img promote --assay ...`)"
        ) from None


def require_alias(name: str, alias: str) -> str:
    """The version ``alias`` points at; a clear ConfigError when the model or the alias does not exist."""
    require_model(name)
    version = _alias_version(name, alias)
    if version is None:
        raise ConfigError(f"'{name}' has no '{alias}' alias yet (promote a version: `ms2img promote --assay ...`)")
    return version


def content_hash(folder: str | Path) -> str:
    """SHA-256 over a model folder's file names and bytes: the same folder is registered once."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(folder)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _metric(card: dict, key: str) -> dict[str, float]:
    m = (card.get("metrics") or {}).get(key) or {}
    if isinstance(m, int | float):
        return {"mean": float(m)}
    return {k: float(v) for k, v in m.items() if isinstance(v, int | float)}


def _fmt_metric(m: dict[str, float]) -> str:
    if "mean" not in m:
        return "n/a"
    text = f"{m['mean']:.3f}"
    if "sd" in m:
        text += f" ± {m['sd']:.3f} (SD)"
    if "ci_low" in m and "ci_high" in m:
        text += f", 95 % CI {m['ci_low']:.3f}-{m['ci_high']:.3f}"
    return text


def model_card(card: dict[str, Any], *, version: str, data_hash: str, code_version: str, trained_at: str) -> str:
    """The version description shown in the registry (markdown)."""
    counts = card.get("class_counts") or {}
    scaling = card.get("label_scaling") or {}
    lines = [
        (
            f"**{card.get('assay')} · {card.get('family')}** (version {version}): P(high activity) per accession "
            "from raw LC-MS/MS peaks."
        ),
        "",
        "| | |",
        "|---|---|",
        f"| AUC (cross-validated) | {_fmt_metric(_metric(card, 'auc'))} |",
        f"| balanced accuracy | {_fmt_metric(_metric(card, 'balanced_accuracy'))} |",
        f"| MCC | {_fmt_metric(_metric(card, 'mcc'))} |",
        (
            f"| class counts | {', '.join(f'{k}: {v}' for k, v in counts.items()) or 'n/a'} "
            f"({card.get('n_accessions', 'n/a')} accessions) |"
        ),
        (
            f"| label scaling | normalised = (value - {scaling.get('min', '?')}) / ({scaling.get('max', '?')} - "
            f"{scaling.get('min', '?')}); low < {scaling.get('low', 0.4)}, high > {scaling.get('high', 0.6)} |"
        ),
        f"| decision threshold | {float(card.get('threshold', 0.5)):.3f} on P(high) |",
        f"| input | {card.get('input')} ({_input_detail(card)}) |",
        f"| data version (DVC) | `{data_hash}` |",
        f"| code version | `{code_version}` |",
        f"| trained | {trained_at} ({float(card.get('seconds', 0) or 0):.0f} s) |",
    ]
    return "\n".join(lines)


def _input_detail(card: dict) -> str:
    if card.get("input") == "image":
        r = card.get("render") or {}
        return f"{r.get('width')}x{r.get('height')} fingerprint, transform {r.get('transform', 'none')}"
    m = card.get("matching") or {}
    return f"training features matched by MS1/RT/{m.get('method', 'MS2')} mean similarity > {m.get('threshold', 0.8)}"


def registered_model_description(assay: str) -> str:
    """The registered model's description: what it predicts and how to call it."""
    return (
        f"Predicts whether a natural-product extract is **high or low in {assay} activity** from its untargeted "
        "LC-MS/MS peaks (no compound identification). One version per model family (tag `family`: cnn, rf-image, "
        "rf-cosine, rf-entropy); `@champion` is the safely promoted best one, `@challenger` the latest one that "
        "was not promoted (reason in its tags).\n\n"
        f"Call: `ms2img serve --assay {assay}` (or `mlflow models serve -m models:/ms2img-{assay}@champion`), then "
        "POST `/invocations` with `Content-Type: application/json` and one row per precursor: "
        '`{"dataframe_records": [{"accession": "S1", "precursor_mz": 609.1461, "precursor_intensity": 152000, '
        '"rt_min": 6.2, "msms": "300.0274:1200 301.0352:8800"}]}`. The answer per accession: `probability` '
        "(P(high)), `class`, `family`, `model_version`, and `in_domain` / `domain_note` (false = the accession is "
        "unlike the training data: treat the class as 'cannot say')."
    )


def _pip_requirements(family: str) -> list[str]:
    """Pinned requirements of the served environment; ms2img itself travels in ``code_paths``."""
    import importlib.metadata as md

    pkgs = ["mlflow", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "skops", "numba", "tqdm", "pyyaml"]
    pkgs += ["keras", "tensorflow", "h5py"] if family == "cnn" else []
    pkgs += ["matchms", "ms_entropy"] if family in ("rf-cosine", "rf-entropy") else []
    pins = []
    for pkg in pkgs:
        try:
            pins.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            continue
    return pins


def _training_requests(accessions: list[str], events_dir: Path | None) -> list[tuple[str, pd.DataFrame]]:
    from ms2img.io.schema import read_events
    from ms2img.serving import events_to_request

    if events_dir is None:
        return []
    out = []
    for acc in accessions:
        path = Path(events_dir) / f"{acc}.parquet"
        if path.is_file():
            req = events_to_request(read_events(path))
            if len(req):
                out.append((acc, req))
    return out


def _domain_reference(folder: Path, requests: list[tuple[str, pd.DataFrame]]):
    """The applicability-domain reference of a model from its training accessions' requests (None without)."""
    from ms2img.domain import DomainReference
    from ms2img.serving import FamilyPredictor, RequestError

    if len(requests) < 2:
        return None
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
    return DomainReference.build(
        np.stack(xs), np.asarray(n_prec), np.concatenate(mzs), log=predictor.kind == "features"
    )


# ----------------------------------------------------------------------------------------------- registration
def register_family(
    model_dir: str | Path,
    *,
    run_id: str | None = None,
    data_hash: str,
    code_version: str,
    events_dir: str | Path | None = None,
    prefix: str = "ms2img",
    max_rows: int | None = None,
    oof: pd.DataFrame | None = None,
) -> str:
    """Register a FamilyModel folder as a version of ``<prefix>-<assay>``; returns the version (as a string).

    The same folder content (SHA-256) is registered once: a re-run returns the existing version. ``events_dir``
    (canonical events, ``data/events``) gives the input example (a training accession) and the applicability
    domain reference; without it the example is synthetic and answers carry no domain flag. ``oof`` (the rows of
    ``reports/<assay>/oof.csv``) is stored with the version as ``oof.csv`` (its own out-of-fold predictions).
    The version is logged in ``run_id`` when given, else in a new run of the assay's experiment.
    """
    import mlflow

    from ms2img import tracking
    from ms2img.models.family import FamilyModel
    from ms2img.serving import DEFAULT_MAX_ROWS, random_request, request_signature

    model_dir = Path(model_dir)
    fm = FamilyModel.load(model_dir)
    name = model_name(fm.assay, prefix=prefix)
    digest = content_hash(model_dir)
    for v in _versions(name):
        if v.tags.get(CONTENT_TAG) == digest:
            log.info("%s: %s already registered as version %s", name, model_dir, v.version)
            return str(v.version)
    requests = _training_requests(fm.accessions, Path(events_dir) if events_dir else None)
    if requests:
        example = requests[0][1].head(EXAMPLE_ROWS).reset_index(drop=True)
    else:
        example = random_request(n_precursors=50, n_fragments=10, seed=0, accession="EXAMPLE")
    trained_at = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime((model_dir / "model.json").stat().st_mtime))
    card = fm.card
    auc = _metric(card, "auc")
    with tempfile.TemporaryDirectory(prefix="ms2img-register-") as tmp:
        staged = Path(tmp) / "model_dir"
        shutil.copytree(model_dir, staged)
        domain = _domain_reference(staged, requests)
        if domain is not None:
            from ms2img.domain import FILE

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
                info = mlflow.pyfunc.log_model(
                    name=fm.family,
                    python_model=str(PYFUNC_CODE),
                    artifacts={"model_dir": str(staged)},
                    model_config=config,
                    code_paths=[str(PACKAGE_DIR)],
                    signature=request_signature(),
                    input_example=example,
                    pip_requirements=_pip_requirements(fm.family),
                )
                run_id = run.info.run_id
            scaling = card.get("label_scaling") or {}
            tags = {
                FAMILY_TAG: fm.family,
                "assay": fm.assay,
                CONTENT_TAG: digest,
                DATA_TAG: data_hash or "unknown",
                CODE_TAG: code_version or "unknown",
                SCALING_TAG: json.dumps(scaling, sort_keys=True),
                "threshold": f"{fm.threshold:.6g}",
                "n_accessions": str(card.get("n_accessions", len(fm.accessions))),
                "class_counts": json.dumps(card.get("class_counts") or {}, sort_keys=True),
                "run_id": run_id,
                "trained_at": trained_at,
                "domain": "stored" if domain is not None else "none",
                **{f"auc_{k}": f"{v:.6f}" for k, v in auc.items()},
            }
            mv = mlflow.register_model(info.model_uri, name, tags=tags)
            if str(mv.version) != version:  # someone registered in between without the lock
                _client().set_model_version_tag(name, mv.version, "note", f"served model_version says {version}")
            version = str(mv.version)
            client = _client()
            client.update_model_version(
                name,
                version,
                description=model_card(
                    card, version=version, data_hash=data_hash, code_version=code_version, trained_at=trained_at
                ),
            )
            client.update_registered_model(name, description=registered_model_description(fm.assay))
    log.info("%s: registered %s as version %s", name, model_dir, version)
    return version


# ----------------------------------------------------------------------------------------------- decisions
@dataclass
class PromotionDecision:
    """What a promotion decided and why (also tagged on the version and written as JSON reports)."""

    name: str
    candidate: str
    champion_before: str | None
    promoted: bool
    reason: str
    rule: str = ""
    family: str | None = None
    champion_family: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    registered: dict[str, str] = field(default_factory=dict)

    @property
    def champion_after(self) -> str | None:
        return self.candidate if self.promoted else self.champion_before

    @property
    def rejected(self) -> bool:
        return not self.promoted and self.rule not in ("already-champion",)

    def metrics(self, champion_auc: float | None = None) -> dict[str, float | int]:
        """Numbers only (a DVC metrics file)."""
        out: dict[str, float | int] = {
            "promoted": int(self.promoted),
            "rejected": int(self.rejected),
            "candidate_version": int(self.candidate),
            "champion_version": int(self.champion_after) if self.champion_after else 0,
        }
        if champion_auc is not None and math.isfinite(champion_auc):
            out["champion_auc"] = round(float(champion_auc), 6)
        for k, v in self.evidence.items():
            if isinstance(v, bool):
                out[k] = int(v)
            elif isinstance(v, int | float) and math.isfinite(float(v)):
                out[k] = round(float(v), 6) if isinstance(v, float) else v
        return out

    def report(self) -> dict[str, Any]:
        return {**asdict(self), "champion_after": self.champion_after, "rejected": self.rejected}


def smoke_predict(name: str, version: str) -> str | None:
    """Load the version as a pyfunc and predict its own input example; None if fine, else one line saying why."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        example = model.input_example
        if example is None:
            return "model has no input example to smoke-test"
        out = model.predict(example)
        prob = out["probability"].to_numpy(dtype=float)
        if len(prob) == 0 or not ((prob >= 0) & (prob <= 1)).all():
            return f"smoke prediction returned invalid probabilities {prob[:5]}"
    except Exception as exc:  # noqa: BLE001 - any failure means "do not serve", with the reason
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"cannot be served: {exc.__class__.__name__}: {first[:300]}"
    return None


def _tags(name: str, version: str) -> dict[str, str]:
    return dict(_client().get_model_version(name, version).tags)


def _float(tags: dict[str, str], key: str) -> float:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return math.nan


def _labels_with(scaling: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """1 high / 0 low / -1 middle with a version's stored label scaling (the class it meant at training)."""
    lo_v, hi_v = float(scaling["min"]), float(scaling["max"])
    norm = (values - lo_v) / (hi_v - lo_v) if hi_v > lo_v else np.full(len(values), np.nan)
    low, high = float(scaling.get("low", 0.4)), float(scaling.get("high", 0.6))
    return np.where(norm > high, 1, np.where(norm < low, 0, -1))


def _auc_matrix(prob: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pairwise Mann-Whitney kernel (positives x negatives): 1 if ranked right, 0.5 on ties."""
    pos, neg = prob[y == 1], prob[y == 0]
    return (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])


def paired_auc_difference(
    y: np.ndarray, p_champion: np.ndarray, p_challenger: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    """AUCs of both models on the same accessions and the SE of their difference (stratified paired bootstrap)."""
    y = np.asarray(y)
    a, b = _auc_matrix(np.asarray(p_champion, float), y), _auc_matrix(np.asarray(p_challenger, float), y)
    diff = b - a
    rng = np.random.default_rng(seed)
    n_pos, n_neg = diff.shape
    ip = rng.integers(0, n_pos, (n_boot, n_pos))
    ineg = rng.integers(0, n_neg, (n_boot, n_neg))
    boots = np.array([diff[ip[k]][:, ineg[k]].mean() for k in range(n_boot)])
    return {
        "champion_auc_new": float(a.mean()),
        "challenger_auc_new": float(b.mean()),
        "auc_diff": float(diff.mean()),
        "auc_diff_se": float(boots.std(ddof=1)),
        "n_new_high": int(n_pos),
        "n_new_low": int(n_neg),
    }


def _champion_predictions(name: str, version: str, requests: list[tuple[str, pd.DataFrame]]) -> pd.Series:
    """The champion's served probabilities for accessions it never saw (through its registered pyfunc)."""
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    predictor = model.unwrap_python_model().predictor
    out = {}
    for acc, req in requests:
        try:
            out[acc] = float(predictor.predict(req)["probability"].iloc[0])
        except Exception as exc:  # noqa: BLE001 - an accession the champion cannot answer counts as p = 0.5
            log.warning("champion %s cannot predict %s (%s); scored as 0.5", version, acc, exc)
            out[acc] = 0.5
    return pd.Series(out, dtype=float)


def _champion_accessions(name: str, version: str) -> list[str]:
    import mlflow

    uri = _client().get_model_version_download_uri(name, version)
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts/model_dir/accessions.txt")
    return Path(path).read_text(encoding="utf-8").split()


def _decide(
    name: str,
    candidate: str,
    champion: str | None,
    *,
    oof: pd.DataFrame | None,
    selection: dict | None,
    events_dir: Path | None,
    z: float,
    smoke: bool,
) -> tuple[bool, str, str, dict[str, Any]]:
    """(promoted, rule, reason, evidence) for ``candidate`` against the current ``champion``."""
    cand_tags = _tags(name, candidate)
    family = cand_tags.get(FAMILY_TAG, "?")
    cand_auc = _float(cand_tags, AUC_TAG)
    if champion == candidate:
        return False, "already-champion", f"version {candidate} ({family}) is already champion", {}
    failure = smoke_predict(name, candidate) if smoke else None
    if failure:
        return False, "smoke-failed", f"kept champion {champion}: challenger {candidate} {failure}", {}
    if champion is None:
        return True, "first", f"first champion: {family} (cv AUC {cand_auc:.3f})", {"challenger_cv_auc": cand_auc}
    champ_tags = _tags(name, champion)
    champ_family = champ_tags.get(FAMILY_TAG, "?")
    champ_auc = _float(champ_tags, AUC_TAG)
    evidence: dict[str, Any] = {"challenger_cv_auc": cand_auc, "champion_cv_auc": champ_auc}

    # 1. new accessions: both models on data neither has seen, labelled with the champion's scaling
    new_note = ""
    if oof is not None and len(oof) and SCALING_TAG in champ_tags:
        seen = set(_champion_accessions(name, champion))
        mine = oof[oof["family"] == family]
        per_acc = mine.groupby("accession").agg(probability=("probability", "mean"), value=("value", "first"))
        new = per_acc[~per_acc.index.astype(str).isin(seen)]
        evidence["n_new_accessions"] = len(new)
        if len(new):
            scaling = json.loads(champ_tags[SCALING_TAG])
            y = _labels_with(scaling, new["value"].to_numpy(float))
            new = new[y >= 0].assign(label=y[y >= 0])
            n_hi, n_lo = int((new["label"] == 1).sum()), int((new["label"] == 0).sum())
            if min(n_hi, n_lo) >= MIN_PER_CLASS:
                requests = _training_requests([str(a) for a in new.index], events_dir)
                got = {a for a, _ in requests}
                new = new[new.index.astype(str).isin(got)]
                if min(int((new["label"] == 1).sum()), int((new["label"] == 0).sum())) >= MIN_PER_CLASS:
                    p_champ = _champion_predictions(name, champion, requests).reindex(new.index.astype(str))
                    stats = paired_auc_difference(
                        new["label"].to_numpy(), p_champ.to_numpy(), new["probability"].to_numpy()
                    )
                    margin = z * stats["auc_diff_se"]
                    evidence.update(stats, margin=margin, z=z)
                    head = (
                        f"on {len(new)} new accessions ({stats['n_new_high']} high / {stats['n_new_low']} low, "
                        f"champion's label scaling) challenger {candidate} ({family}, out-of-fold) AUC "
                        f"{stats['challenger_auc_new']:.3f} vs champion {champion} ({champ_family}, unseen) "
                        f"{stats['champion_auc_new']:.3f}: difference {stats['auc_diff']:+.3f}, margin {margin:.3f} "
                        f"({z:g} x SE {stats['auc_diff_se']:.3f})"
                    )
                    if stats["auc_diff"] > margin:
                        return True, "new-accessions", f"promoted: {head}", evidence
                    return (
                        False,
                        "new-accessions",
                        f"kept champion {champion}: {head}: not better by the margin",
                        evidence,
                    )
                new_note = "; new accessions without events to score the champion on"
            else:
                new_note = f"; too few new labelled accessions to compare ({n_hi} high / {n_lo} low < {MIN_PER_CLASS})"
    # 2. no (usable) new accessions: the selection's paired comparison on the same folds
    winner = (selection or {}).get("winner")
    if family == champ_family:
        if math.isnan(cand_auc) or (not math.isnan(champ_auc) and cand_auc < champ_auc):
            return False, "same-family", (
                f"kept champion {champion}: refit {candidate} of {family} has cv AUC {cand_auc:.3f} < {champ_auc:.3f}"
                f"{new_note}"
            ), evidence  # fmt: skip
        return True, "same-family", (
            f"promoted: refit of {family} on the same accessions, cv AUC {cand_auc:.3f} vs {champ_auc:.3f}{new_note}"
        ), evidence  # fmt: skip
    if winner is None:
        return (
            False,
            "no-selection",
            f"kept champion {champion}: no selection.json to compare {family} with {champ_family}",
            evidence,
        )
    paired = (selection or {}).get("paired") or {}
    entry, sign = paired.get(f"{family} vs {champ_family}"), 1.0
    if entry is None and f"{champ_family} vs {family}" in paired:
        entry, sign = paired[f"{champ_family} vs {family}"], -1.0
    detail = ""
    if entry:
        d = sign * float(entry.get("diff", math.nan))
        lo, hi = sorted((sign * float(entry.get("ci_low", math.nan)), sign * float(entry.get("ci_high", math.nan))))
        evidence.update(paired_diff=d, paired_ci_low=lo, paired_ci_high=hi)
        detail = f" (paired AUC difference {family} - {champ_family} {d:+.3f}, CI {lo:+.3f} to {hi:+.3f})"
    if winner == family:
        return (
            True,
            "selection",
            f"promoted: selection winner {family} over champion's {champ_family}{detail}{new_note}",
            evidence,
        )
    return False, "selection", (
        f"kept champion {champion}: selection ranks {winner} first, not {family}{detail}{new_note}"
    ), evidence  # fmt: skip


def promote_version(
    name: str,
    candidate: str | None = None,
    *,
    oof: pd.DataFrame | None = None,
    selection: dict | None = None,
    events_dir: str | Path | None = None,
    z: float = DEFAULT_Z,
    smoke: bool = True,
    max_retries: int = 5,
) -> PromotionDecision:
    """Compare ``candidate`` (default: newest version) with the champion and move ``@champion`` if it wins.

    Compare-and-set: under :func:`registry_lock`, and the champion is re-read right before the alias moves; if it
    changed meanwhile (another promoter without the lock), the comparison is redone against the new champion.
    """
    require_model(name)
    versions = _versions(name)
    if not versions:
        raise ConfigError(f"registered model '{name}' has no versions")
    known = {str(v.version) for v in versions}
    if candidate is None:
        candidate = str(max(int(v) for v in known))
    elif str(candidate) not in known:
        raise ConfigError(f"'{name}' has no version {candidate}; versions: {sorted(int(v) for v in known)}")
    candidate = str(candidate)
    client = _client()
    with registry_lock(name):
        for _ in range(max_retries):
            champion = _alias_version(name, CHAMPION)
            promoted, rule, reason, evidence = _decide(
                name, candidate, champion, oof=oof, selection=selection,
                events_dir=Path(events_dir) if events_dir else None, z=z, smoke=smoke,
            )  # fmt: skip
            if _alias_version(name, CHAMPION) != champion:
                log.warning("%s: champion changed during the comparison; comparing again", name)
                continue
            break
        else:
            raise ConfigError(f"'{name}': the champion kept changing during {max_retries} comparisons; try again")
        if promoted:
            _set_alias(name, CHAMPION, candidate, reason)
            if _alias_version(name, CHALLENGER) == candidate:
                client.delete_registered_model_alias(name, CHALLENGER)
            if REJECTED_TAG in _tags(name, candidate):
                client.delete_model_version_tag(name, candidate, REJECTED_TAG)
        elif rule != "already-champion":
            _set_alias(name, CHALLENGER, candidate, reason)
            client.set_model_version_tag(name, candidate, REJECTED_TAG, reason[:4900])
            log.warning("%s: %s", name, reason)
    tags = _tags(name, candidate)
    champ_family = _tags(name, champion).get(FAMILY_TAG) if champion else None
    return PromotionDecision(
        name, candidate, champion, promoted, reason, rule, tags.get(FAMILY_TAG), champ_family, evidence
    )


def promote(
    name: str, candidate: str | None = None, margin: float | None = None, smoke: bool = True
) -> PromotionDecision:
    """Backwards-compatible entry point: :func:`promote_version` without new-data evidence (``margin`` unused)."""
    return promote_version(name, candidate, smoke=smoke)


def promote_assay(
    assay: str,
    *,
    models_dir: str | Path = "models",
    reports_dir: str | Path = "reports",
    events_dir: str | Path | None = "data/events",
    data_hash: str,
    code_version: str,
    prefix: str = "ms2img",
    run_id: str | None = None,
    z: float = DEFAULT_Z,
    max_rows: int | None = None,
) -> PromotionDecision:
    """Register every ``models/<assay>/<family>/`` and promote ``reports/<assay>/selection.json``'s winner safely."""
    from ms2img.models.family import FAMILIES

    folder = Path(models_dir) / assay
    found = [f for f in FAMILIES if (folder / f / "model.json").is_file()]
    if not found:
        raise InputFileError(folder, f"no family model folders ({', '.join(FAMILIES)}) to register")
    sel_path = Path(reports_dir) / assay / "selection.json"
    try:
        selection = json.loads(sel_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(sel_path, f"unreadable model selection ({exc.__class__.__name__})") from None
    winner = selection.get("winner")
    if winner not in found:
        raise InputFileError(sel_path, f"winner {winner!r} has no model folder under {folder} (found {found})")
    oof_path = Path(reports_dir) / assay / "oof.csv"
    oof = None
    if oof_path.is_file():
        try:
            oof = pd.read_csv(oof_path, dtype={"accession": str})
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputFileError(oof_path, f"unreadable out-of-fold predictions ({exc.__class__.__name__})") from None
        need = {"accession", "family", "probability", "value"}
        if missing := sorted(need - set(oof.columns)):
            raise InputFileError(oof_path, f"missing columns {missing}")
    registered = {}
    for fam in found:
        registered[fam] = register_family(
            folder / fam, run_id=run_id, data_hash=data_hash, code_version=code_version, events_dir=events_dir,
            prefix=prefix, max_rows=max_rows, oof=None if oof is None else oof[oof["family"] == fam],
        )  # fmt: skip
    name = model_name(assay, prefix=prefix)
    decision = promote_version(name, registered[winner], oof=oof, selection=selection, events_dir=events_dir, z=z)
    decision.registered = registered
    return decision


def champion_auc(name: str) -> float | None:
    """The champion's cross-validated AUC (tag), None without a champion."""
    version = _alias_version(name, CHAMPION)
    return None if version is None else _float(_tags(name, version), AUC_TAG)


def rollback(name: str, to_version: str, reason: str | None = None, smoke: bool = True) -> PromotionDecision:
    """Point ``champion`` back at ``to_version`` after a smoke prediction on it (refused with one line if it fails)."""
    require_model(name)
    known = {str(v.version) for v in _versions(name)}
    if str(to_version) not in known:
        raise ConfigError(f"'{name}' has no version {to_version}; versions: {sorted(int(v) for v in known)}")
    failure = smoke_predict(name, str(to_version)) if smoke else None
    if failure:
        raise ConfigError(f"refusing rollback of '{name}' to version {to_version}: it {failure}")
    with registry_lock(name):
        before = _alias_version(name, CHAMPION)
        why = reason or f"rollback from version {before}"
        _set_alias(name, CHAMPION, str(to_version), why)
    family = _tags(name, str(to_version)).get(FAMILY_TAG)
    return PromotionDecision(name, str(to_version), before, True, why, "rollback", family)


# kept for callers of the earlier API
def register(model_uri: str, name: str, tags: dict[str, str]) -> str:
    """Register ``model_uri`` under ``name`` with tags; return the version."""
    import mlflow

    mv = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()})
    return str(mv.version)
