"""Promotion as a compare-and-set: register an assay's family models, move ``@champion`` when the decision says so."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ms2img.errors import ConfigError, InputFileError
from ms2img.registry.decision import DEFAULT_Z, PromotionDecision, decide
from ms2img.registry.registration import register_family
from ms2img.registry.store import (
    AUC_TAG,
    CHALLENGER,
    CHAMPION,
    FAMILY_TAG,
    PENDING,
    REJECTED_TAG,
    STATUS_TAG,
    TRAINING_TAG,
    alias_version,
    float_tag,
    log,
    mlflow_client,
    model_name,
    model_versions,
    registry_lock,
    require_model,
    set_alias,
    version_tags,
)


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
    beyond_chance: bool = True,
) -> PromotionDecision:
    """Compare ``candidate`` (default: newest version) with the champion and move ``@champion`` if it wins.

    Compare-and-set: under :func:`registry_lock`, and the champion is re-read right before the alias moves; if it
    changed meanwhile (another promoter without the lock), the comparison is redone against the new champion.
    """
    require_model(name)
    versions = model_versions(name)
    if not versions:
        raise ConfigError(f"registered model '{name}' has no versions")
    known = {str(v.version) for v in versions}
    if candidate is None:
        candidate = str(max(int(v) for v in known))
    elif str(candidate) not in known:
        raise ConfigError(f"'{name}' has no version {candidate}; versions: {sorted(int(v) for v in known)}")
    candidate = str(candidate)
    client = mlflow_client()
    with registry_lock(name):
        for _ in range(max_retries):
            champion = alias_version(name, CHAMPION)
            promoted, rule, reason, evidence = decide(
                name, candidate, champion, oof=oof, selection=selection,
                events_dir=Path(events_dir) if events_dir else None, z=z, smoke=smoke, beyond_chance=beyond_chance,
            )  # fmt: skip
            if alias_version(name, CHAMPION) != champion:
                log.warning("%s: champion changed during the comparison; comparing again", name)
                continue
            break
        else:
            raise ConfigError(f"'{name}': the champion kept changing during {max_retries} comparisons; try again")
        client.set_model_version_tag(name, candidate, STATUS_TAG, CHAMPION if promoted or rule == "already-champion"
                                     else CHALLENGER)  # fmt: skip
        if promoted:
            set_alias(name, CHAMPION, candidate, reason)
            if alias_version(name, CHALLENGER) == candidate:
                client.delete_registered_model_alias(name, CHALLENGER)
        elif rule != "already-champion":
            set_alias(name, CHALLENGER, candidate, reason)
            client.set_model_version_tag(name, candidate, REJECTED_TAG, reason[:4900])
            log.warning("%s: %s", name, reason)
    tags = version_tags(name, candidate)
    champ_family = version_tags(name, champion).get(FAMILY_TAG) if champion else None
    return PromotionDecision(
        name, candidate, champion, promoted, reason, rule, tags.get(FAMILY_TAG), champ_family, evidence
    )


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
    beyond_chance: bool = True,
) -> PromotionDecision:
    """Register every ``models/<assay>/<family>/`` and promote ``reports/<assay>/selection.json``'s winner safely."""
    from ms2img.models.family import FAMILIES, FamilyModel

    folder = Path(models_dir) / assay
    sel_path = Path(reports_dir) / assay / "selection.json"
    try:
        selection = json.loads(sel_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(sel_path, f"unreadable model selection ({exc.__class__.__name__})") from None
    trained = [f for f in selection.get("families") or FAMILIES if (folder / f / "model.json").is_file()]
    if not trained:
        raise InputFileError(folder, f"no family model folders ({', '.join(FAMILIES)}) to register")
    run = _read_json(Path(reports_dir) / assay / "run.json")
    key = run.get("training_key")
    family_runs = run.get("mlflow_family_runs") or {}  # each model is logged in its own family's run
    found = []
    for fam in trained:
        card_key = FamilyModel.read_card(folder / fam).get("training_key")
        if key and card_key != key:
            log.warning("%s: not registered, it was not trained by the run of reports/%s/run.json", folder / fam, assay)
            continue
        found.append(fam)
    winner = selection.get("winner")
    if winner not in found:
        raise InputFileError(
            sel_path, f"winner {winner!r} has no model folder of this run under {folder} (found {found})"
        )
    oof_path = Path(reports_dir) / assay / "oof.csv"
    oof = None
    if oof_path.is_file():
        try:
            oof = pd.read_csv(oof_path, dtype={"accession": str})
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise InputFileError(oof_path, f"unreadable out-of-fold predictions ({exc.__class__.__name__})") from None
        answer = "prediction" if selection.get("mode") == "regression" else "probability"
        need = {"accession", "family", answer, "value"}
        if missing := sorted(need - set(oof.columns)):
            raise InputFileError(oof_path, f"missing columns {missing}")
    name = model_name(assay, prefix=prefix)
    resolve_interrupted(name, {(fam, key) for fam in found} if key else set())
    registered = {}
    for fam in found:
        registered[fam] = register_family(
            folder / fam, run_id=family_runs.get(fam, run_id), data_hash=data_hash, code_version=code_version,
            events_dir=events_dir, prefix=prefix, max_rows=max_rows,
            oof=None if oof is None else oof[oof["family"] == fam],
        )  # fmt: skip
    decision = promote_version(
        name, registered[winner], oof=oof, selection=selection, events_dir=events_dir, z=z, beyond_chance=beyond_chance
    )
    client = mlflow_client()
    for fam, version in registered.items():
        if fam != winner and version_tags(name, version).get(STATUS_TAG) == PENDING:
            client.set_model_version_tag(name, version, STATUS_TAG, "not-winner")
    decision.registered = registered
    return decision


def resolve_interrupted(name: str, this_run: set[tuple[str, str]]) -> list[str]:
    """Settle versions a killed promote left ``pending`` (registered, never judged): one of this run's models
    (same family and training key) is adopted, with the reason tagged; any other is marked abandoned. Returns the
    versions it settled."""
    client = mlflow_client()
    settled = []
    for v in model_versions(name):
        tags = v.tags or {}
        if tags.get(STATUS_TAG) != PENDING:
            continue
        version = str(v.version)
        if (tags.get(FAMILY_TAG), tags.get(TRAINING_TAG)) in this_run:
            note = (
                "registered by a promote that did not finish; adopted by the next one (same family, data, params, code)"
            )
            client.set_model_version_tag(name, version, "promotion.adopted", note)
        else:
            client.set_model_version_tag(name, version, STATUS_TAG, "abandoned")
            note = "registered by a promote that did not finish; abandoned (not the model of the run now promoting)"
            client.set_model_version_tag(name, version, "promotion.abandoned", note)
        log.warning("%s version %s: %s", name, version, note)
        settled.append(version)
    return settled


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def champion_auc(name: str) -> float | None:
    """The champion's cross-validated AUC (tag), None without a champion."""
    version = alias_version(name, CHAMPION)
    return None if version is None else float_tag(version_tags(name, version), AUC_TAG)
