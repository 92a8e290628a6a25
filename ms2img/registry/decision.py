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
from ms2img.registry.store import (
    FAMILY_TAG,
    MODE_TAG,
    SCALING_TAG,
    float_tag,
    log,
    mlflow_client,
    score_tag,
    version_tags,
)
from ms2img.training.scores import CHANCE, LABELS, PRIMARY, spearman

DEFAULT_Z = 1.645  # one-sided 95 %: better by more than the noise of the comparison
MIN_PER_CLASS = 3  # fewer new accessions of a class than this: the new-data comparison cannot decide
MIN_NEW_VALUES = 2 * MIN_PER_CLASS  # regression: fewer new accessions than this cannot decide


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
        if "prediction" in out.columns:  # a regression model: a finite value (null only out of domain)
            value = pd.to_numeric(out["prediction"], errors="coerce").to_numpy(dtype=float)
            inside = out["in_domain"].to_numpy(bool) if "in_domain" in out.columns else np.ones(len(value), bool)
            if len(value) == 0 or not np.isfinite(value[inside]).all():
                return f"smoke prediction returned invalid values {value[:5]}"
            return None
        prob = out["probability"].to_numpy(dtype=float)
        if len(prob) == 0 or not ((prob >= 0) & (prob <= 1)).all():
            return f"smoke prediction returned invalid probabilities {prob[:5]}"
    except Exception as exc:  # noqa: BLE001 - any failure means "do not serve", with the reason
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"cannot be served: {exc.__class__.__name__}: {first[:300]}"
    return None


