"""How well drivers recover known actives: precision@k against a synthetic cohort's ``truth.csv``.

``truth.csv`` (written by ``ms2img synth``): ``assay, compound, precursor_mz, rt_min, weight, library_name``, one
row per planted active. A driver *recovers* an active of its assay when its precursor m/z is within
``max(mz_ppm, mz_da)`` and its RT within ``rt_tol_min``. ``annotated_share`` is the share of the top-k drivers
whose library identity (``library_name``, case-insensitive) is the library name of a planted active of the assay.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.errors import InputFileError

TRUTH_COLUMNS = ("assay", "compound", "precursor_mz", "rt_min", "weight", "library_name")


def read_truth(path: str | Path) -> pd.DataFrame:
    """A cohort's planted actives (``<cohort>/truth.csv``)."""
    path = Path(path)
    try:
        truth = pd.read_csv(path, dtype={"assay": str, "compound": str, "library_name": str}, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"unreadable truth table ({exc.__class__.__name__}: {exc})") from None
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise InputFileError(path, f"missing column(s) {missing}")
    return truth


def match_actives(
    drivers: pd.DataFrame,
    truth: pd.DataFrame,
    assay: str,
    mz_ppm: float = 10.0,
    mz_da: float = 0.01,
    rt_tol_min: float = 0.3,
) -> np.ndarray:
    """Per driver row, the ``compound`` of the heaviest planted active it matches ('' for none)."""
    t = truth[truth["assay"].astype(str) == str(assay)].sort_values("weight", ascending=False, kind="stable")
    tmz = t["precursor_mz"].to_numpy(dtype=np.float64)
    trt = t["rt_min"].to_numpy(dtype=np.float64)
    names = t["compound"].astype(str).to_numpy()
    out = []
    for mz, rt in zip(drivers["precursor_mz"].to_numpy(float), drivers["rt_min"].to_numpy(float), strict=True):
        tol = max(mz * mz_ppm * 1e-6, mz_da)
        ok = np.flatnonzero((np.abs(tmz - mz) <= tol) & (np.abs(trt - rt) <= rt_tol_min))
        out.append(names[ok[0]] if ok.size else "")
    return np.asarray(out, dtype=object)


def precision_at_k(
    drivers: pd.DataFrame,
    truth: pd.DataFrame,
    assay: str,
    k: int = 20,
    mz_ppm: float = 10.0,
    mz_da: float = 0.01,
    rt_tol_min: float = 0.3,
) -> dict:
    """``precision`` (share of the top-k drivers that are planted actives), ``recall_weight`` (the summed truth
    weight of the distinct actives found), ``annotated_share``, counts; ``k`` is capped at the drivers there are."""
    top = drivers.sort_values("rank").head(int(k)) if "rank" in drivers.columns else drivers.head(int(k))
    hits = match_actives(top, truth, assay, mz_ppm, mz_da, rt_tol_min)
    t = truth[truth["assay"].astype(str) == str(assay)]
    weight = dict(zip(t["compound"].astype(str), t["weight"].astype(float), strict=True))
    found = sorted({h for h in hits if h})
    active_names = {str(n).strip().lower() for n in t["library_name"] if str(n).strip()}
    lib = top["library_name"].fillna("").astype(str).str.strip().str.lower() if "library_name" in top else []
    named = np.array([n in active_names for n in lib], dtype=bool) if len(top) else np.zeros(0, bool)
    n = len(top)
    return {
        "assay": assay,
        "k": int(k),
        "n_drivers": n,
        "n_actives": len(t),
        "hits": int(sum(bool(h) for h in hits)),
        "precision": float(np.mean([bool(h) for h in hits])) if n else float("nan"),
        "distinct_actives": len(found),
        "recall_weight": round(float(sum(weight[c] for c in found)), 4),
        "annotated_share": float(named.mean()) if n else float("nan"),
        "n_annotated": int((lib != "").sum()) if n else 0,
    }
