"""Serving the feature-table families on raw peaks: match incoming precursors to the training features.

The feature families (``rf-cosine``, ``rf-entropy``) were fitted on a merged feature table (``ms2img.features.table``):
one column per compound-like feature, built by greedy leader clustering where a spectrum joins a cluster when the
mean of three similarities to it exceeds ``threshold``:

* MS1: ``exp(-0.5 ((mz - mz_f) / sigma_mz) ** 2)``, sigma in ppm of the pair's mean m/z (``mz_sigma_ppm``),
* RT:  ``exp(-0.5 ((rt - rt_f) / rt_tol_min) ** 2)``,
* MS/MS: greedy cosine (matchms) or spectral entropy similarity (ms_entropy) with the cluster's *representative*
  spectrum (its first, most intense member), with ``ms2_tol_da``.

A served request is matched with exactly that rule against the training features: each precursor joins the
training feature with the best mean score above ``threshold`` (scored against the feature's centre m/z / RT and
its representative spectrum, as in the merge), or none. An accession's value for a feature is the largest
intensity among its precursors matched to it (redundant precursors of one ion combine by max, as within a sample
at training time). The result is the ``accessions x training features`` matrix of raw heights the family's
``predict_proba`` takes, in the column order of ``features.parquet``.

Training side: :func:`training_feature_spectra` turns a :class:`~ms2img.features.table.FeatureTable` into the
``features.parquet`` of a family model (``feature_id, mz, rt, msms`` + ``polarity, n_accessions``), and
:func:`matching_rule` gives the rule to store in the model card (``card["matching"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.errors import ConfigError, InputFileError
from ms2img.render.scaling import replicate_mean

FEATURE_COLUMNS = ["feature_id", "mz", "rt", "msms", "polarity", "n_accessions"]
RULE_KEYS = ("method", "mz_sigma_ppm", "rt_tol_min", "threshold", "ms2_tol_da", "mz_tol_ppm")


def _pairs_text(mz: np.ndarray, intensity: np.ndarray) -> str:
    return " ".join(f"{m:.5f}:{i:.6g}" for m, i in zip(mz.tolist(), intensity.tolist(), strict=True))


def training_feature_spectra(table, events_dir: str | Path) -> pd.DataFrame:
    """The training features with their representative spectrum, one row per column of ``table.values``.

    Columns: ``feature_id, mz, rt, msms, polarity, n_accessions``; ``msms`` is the representative spectrum
    (``"mz:int mz:int"``, m/z ascending) of each feature, read from ``events_dir/<rep_accession>.parquet``:
    the spectrum the merge scored every candidate against, so serving applies the same MS/MS rule.
    Write the result as the family's ``features.parquet`` (``FamilyModel(features=...)``).
    """
    from ms2img.io.schema import read_events

    feats = table.features
    needed = {"feature_id", "mz", "rt", "rep_accession", "rep_replicate", "rep_feature_id"}
    if missing := sorted(needed - set(feats.columns)):
        raise ConfigError(f"feature table '{table.method}' lacks columns {missing}")
    order = pd.Index(feats["feature_id"].astype(str)).get_indexer(table.values.columns.astype(str))
    if (order < 0).any():
        raise ConfigError(f"feature table '{table.method}': value columns without a feature row")
    feats = feats.iloc[order].reset_index(drop=True)
    events_dir = Path(events_dir)
    keys = list(
        zip(
            feats["rep_accession"].astype(str),
            feats["rep_replicate"].astype(str),
            feats["rep_feature_id"].astype(str),
            strict=True,
        )
    )
    wanted: dict[str, set[tuple[str, str]]] = {}
    for acc, rep, fid in keys:
        wanted.setdefault(acc, set()).add((rep, fid))
    spectra: dict[tuple[str, str, str], str] = {}
    for acc in sorted(wanted):
        path = events_dir / f"{acc}.parquet"
        if not path.is_file():
            raise InputFileError(path, "events of a feature's representative accession not found")
        ev = read_events(path)
        pair = ev["replicate"].astype(str) + "\x1f" + ev["feature_id"].astype(str)
        ev = ev[pair.isin({f"{r}\x1f{f}" for r, f in wanted[acc]})]  # only the spectra a feature stands for
        ev = ev.assign(replicate=ev["replicate"].astype(str), feature_id=ev["feature_id"].astype(str))
        ev = ev.sort_values(["replicate", "feature_id", "fragment_mz"], kind="stable")
        for (rep, fid), grp in ev.groupby(["replicate", "feature_id"], sort=False):
            spectra[(acc, rep, fid)] = _pairs_text(
                grp["fragment_mz"].to_numpy(np.float64), grp["fragment_intensity"].to_numpy(np.float64)
            )
    msms = []
    for key in keys:
        if key not in spectra:
            raise InputFileError(
                events_dir / f"{key[0]}.parquet", f"no spectrum for replicate {key[1]}, feature {key[2]}"
            )
        msms.append(spectra[key])
    return pd.DataFrame(
        {
            "feature_id": feats["feature_id"].astype(str).to_numpy(),
            "mz": feats["mz"].to_numpy(np.float64),
            "rt": feats["rt"].to_numpy(np.float64),
            "msms": msms,
            "polarity": feats["polarity"].astype(str).to_numpy() if "polarity" in feats else "unknown",
            "n_accessions": feats["n_accessions"].to_numpy(np.int64) if "n_accessions" in feats else 0,
        }
    )[FEATURE_COLUMNS]


def matching_rule(table) -> dict[str, Any]:
    """The merge rule of ``table`` (its stats), to store as ``card["matching"]`` of a feature family model."""
    s = table.stats
    return {
        "method": table.method,
        "mz_sigma_ppm": float(s["mz_sigma_ppm"]),
        "rt_tol_min": float(s["rt_tol_min"]),
        "threshold": float(s["threshold"]),
        "ms2_tol_da": float(s["ms2_tol_da"]),
        "mz_tol_ppm": float(s["mz_tol_ppm"]),
    }


def rule_from_card(card: dict[str, Any], family: str) -> dict[str, Any]:
    """The matching rule of a feature family model (card ``matching``; features.py defaults for what is absent)."""
    from ms2img.features import table as F

    rule = dict(card.get("matching") or {})
    out = {
        "method": str(rule.get("method") or family.split("-", 1)[-1]),
        "mz_sigma_ppm": float(rule.get("mz_sigma_ppm", F.DEFAULT_MZ_TOL_PPM / 2.0)),
        "rt_tol_min": float(rule.get("rt_tol_min", F.DEFAULT_RT_TOL_MIN)),
        "threshold": float(rule.get("threshold", F.DEFAULT_THRESHOLD)),
        "ms2_tol_da": float(rule.get("ms2_tol_da", F.DEFAULT_MS2_TOL_DA)),
        "mz_tol_ppm": float(rule.get("mz_tol_ppm", F.DEFAULT_MZ_TOL_PPM)),
    }
    if out["method"] not in F.METHODS:
        raise ConfigError(f"unknown MS/MS similarity method {out['method']!r} in the model card")
    return out


def _split_peaks(counts: np.ndarray, mz: np.ndarray, intensity: np.ndarray) -> list[np.ndarray]:
    bounds = np.r_[0, np.cumsum(counts)]
    pk = np.column_stack([mz, intensity]).astype(np.float64)
    out = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        p = pk[a:b]
        if len(p) > 1 and np.any(np.diff(p[:, 0]) < 0):
            p = p[np.argsort(p[:, 0], kind="stable")]
        out.append(np.ascontiguousarray(p))
    return out


@dataclass
class FeatureMatcher:
    """The training features of one model, ready to match requests against (built once per server worker)."""

    feature_ids: np.ndarray
    mz: np.ndarray
    rt: np.ndarray
    peaks: list  # prepared for the method (raw peaks for cosine, cleaned for entropy)
    rule: dict[str, Any]

    @classmethod
    def from_features(cls, features: pd.DataFrame, rule: dict[str, Any]) -> FeatureMatcher:
        """From a family model's ``features.parquet`` (needs ``feature_id, mz, rt, msms``)."""
        from ms2img.io.msms import parse_msms_column

        missing = [c for c in ("feature_id", "mz", "rt", "msms") if c not in features.columns]
        if missing:
            raise ConfigError(
                f"features.parquet lacks columns {missing}: build it with training_feature_spectra "
                "(ms2img.features.match)"
            )
        parsed = parse_msms_column(features["msms"].fillna("").astype(str), column="msms")
        counts, fmz, fint = parsed.counts(len(features)), parsed.mz, parsed.intensity
        peaks = _split_peaks(counts, fmz, fint)
        return cls(
            feature_ids=features["feature_id"].astype(str).to_numpy(),
            mz=features["mz"].to_numpy(np.float64),
            rt=features["rt"].to_numpy(np.float64),
            peaks=_prepare(peaks, rule),
            rule=rule,
        )

    def __len__(self) -> int:
        return len(self.mz)

    def match(self, p_mz: np.ndarray, p_rt: np.ndarray, peaks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Best training feature per precursor (index, or -1) and its mean score (0 where none)."""
        from ms2img.features.merge import candidate_windows, cosine_prepared, entropy_prepared

        r = self.rule
        n = len(p_mz)
        best = np.full(n, -1, dtype=np.int64)
        best_s = np.zeros(n)
        if n == 0 or len(self) == 0:
            return best, best_s
        mz_win, rt_win = candidate_windows(r["mz_tol_ppm"], r["mz_sigma_ppm"], r["rt_tol_min"], r["threshold"])
        order = np.argsort(self.mz, kind="stable")
        smz = self.mz[order]
        lo = np.searchsorted(smz, p_mz - p_mz * mz_win * 1e-6, side="left")
        hi = np.searchsorted(smz, p_mz + p_mz * mz_win * 1e-6, side="right")
        width = hi - lo
        q = np.repeat(np.arange(n), width)
        if len(q) == 0:
            return best, best_s
        f = order[np.repeat(lo, width) + (np.arange(len(q)) - np.repeat(np.cumsum(width) - width, width))]
        sigma = r["mz_sigma_ppm"] * 1e-6 * (p_mz[q] + self.mz[f]) / 2.0
        ms1 = np.exp(-0.5 * ((p_mz[q] - self.mz[f]) / sigma) ** 2)
        drt = p_rt[q] - self.rt[f]
        rt = np.exp(-0.5 * (drt / r["rt_tol_min"]) ** 2)
        keep = (np.abs(drt) <= rt_win) & ((ms1 + rt + 1.0) / 3.0 > r["threshold"])
        q, f, partial = q[keep], f[keep], (ms1 + rt)[keep]
        if r["method"] == "cosine":
            tol = r["ms2_tol_da"]
            prepared = peaks

            def score(a, b):
                return cosine_prepared(a, b, tol)
        else:
            tol = r["ms2_tol_da"]
            prepared = _prepare(peaks, r)

            def score(a, b):
                return entropy_prepared(a, b, tol)

        thr = r["threshold"]
        for qi, fi, part in zip(q.tolist(), f.tolist(), partial.tolist(), strict=True):
            if (part + 1.0) / 3.0 <= max(best_s[qi], thr):
                continue
            a = prepared[qi]
            s = (part + (score(a, self.peaks[fi]) if len(a) else 0.0)) / 3.0
            if s > thr and s > best_s[qi]:
                best[qi], best_s[qi] = fi, s
        return best, best_s

    def transform(
        self,
        codes: np.ndarray,
        n_accessions: int,
        p_mz: np.ndarray,
        p_rt: np.ndarray,
        p_int: np.ndarray,
        peaks: list[np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n_accessions, n_features)`` raw heights (max over matched precursors) and the matched fraction per
        accession (share of its precursors that matched a training feature)."""
        best, _ = self.match(p_mz, p_rt, peaks)
        mat = np.zeros((n_accessions, len(self)), dtype=np.float64)
        hit = best >= 0
        np.maximum.at(mat, (codes[hit], best[hit]), np.nan_to_num(p_int[hit]).clip(min=0.0))
        total = np.bincount(codes, minlength=n_accessions)
        matched = np.bincount(codes[hit], minlength=n_accessions)
        return mat, matched / np.maximum(total, 1)


def _prepare(peaks: list[np.ndarray], rule: dict[str, Any]) -> list[np.ndarray]:
    if rule["method"] == "entropy":
        from ms2img.features.merge import entropy_clean

        return [entropy_clean(p, rule["ms2_tol_da"]) if len(p) else p for p in peaks]
    return peaks


def match_parsed(
    req: pd.DataFrame,
    counts: np.ndarray,
    mz: np.ndarray,
    intensity: np.ndarray,
    matcher: FeatureMatcher,
    injection: np.ndarray | None = None,
    n_injections: np.ndarray | None = None,
) -> dict[str, Any]:
    """Match a request already validated and parsed by :func:`ms2img.serving.request.parse_request`: ``ids``
    (sorted accessions), ``matrix``, ``matched_fraction``, ``n_precursors`` per accession.

    ``injection`` (one label per row) and ``n_injections`` (per accession): rows of several injections of an
    accession are matched per injection and averaged over its injections (absent = 0), the feature table's rule
    (per-injection maximum height, ``replicate_mean``), not matched as one pre-averaged injection."""
    codes, names = pd.factorize(req["accession"].to_numpy(dtype=object), sort=True)
    has = counts > 0  # precursors without MS/MS cannot be matched (they produce no events at training time)
    peaks = _split_peaks(counts[has], mz, intensity)
    unit = codes if injection is None else pd.factorize(pd.MultiIndex.from_arrays([codes, injection]))[0]
    n_units = int(unit.max()) + 1
    mat, frac = matcher.transform(
        unit[has],
        n_units,
        req["precursor_mz"].to_numpy(np.float64)[has],
        req["rt_min"].to_numpy(np.float64)[has],
        req["precursor_intensity"].to_numpy(np.float64)[has],
        peaks,
    )
    n_prec = np.bincount(unit[has], minlength=n_units).astype(np.float64)
    if injection is not None:
        acc_of_unit = np.zeros(n_units, dtype=np.intp)
        acc_of_unit[unit] = codes
        n_reps = np.asarray(n_injections, dtype=np.float64)
        mat, frac, n_prec = (replicate_mean(v, acc_of_unit, len(names), n_reps) for v in (mat, frac, n_prec))
    return {"ids": np.asarray(names, dtype=str), "matrix": mat, "matched_fraction": frac, "n_precursors": n_prec}