def _labels_with(scaling: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """1 high / 0 low / -1 middle with a version's stored label scaling (the class it meant at training)."""
    from ms2img.training.labels import LabelScaling

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


def paired_spearman_difference(
    values: np.ndarray, champion: np.ndarray, challenger: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Spearman rho of both models' predictions with the measured values on the same accessions and the SE of the
    difference (paired bootstrap over the accessions): the regression counterpart of :func:`paired_auc_difference`,
    with the same keys (``spearman`` for ``auc``)."""
    v, a, b = (np.asarray(x, dtype=float) for x in (values, champion, challenger))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), (n_boot, len(v)))
    boots = np.array([spearman(b[i], v[i]) - spearman(a[i], v[i]) for i in idx])
    boots = boots[np.isfinite(boots)]
    rho_a, rho_b = spearman(a, v), spearman(b, v)
    return {
        "champion_spearman_new": rho_a,
        "challenger_spearman_new": rho_b,
        "spearman_diff": float(rho_b - rho_a),
        "spearman_diff_se": float(boots.std(ddof=1)) if boots.size > 1 else float("nan"),
        "n_new": len(v),
    }


def _champion_predictions(
    name: str, version: str, requests: list[tuple[str, pd.DataFrame]], column: str = "probability"
) -> pd.Series:
    """The champion's served answers (``column``: probability, or a regression model's prediction) for accessions
    it never saw (through its registered pyfunc)."""
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    predictor = model.unwrap_python_model().predictor
    out = {}
    for acc, req in requests:
        try:
            out[acc] = float(predictor.predict(req, class_out_of_domain=True)[column].iloc[0])
        except Exception as exc:  # noqa: BLE001 - an accession the champion cannot answer: p = 0.5 / no value
            fallback = 0.5 if column == "probability" else math.nan
            log.warning("champion %s cannot predict %s (%s); scored as %s", version, acc, exc, fallback)
            out[acc] = fallback
    return pd.Series(out, dtype=float)


def _champion_accessions(name: str, version: str) -> list[str]:
    import mlflow

    uri = mlflow_client().get_model_version_download_uri(name, version)
    path = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts/model_dir/accessions.txt")
    return Path(path).read_text(encoding="utf-8").split()


def _new_accessions(
    name: str, champion: str, champ_tags: dict[str, str], family: str, oof: pd.DataFrame, events_dir: Path | None,
    mode: str,
) -> tuple[dict[str, Any] | None, dict[str, Any], str]:  # fmt: skip
    """Both models on the accessions in the challenger's ``oof`` that the champion never saw: ``(stats, evidence,
    note)``; ``stats`` (from :func:`paired_auc_difference` or, in regression, :func:`paired_spearman_difference`)
    is None when too few new accessions can be scored, and ``note`` says why."""
    evidence: dict[str, Any] = {}
    seen = set(_champion_accessions(name, champion))
    mine = oof[oof["family"] == family]
    answer = "prediction" if mode == "regression" else "probability"
    per_acc = mine.groupby("accession").agg(answer=(answer, "mean"), value=("value", "first"))
    new = per_acc[~per_acc.index.astype(str).isin(seen)]
    # never trained on by the champion: new accessions and the middle band it left out (the comparison then keeps
    # those labelled by the champion's scaling: n_compared)
    evidence["n_unseen_accessions"] = len(new)
    if not len(new):
        return None, evidence, ""
    if mode == "regression":
        if len(new) < MIN_NEW_VALUES:
            return None, evidence, f"; too few new accessions to compare ({len(new)} < {MIN_NEW_VALUES})"
        requests = training_requests([str(a) for a in new.index], events_dir)
        new = new[new.index.astype(str).isin({a for a, _ in requests})]
        champ = _champion_predictions(name, champion, requests, "prediction").reindex(new.index.astype(str))
        ok = np.isfinite(champ.to_numpy())
        if ok.sum() < MIN_NEW_VALUES:
            return None, evidence, "; new accessions without events to score the champion on"
        evidence["n_compared"] = int(ok.sum())
        stats = paired_spearman_difference(
            new["value"].to_numpy()[ok], champ.to_numpy()[ok], new["answer"].to_numpy()[ok]
        )
        head = f"on {int(ok.sum())} new accessions"
        return {**stats, "head": head}, evidence, ""
    scaling = json.loads(champ_tags[SCALING_TAG])
    y = _labels_with(scaling, new["value"].to_numpy(float))
    new = new[y >= 0].assign(label=y[y >= 0])
    n_hi, n_lo = int((new["label"] == 1).sum()), int((new["label"] == 0).sum())
    if min(n_hi, n_lo) < MIN_PER_CLASS:
        return (
            None,
            evidence,
            f"; too few new labelled accessions to compare ({n_hi} high / {n_lo} low < {MIN_PER_CLASS})",
        )
    requests = training_requests([str(a) for a in new.index], events_dir)
    new = new[new.index.astype(str).isin({a for a, _ in requests})]
    if min(int((new["label"] == 1).sum()), int((new["label"] == 0).sum())) < MIN_PER_CLASS:
        return None, evidence, "; new accessions without events to score the champion on"
    evidence["n_compared"] = len(new)
    p_champ = _champion_predictions(name, champion, requests).reindex(new.index.astype(str))
    stats = paired_auc_difference(new["label"].to_numpy(), p_champ.to_numpy(), new["answer"].to_numpy())
    head = (
        f"on {len(new)} new accessions ({stats['n_new_high']} high / {stats['n_new_low']} low, champion's label "
        "scaling)"
    )
    return {**stats, "head": head}, evidence, ""


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
    beyond_chance: bool = True,
) -> tuple[bool, str, str, dict[str, Any]]:
    """(promoted, rule, reason, evidence) for ``candidate`` against the current ``champion``.

    ``beyond_chance``: a version whose cross-validated score's 95% interval does not exclude chance (AUC 0.5,
    Spearman 0) never becomes champion: on a handful of extracts a fold's AUC is 0, 0.5 or 1 and the mean can read
    1.000 while the interval reaches chance; downstream teams would be served a coin with a confident headline.

    One rule for every ``labels.mode``; the metric is the mode's (AUC, or Spearman's rho for regression models):
    on new accessions the challenger must beat the champion by ``z`` standard errors of the paired difference,
    otherwise the selection's paired comparison on the same folds decides."""
    cand_tags = version_tags(name, candidate)
    family = cand_tags.get(FAMILY_TAG, "?")
    mode = cand_tags.get(MODE_TAG, "classification")
    metric = PRIMARY.get(mode, "auc")
    label = LABELS[metric]
    cand_score = float_tag(cand_tags, score_tag(mode))
    if champion == candidate:
        return False, "already-champion", f"version {candidate} ({family}) is already champion", {}
    failure = smoke_predict(name, candidate) if smoke else None
    if failure:
        return False, "smoke-failed", f"kept champion {champion}: challenger {candidate} {failure}", {}
    if beyond_chance and not float_tag(cand_tags, f"{metric}_ci_low") > CHANCE[metric]:  # NaN (no interval) too
        low, high = float_tag(cand_tags, f"{metric}_ci_low"), float_tag(cand_tags, f"{metric}_ci_high")
        return False, "chance", (
            f"{f'kept champion {champion}' if champion else 'no champion'}: {family}'s cv {label} {cand_score:.3f} "
            f"[{low:.3f}, {high:.3f}] does not exclude chance ({CHANCE[metric]:g}); more accessions narrow the "
            "interval (registry.beyond_chance: false serves it anyway)"
        ), {f"challenger_cv_{metric}": cand_score, f"challenger_cv_{metric}_ci_low": low}  # fmt: skip
    if champion is None:
        return True, "first", f"first champion: {family} (cv {label} {cand_score:.3f})", {
            f"challenger_cv_{metric}": cand_score
        }  # fmt: skip
    champ_tags = version_tags(name, champion)
    champ_family = champ_tags.get(FAMILY_TAG, "?")
    if champ_tags.get(MODE_TAG, "classification") != mode:
        return True, "mode-changed", (
            f"promoted: labels.mode is now {mode} (champion {champion} was {champ_tags.get(MODE_TAG, 'classification')}"
            f"); {family} (cv {label} {cand_score:.3f}) answers the new question"
        ), {f"challenger_cv_{metric}": cand_score}  # fmt: skip
    champ_score = float_tag(champ_tags, score_tag(mode))
    evidence: dict[str, Any] = {f"challenger_cv_{metric}": cand_score, f"champion_cv_{metric}": champ_score}

    # 1. new accessions: both models on data neither has seen (classification: labelled with the champion's scaling)
    new_note = ""
    if oof is not None and len(oof) and (mode == "regression" or SCALING_TAG in champ_tags):
        stats, more, new_note = _new_accessions(name, champion, champ_tags, family, oof, events_dir, mode)
        evidence.update(more)
        if stats is not None:
            head = stats.pop("head")
            diff, se = stats[f"{metric}_diff"], stats[f"{metric}_diff_se"]
            margin = z * se
            evidence.update(stats, margin=margin, z=z)
            head = (
                f"{head} challenger {candidate} ({family}, out-of-fold) {label} "
                f"{stats[f'challenger_{metric}_new']:.3f} vs champion {champion} ({champ_family}, unseen) "
                f"{stats[f'champion_{metric}_new']:.3f}: difference {diff:+.3f}, margin {margin:.3f} "
                f"({z:g} x SE {se:.3f})"
            )
            if diff > margin:
                return True, "new-accessions", f"promoted: {head}", evidence
            return False, "new-accessions", f"kept champion {champion}: {head}: not better by the margin", evidence
    # 2. no (usable) new accessions: the selection's paired comparison on the same folds
    winner = (selection or {}).get("winner")
    if family == champ_family:
        if math.isnan(cand_score) or (not math.isnan(champ_score) and cand_score < champ_score):
            return False, "same-family", (
                f"kept champion {champion}: refit {candidate} of {family} has cv {label} {cand_score:.3f} < "
                f"{champ_score:.3f}{new_note}"
            ), evidence  # fmt: skip
        data = "the current data (the cv scores come from different cohorts)" if new_note else "the same accessions"
        return True, "same-family", (
            f"promoted: refit of {family} on {data}, cv {label} {cand_score:.3f} vs {champ_score:.3f}{new_note}"
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
        d, lo, hi = (
            sign * float(math.nan if entry.get(k) is None else entry[k]) for k in ("diff", "ci_low", "ci_high")
        )
        lo, hi = sorted((lo, hi))
        evidence.update(paired_diff=d, paired_ci_low=lo, paired_ci_high=hi)
        detail = f" (paired {label} difference {family} - {champ_family} {d:+.3f}, CI {lo:+.3f} to {hi:+.3f})"
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
