"""Model registry policy: ``ms2img-<assay>`` with aliases ``champion`` and ``challenger``.

A new version becomes challenger. It replaces the champion only if its cross-validated AUC is not worse than
the champion's by more than a margin and a smoke prediction on its input example succeeds; otherwise the
champion stays and the reason is recorded. Every alias change is tagged on the model version with its reason.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from ms2img.errors import ConfigError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
AUC_TAG = "cv_auc_mean"
DATA_TAG = "data.hash"


def model_name(assay: str, kind: str = "cnn", prefix: str = "ms2img") -> str:
    """Registered model name: ``ms2img-DPPH`` for the CNN, ``ms2img-DPPH-rf`` for the RF baseline."""
    return f"{prefix}-{assay}" if kind == "cnn" else f"{prefix}-{assay}-{kind}"


@dataclass(frozen=True)
class PromotionDecision:
    """What ``promote`` decided and why (also written to the version's tags)."""

    name: str
    candidate: str
    champion_before: str | None
    promoted: bool
    reason: str

    @property
    def champion_after(self) -> str | None:
        return self.candidate if self.promoted else self.champion_before


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def next_version(name: str) -> str:
    """The version number the registry will give the next registration of ``name``."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return "1"
    return str(max((int(v.version) for v in versions), default=0) + 1)


def register(model_uri: str, name: str, tags: dict[str, str]) -> str:
    """Register ``model_uri`` under ``name`` with tags (AUC, data hash, run id); return the version."""
    import mlflow

    mv = mlflow.register_model(model_uri, name, tags={k: str(v) for k, v in tags.items()})
    return str(mv.version)


def _alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _set_alias(name: str, alias: str, version: str, reason: str) -> None:
    client = _client()
    client.set_registered_model_alias(name, alias, version)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    client.set_model_version_tag(name, version, f"alias.{alias}.reason", reason)
    client.set_model_version_tag(name, version, f"alias.{alias}.at", stamp)
    log.info("%s: alias %s -> version %s (%s)", name, alias, version, reason)


def _version_auc(name: str, version: str) -> float:
    tags = _client().get_model_version(name, version).tags
    try:
        return float(tags[AUC_TAG])
    except (KeyError, ValueError):
        return math.nan


def smoke_predict(name: str, version: str) -> str | None:
    """Load the version and predict its own input example; return None if fine, else what went wrong."""
    import mlflow

    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        example = model.input_example
        if example is None:
            return "model has no input example to smoke-test"
        out = model.predict(example)
        prob = out["probability"].to_numpy(dtype=float) if "probability" in out else out.iloc[:, 0].to_numpy(float)
        if len(prob) == 0 or not ((prob >= 0) & (prob <= 1)).all():
            return f"smoke prediction returned invalid probabilities {prob[:5]}"
    except Exception as exc:  # noqa: BLE001 - any failure means "do not promote", with the reason
        return f"smoke prediction failed: {exc.__class__.__name__}: {exc}"
    return None


def require_model(name: str) -> None:
    """Raise a clear ConfigError when ``name`` is not registered (nothing is changed)."""
    from mlflow.exceptions import MlflowException

    try:
        _client().get_registered_model(name)
    except MlflowException:
        raise ConfigError(f"no registered model '{name}' (train the assay first: `ms2img train --assay ...`)") from None


def require_alias(name: str, alias: str) -> str:
    """The version ``alias`` points at; a clear ConfigError when the model or the alias does not exist."""
    require_model(name)
    version = _alias_version(name, alias)
    if version is None:
        raise ConfigError(f"'{name}' has no '{alias}' alias yet (promote a version: `ms2img promote --assay ...`)")
    return version


def promote(name: str, candidate: str | None = None, margin: float = 0.02, smoke: bool = True) -> PromotionDecision:
    """Make ``candidate`` (default: the newest version) challenger and, if it is good enough, champion."""
    require_model(name)
    client = _client()
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        raise ConfigError(f"registered model '{name}' has no versions")
    if candidate is None:
        candidate = str(max(int(v.version) for v in versions))
    elif candidate not in {str(v.version) for v in versions}:
        raise ConfigError(f"'{name}' has no version {candidate}; versions: {sorted(int(v.version) for v in versions)}")
    champion = _alias_version(name, CHAMPION)
    if champion == candidate:
        return PromotionDecision(name, candidate, champion, True, "already champion")

    _set_alias(name, CHALLENGER, candidate, "newly registered")
    failure = smoke_predict(name, candidate) if smoke else None
    cand_auc = _version_auc(name, candidate)
    if failure:
        reason = f"kept champion {champion}: challenger {candidate} {failure}"
        promoted = False
    elif champion is None:
        reason, promoted = f"first champion (cv AUC {cand_auc:.3f})", True
    else:
        champ_auc = _version_auc(name, champion)
        champ_data = client.get_model_version(name, champion).tags.get(DATA_TAG)
        cand_data = client.get_model_version(name, candidate).tags.get(DATA_TAG)
        note = "" if champ_data == cand_data else " (trained on different data versions)"
        if math.isnan(cand_auc):
            reason, promoted = f"kept champion {champion}: challenger {candidate} has no cv AUC", False
        elif math.isnan(champ_auc) or cand_auc >= champ_auc - margin:
            verdict = "better" if cand_auc > champ_auc else f"not worse by more than {margin}"
            reason = f"cv AUC {cand_auc:.3f} vs champion {champion} {champ_auc:.3f}: {verdict}{note}"
            promoted = True
        else:
            reason = (
                f"kept champion {champion}: challenger {candidate} cv AUC {cand_auc:.3f} is worse than "
                f"{champ_auc:.3f} by more than {margin}{note}"
            )
            promoted = False
    if promoted:
        _set_alias(name, CHAMPION, candidate, reason)
        client.delete_registered_model_alias(name, CHALLENGER)
    else:
        client.set_model_version_tag(name, candidate, "promotion.rejected", reason)
        log.warning("%s: %s", name, reason)
    return PromotionDecision(name, candidate, champion, promoted, reason)


def rollback(name: str, to_version: str, reason: str | None = None) -> PromotionDecision:
    """Point ``champion`` back at ``to_version`` (an explicit human decision, tagged with its reason)."""
    require_model(name)
    client = _client()
    known = {str(v.version) for v in client.search_model_versions(f"name='{name}'")}
    if str(to_version) not in known:
        raise ConfigError(f"'{name}' has no version {to_version}; versions: {sorted(int(v) for v in known)}")
    before = _alias_version(name, CHAMPION)
    why = reason or f"rollback from version {before}"
    _set_alias(name, CHAMPION, str(to_version), why)
    return PromotionDecision(name, str(to_version), before, True, why)
