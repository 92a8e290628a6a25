"""The promotion decision: is a challenger safely better than the champion, and why (see :mod:`ms2img.registry`)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.registry.registration import training_requests
from ms2img.registry.store import AUC_TAG, FAMILY_TAG, SCALING_TAG, float_tag, log, mlflow_client, version_tags

DEFAULT_Z = 1.645  # one-sided 95 %: better by more than the noise of the comparison
MIN_PER_CLASS = 3  # fewer new accessions of a class than this: the new-data comparison cannot decide


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


def _labels_with(scaling: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """1 high / 0 low / -1 middle with a version's stored label scaling (the class it meant at training)."""
    from ms2img.labels import LabelScaling

    return LabelScaling.from_dict(scaling).labels(values)


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

    uri = mlflow_client().get_model_version_download_uri(name, version)
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts/model_dir/accessions.txt")
    return Path(path).read_text(encoding="utf-8").split()


def decide(
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
    cand_tags = version_tags(name, candidate)
    family = cand_tags.get(FAMILY_TAG, "?")
    cand_auc = float_tag(cand_tags, AUC_TAG)
    if champion == candidate:
        return False, "already-champion", f"version {candidate} ({family}) is already champion", {}
    failure = smoke_predict(name, candidate) if smoke else None
    if failure:
        return False, "smoke-failed", f"kept champion {champion}: challenger {candidate} {failure}", {}
    if champion is None:
        return True, "first", f"first champion: {family} (cv AUC {cand_auc:.3f})", {"challenger_cv_auc": cand_auc}
    champ_tags = version_tags(name, champion)
    champ_family = champ_tags.get(FAMILY_TAG, "?")
    champ_auc = float_tag(champ_tags, AUC_TAG)
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
                requests = training_requests([str(a) for a in new.index], events_dir)
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
