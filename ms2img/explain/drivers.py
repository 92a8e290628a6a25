"""From important m/z boxes to candidate compounds ("drivers") in the training exports.

MS2toImg has no cross-run alignment, so the precursors of every accession that fall in a box are first grouped
across accessions by precursor m/z (``mz_ppm``) and retention time (``rt_tol_min``) into *candidates*
(:func:`group_by_precursor`, which says why this is not :mod:`ms2img.features.merge`'s definition). Each
candidate gets

* ``precursor_mz`` / ``rt_min`` (medians over the accessions that have it), ``n_accessions``;
* a consensus MS/MS spectrum (fragments found in at least ``min_fragment_share`` of the member spectra, mean
  relative intensity, base peak 100);
* ``mean_high`` / ``mean_low``: its mean relative precursor intensity (precursor height / the replicate's highest
  precursor, mean over replicates, 0 where absent: what the image encodes) in high vs low accessions,
  ``fold_change`` = high / low and ``direction`` (``up``: more abundant in high-activity accessions);
* ``importance``: the sum over the boxes it appears in of the box importance times its share of the box's
  *discriminative* signal (``|mean_high - mean_low|`` x its strongest consensus fragment in the box's fragment
  range). The model says which box matters; the data say which precursor in the box differs between classes.

Then in-source ions (formate / sodium adducts, dimers, water losses) that co-elute with a candidate are
folded into it (their importance added, listed in ``adducts``), so one compound is one driver.

Finally the ranking (``conditional=True``, ``direction_first=True``):

* ``conditional_effect``: the candidate's effect on the class *given all the other candidates*: the coefficient of
  an L2-penalised logistic regression of the class on every candidate's abundance (its ions summed per accession,
  ``log1p`` of relative intensity, standardised; class-balanced; the penalty chosen by stratified inner
  cross-validation on log loss). Compounds that only look active because they co-vary with the real actives (a
  shared "phenolic richness" of the extracts, say) keep a large marginal difference but lose it here: the actives
  explain the class better. ``conditional_importance`` = ``importance`` x max(0, effect in the candidate's own
  direction): the model's evidence, kept in proportion to how much the candidate still separates the classes the
  way its fold change says once the other candidates are known.
* ``direction``: ``up`` drivers (more abundant in the high-activity accessions: what one would isolate) rank before
  ``down`` ones (less abundant in active extracts: suppressors, or compounds diluted by the actives in the
  base-peak-scaled image), each group by ``conditional_importance`` then ``importance``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.errors import InputFileError

log = logging.getLogger(__name__)

PROTON = 1.007276
# in-source ions of a compound with main ion m/z ``m``: (label, m/z of the related ion)
C13 = 1.003355
ISOTOPES = (("M+1", lambda m: m + C13), ("M+2", lambda m: m + 2 * C13))
RELATED_IONS = {
    "negative": (
        ("[M+FA-H]-", lambda m: m + 46.005479),
        ("[M+Na-2H]-", lambda m: m + 21.981945),
        ("[M+Cl]-", lambda m: m + 35.976678),
        ("[M-H2O-H]-", lambda m: m - 18.010565),
        ("[2M-H]-", lambda m: 2 * m + PROTON),
    ),
    "positive": (
        ("[M+Na]+", lambda m: m + 21.981945),
        ("[M+NH4]+", lambda m: m + 17.026549),
        ("[M+K]+", lambda m: m + 37.955882),
        ("[M+H-H2O]+", lambda m: m - 18.010565),
        ("[2M+H]+", lambda m: 2 * m - PROTON),
    ),
}


@dataclass
class Precursors:
    """Every precursor of the chosen accessions: one row per (accession, feature_id), fragments flattened.

    ``table``: ``accession, feature_id, precursor_mz, rt_min, polarity, intensity`` (mean precursor height over
    the accession's replicates, absent = 0), ``rel_intensity`` (height / the replicate's highest precursor,
    averaged the same way); ``frag_off`` (len(table)+1) indexes ``frag_mz`` / ``frag_rel`` (fragment intensity
    / the spectrum's base peak, from the replicate where the precursor is most intense).
    """

    table: pd.DataFrame
    frag_off: np.ndarray
    frag_mz: np.ndarray
    frag_rel: np.ndarray

    def fragments(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.frag_off[i], self.frag_off[i + 1]
        return self.frag_mz[a:b], self.frag_rel[a:b]


def read_events_dir(events_dir: str | Path, accessions: Iterable[str]) -> pd.DataFrame:
    """The canonical events of ``accessions`` (``<events_dir>/<accession>.parquet``), stacked."""
    from ms2img.io.schema import accession_filename, read_events

    events_dir = Path(events_dir)
    frames = []
    for acc in accessions:
        path = events_dir / accession_filename(str(acc))
        if not path.is_file():
            path = events_dir / f"{acc}.parquet"
        if not path.is_file():
            raise InputFileError(path, f"no events for accession '{acc}' (run `ms2img ingest` first)")
        frames.append(read_events(path))
    if not frames:
        raise InputFileError(events_dir, "no accessions to explain")
    return pd.concat(frames, ignore_index=True)


def collect_precursors(events: pd.DataFrame) -> Precursors:
    """Collapse the events table (one row per fragment) into :class:`Precursors`."""
    ev = events[
        ["accession", "replicate", "feature_id", "precursor_mz", "rt_min", "precursor_intensity", "polarity"]
    ].copy()
    ev["accession"] = ev["accession"].astype(str)
    ev["replicate"] = ev["replicate"].astype(str)
    ev["feature_id"] = ev["feature_id"].astype(str)
    ev["fragment_mz"] = events["fragment_mz"].to_numpy(dtype=np.float64)
    ev["fragment_intensity"] = events["fragment_intensity"].to_numpy(dtype=np.float64)
    spec = ev.groupby(["accession", "replicate", "feature_id"], sort=False).agg(
        precursor_mz=("precursor_mz", "first"),
        rt_min=("rt_min", "first"),
        height=("precursor_intensity", "first"),
        polarity=("polarity", "first"),
    )
    spec = spec.reset_index()
    rep_max = spec.groupby(["accession", "replicate"])["height"].transform("max")
    spec["rel"] = np.where(rep_max > 0, spec["height"] / rep_max.where(rep_max > 0, 1.0), 0.0)
    n_rep = spec.groupby("accession")["replicate"].transform("nunique")
    spec["w"] = 1.0 / n_rep
    spec["h_w"] = spec["height"] * spec["w"]
    spec["rel_w"] = spec["rel"] * spec["w"]
    table = spec.groupby(["accession", "feature_id"], sort=False).agg(
        precursor_mz=("precursor_mz", "median"),
        rt_min=("rt_min", "median"),
        polarity=("polarity", "first"),
        intensity=("h_w", "sum"),
        rel_intensity=("rel_w", "sum"),
    )
    table = table.reset_index()
    # fragments from the replicate where the precursor is most intense
    best = spec.sort_values("height", ascending=False, kind="stable").drop_duplicates(["accession", "feature_id"])
    key = pd.MultiIndex.from_frame(best[["accession", "replicate", "feature_id"]])
    ev_key = pd.MultiIndex.from_frame(ev[["accession", "replicate", "feature_id"]])
    chosen = ev[ev_key.isin(key)]
    row_of = pd.Series(np.arange(len(table)), index=pd.MultiIndex.from_frame(table[["accession", "feature_id"]]))
    owner = row_of.reindex(pd.MultiIndex.from_frame(chosen[["accession", "feature_id"]])).to_numpy()
    fmz = chosen["fragment_mz"].to_numpy()
    fint = chosen["fragment_intensity"].to_numpy()
    order = np.lexsort((fmz, owner))
    owner, fmz, fint = owner[order], fmz[order], fint[order]
    off = np.searchsorted(owner, np.arange(len(table) + 1))
    base = np.maximum.reduceat(fint, off[:-1]) if fint.size else np.zeros(0)
    counts = np.diff(off)
    base_full = np.zeros(len(table))
    nonempty = counts > 0
    base_full[nonempty] = base[nonempty] if fint.size else 0
    rel = fint / np.repeat(np.where(base_full > 0, base_full, 1.0), counts)
    return Precursors(table=table, frag_off=off, frag_mz=fmz, frag_rel=rel)


def group_by_precursor(mz: np.ndarray, rt: np.ndarray, mz_ppm: float = 10.0, rt_tol_min: float = 0.1) -> np.ndarray:
    """Explaining's "same compound across accessions": chains in precursor m/z (gaps <= ``mz_ppm``), then in RT
    (gaps <= ``rt_tol_min``); the MS/MS is not consulted.

    Training's definition is :mod:`ms2img.features.merge` (MS1, RT and MS/MS similarity, leader clustering, at most
    one feature per accession), and the two differ on purpose. A feature-table cell holds one value per accession
    and a column must not mix isomers, so training needs the spectra and the block rule. Here the question is which
    accessions hold a precursor inside a box the model already chose: the candidate's spectrum is the consensus
    of its members, so it exists only after grouping; a compound split into two precursors in one accession is
    summed rather than dropped; and it runs on the events behind image models, which never had a feature table.

    Returns a group label per precursor (0..k-1, ordered by m/z then RT).
    """
    mz = np.asarray(mz, dtype=np.float64)
    rt = np.asarray(rt, dtype=np.float64)
    if mz.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(mz, kind="stable")
    smz = mz[order]
    gap = np.diff(smz) > smz[1:] * mz_ppm * 1e-6
    mz_group = np.empty(mz.size, dtype=np.int64)
    mz_group[order] = np.concatenate([[0], np.cumsum(gap)])
    order2 = np.lexsort((rt, mz_group))
    g, r = mz_group[order2], rt[order2]
    brk = (np.diff(g) != 0) | (np.diff(r) > rt_tol_min)
    labels = np.empty(mz.size, dtype=np.int64)
    labels[order2] = np.concatenate([[0], np.cumsum(brk)])
    return labels


def consensus_spectrum(
    mz_list: Sequence[np.ndarray], rel_list: Sequence[np.ndarray], tol_da: float = 0.01, min_share: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Fragments present in at least ``min_share`` of the spectra (grouped within ``tol_da``), mean intensity."""
    n = len(mz_list)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    mz = np.concatenate([np.asarray(m, dtype=np.float64) for m in mz_list])
    rel = np.concatenate([np.asarray(v, dtype=np.float64) for v in rel_list])
    who = np.repeat(np.arange(n), [len(m) for m in mz_list])
    if mz.size == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(mz, kind="stable")
    mz, rel, who = mz[order], rel[order], who[order]
    grp = np.concatenate([[0], np.cumsum(np.diff(mz) > tol_da)])
    k = grp[-1] + 1
    pairs = np.unique(grp * n + who)
    present = np.bincount(pairs // n, minlength=k)
    wsum = np.bincount(grp, weights=rel, minlength=k)
    mzw = np.bincount(grp, weights=mz * np.maximum(rel, 1e-9), minlength=k) / np.maximum(
        np.bincount(grp, weights=np.maximum(rel, 1e-9), minlength=k), 1e-12
    )
    keep = present >= max(1.0, min_share * n)
    out_mz, out_int = mzw[keep], wsum[keep] / n
    if out_int.size and out_int.max() > 0:
        out_int = 100.0 * out_int / out_int.max()
    return out_mz, out_int


def format_spectrum(mz: np.ndarray, intensity: np.ndarray) -> str:
    """``"mz:int mz:int"`` like an MS-DIAL export (4 decimals for m/z, 1 for intensity)."""
    return " ".join(f"{m:.4f}:{i:.1f}" for m, i in zip(mz, intensity, strict=True))


def find_drivers(
    boxes: pd.DataFrame,
    precursors: Precursors,
    labels: Mapping[str, int],
    mz_ppm: float = 10.0,
    rt_tol_min: float = 0.1,
    fragment_tol_da: float = 0.01,
    min_fragment_share: float = 0.3,
    min_accessions: int = 2,
    fold_adducts: bool = True,
    conditional: bool = True,
    direction_first: bool = True,
    seed: int = 0,
    top: int | None = None,
) -> pd.DataFrame:
    """Candidates in the boxes with positive importance, ranked (see the module docstring); ``top``: only the
    ``top`` strongest by ``conditional_importance`` then ``importance``, whatever their direction, are ranked (a cut
    after the up-first order would hide every ``down`` driver behind the ``up`` ones).

    ``boxes``: :func:`ms2img.explain.attribution.window_boxes` output (or any frame with ``box,
    precursor_mz_lo/hi, fragment_mz_lo/hi, importance`` and optionally ``rt_lo/rt_hi``); ``labels``: accession ->
    0/1 (the labelled accessions; others still count for ``n_accessions`` but not for the class means).
    """
    tab = precursors.table
    acc = tab["accession"].to_numpy(dtype=str)
    cl = group_by_precursor(tab["precursor_mz"].to_numpy(), tab["rt_min"].to_numpy(), mz_ppm, rt_tol_min)
    n_cl = int(cl.max()) + 1 if cl.size else 0
    lab = np.array([labels.get(a, -1) for a in acc])
    n_high = max(1, sum(1 for v in labels.values() if v == 1))
    n_low = max(1, sum(1 for v in labels.values() if v == 0))
    rel = tab["rel_intensity"].to_numpy(dtype=np.float64)
    # one accession may hold two precursors of a cluster (split features): sum them per accession
    cl_acc = pd.DataFrame({"c": cl, "a": acc, "rel": rel, "lab": lab}).groupby(["c", "a"], sort=False)
    per = cl_acc.agg(rel=("rel", "sum"), lab=("lab", "first")).reset_index()
    sum_high = np.bincount(per["c"], weights=per["rel"] * (per["lab"] == 1), minlength=n_cl)
    sum_low = np.bincount(per["c"], weights=per["rel"] * (per["lab"] == 0), minlength=n_cl)
    mean_high, mean_low = sum_high / n_high, sum_low / n_low
    n_acc = np.bincount(per["c"], minlength=n_cl)
    n_acc_high = np.bincount(per["c"], weights=(per["lab"] == 1).astype(float), minlength=n_cl).astype(int)
    n_acc_low = np.bincount(per["c"], weights=(per["lab"] == 0).astype(float), minlength=n_cl).astype(int)
    per_sorted = per.sort_values("c", kind="stable")
    per_off = np.searchsorted(per_sorted["c"].to_numpy(), np.arange(n_cl + 1))
    per_rel, per_lab = per_sorted["rel"].to_numpy(), per_sorted["lab"].to_numpy()
    n_lab = (sum(1 for v in labels.values() if v == 1), sum(1 for v in labels.values() if v == 0))
    sep_cache: dict[int, float] = {}

    def separation(c: int) -> float:
        if c not in sep_cache:
            a, b = per_off[c], per_off[c + 1]
            sep_cache[c] = _separation(per_rel[a:b], per_lab[a:b], *n_lab)
        return sep_cache[c]

    c_mz = pd.Series(tab["precursor_mz"].to_numpy()).groupby(cl).median().reindex(range(n_cl)).to_numpy()
    c_rt = pd.Series(tab["rt_min"].to_numpy()).groupby(cl).median().reindex(range(n_cl)).to_numpy()
    c_pol = pd.Series(tab["polarity"].astype(str).to_numpy()).groupby(cl).first().reindex(range(n_cl)).to_numpy()

    pos = boxes[boxes["importance"] > 0]
    member_order = np.argsort(cl, kind="stable")
    member_off = np.searchsorted(cl[member_order], np.arange(n_cl + 1))
    spectra: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def spectrum(c: int) -> tuple[np.ndarray, np.ndarray]:
        if c not in spectra:
            rows = member_order[member_off[c] : member_off[c + 1]]
            parts = [precursors.fragments(int(i)) for i in rows]
            spectra[c] = consensus_spectrum(
                [p[0] for p in parts], [p[1] for p in parts], fragment_tol_da, min_fragment_share
            )
        return spectra[c]

    eligible = n_acc >= min_accessions
    score = np.zeros(n_cl)
    in_boxes: dict[int, list[int]] = {}
    order_mz = np.argsort(c_mz, kind="stable")
    sorted_mz = c_mz[order_mz]
    for b in pos.itertuples(index=False):
        lo, hi = np.searchsorted(sorted_mz, [b.precursor_mz_lo, b.precursor_mz_hi], side="left")
        cands = [int(c) for c in order_mz[lo:hi] if eligible[c]]
        rt_lo, rt_hi = getattr(b, "rt_lo", None), getattr(b, "rt_hi", None)
        if rt_lo is not None and rt_hi is not None and np.isfinite(rt_lo) and np.isfinite(rt_hi):
            cands = [c for c in cands if rt_lo <= c_rt[c] <= rt_hi]  # feature families: a feature is m/z x RT
        sig = []
        for c in cands:
            fmz, fint = spectrum(c)
            sel = (fmz >= b.fragment_mz_lo) & (fmz < b.fragment_mz_hi)
            peak = float(fint[sel].max()) / 100.0 if sel.any() else 0.0
            sig.append(abs(mean_high[c] - mean_low[c]) * peak * separation(c))
        sig = np.asarray(sig)
        total = sig.sum()
        if total <= 0:
            continue
        for c, s in zip(cands, sig, strict=True):
            if s > 0:
                score[c] += float(b.importance) * s / total
                in_boxes.setdefault(c, []).append(int(b.box))
    adducts: dict[int, list[str]] = {}
    members: dict[int, list[int]] = {}  # cluster -> the clusters of its ions folded into it
    if fold_adducts:
        abundance = np.bincount(per["c"], weights=per["rel"], minlength=n_cl) / max(1, len(set(acc)))

        def confirm(c: int, p: int, label: str) -> bool:
            """Adducts and dimers fragment back to the main ion; a water loss is a fragment of the main ion."""
            if label.startswith("M+"):  # isotopes: co-elution and abundance are the evidence
                return True
            water = "H2O" in label
            fmz, _ = spectrum(p if water else c)
            target = c_mz[c] if water else c_mz[p]
            return bool(fmz.size) and bool(np.any(np.abs(fmz - target) <= fragment_tol_da + target * mz_ppm * 1e-6))

        _fold_related_ions(
            score, adducts, in_boxes, c_mz, c_rt, c_pol, n_acc, mz_ppm, abundance, confirm=confirm, members=members
        )
    cand = np.flatnonzero(score > 0)
    groups = [[int(c), *members.get(int(c), [])] for c in cand]
    effect = conditional_effects(per, groups, labels, seed=seed) if conditional else np.full(len(cand), np.nan)
    out = pd.DataFrame(
        {
            "cluster": cand,
            "precursor_mz": c_mz[cand],
            "rt_min": c_rt[cand],
            "importance": score[cand],
            "mean_high": mean_high[cand],
            "mean_low": mean_low[cand],
            "n_accessions": n_acc[cand],
            "n_high": n_acc_high[cand],
            "n_low": n_acc_low[cand],
            "polarity": c_pol[cand],
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):  # absent from every low accession: inf, not a floor ratio
        out["fold_change"] = out["mean_high"] / out["mean_low"]
        out["log2_fold_change"] = np.log2(out["fold_change"])
    out["direction"] = np.where(out["mean_high"] >= out["mean_low"], "up", "down")
    up = out["direction"].to_numpy() == "up"
    out["conditional_effect"] = effect
    agree = np.where(np.isnan(effect), 1.0, np.clip(np.where(up, effect, -effect), 0.0, None))
    out["conditional_importance"] = out["importance"] * agree
    out["adducts"] = ["; ".join(adducts.get(int(c), [])) for c in cand]
    out["boxes"] = [" ".join(str(b) for b in sorted(set(in_boxes.get(int(c), [])))) for c in cand]
    specs = [spectrum(int(c)) for c in cand]
    out["n_fragments"] = [len(sp[0]) for sp in specs]
    out["consensus_spectrum"] = [format_spectrum(*sp) for sp in specs]
    strength = ["conditional_importance", "importance"]
    if top is not None:
        out = out.sort_values(strength, ascending=False, kind="stable").head(int(top))
    out["_group"] = np.where(out["direction"] == "up", 0, 1) if direction_first else 0
    out = out.sort_values(["_group", *strength], ascending=[True, False, False], kind="stable").drop(columns="_group")
    out = out.reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def conditional_effects(
    per: pd.DataFrame, groups: Sequence[Sequence[int]], labels: Mapping[str, int], folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Per candidate (a list of clusters: its ions), its coefficient in a class-balanced L2 logistic regression of
    the labels on all candidates' ``log1p``-scaled, standardised abundances (module docstring); NaN when the
    labels cannot support one (fewer than 2 accessions of a class).

    ``per``: one row per (cluster ``c``, accession ``a``) with its relative intensity ``rel`` (absent = 0).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    accs = sorted(a for a, v in labels.items() if v in (0, 1))
    y = np.array([int(labels[a]) for a in accs])
    n_min = int(min((y == 1).sum(), (y == 0).sum())) if len(y) else 0
    if not groups or n_min < 2:
        return np.full(len(groups), np.nan)
    col_of = {int(c): j for j, g in enumerate(groups) for c in g}
    row_of = {a: i for i, a in enumerate(accs)}
    rows = per["a"].map(row_of)
    cols = per["c"].map(col_of)
    ok = (rows.notna() & cols.notna()).to_numpy()
    x = np.zeros((len(accs), len(groups)))
    np.add.at(x, (rows[ok].astype(int).to_numpy(), cols[ok].astype(int).to_numpy()), per["rel"].to_numpy()[ok])
    positive = x[x > 0]
    x = np.log1p(x / (np.median(positive) if positive.size else 1.0))
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    kw = {"class_weight": "balanced", "max_iter": 2000}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if n_min >= 3:
            cv = StratifiedKFold(min(folds, n_min), shuffle=True, random_state=seed)
            model = LogisticRegressionCV(
                Cs=np.logspace(-3, 1, 9),
                l1_ratios=(0.0,),
                cv=cv,
                scoring="neg_log_loss",
                use_legacy_attributes=False,
                **kw,
            ).fit(x, y)
        else:
            model = LogisticRegression(C=0.1, **kw).fit(x, y)
    coef = np.asarray(model.coef_[0], dtype=np.float64)
    coef[sd == 0] = 0.0
    return coef


def _separation(values: np.ndarray, labels: np.ndarray, n_high: int, n_low: int) -> float:
    """``|2 AUC - 1|``: how cleanly a cluster's intensity (0 where absent) separates high from low accessions.

    The Mann-Whitney U of the accessions that have it plus the absent ones as ties at 0, so a constant
    constituent scores 0 however abundant it is and a compound found only in high accessions scores near 1.
    """
    if n_high == 0 or n_low == 0:
        return 1.0
    x1 = np.concatenate([values[labels == 1], np.zeros(n_high - int((labels == 1).sum()))])
    x0 = np.concatenate([values[labels == 0], np.zeros(n_low - int((labels == 0).sum()))])
    ranks = pd.Series(np.concatenate([x1, x0])).rank().to_numpy()
    u = ranks[:n_high].sum() - n_high * (n_high + 1) / 2
    return abs(2.0 * u / (n_high * n_low) - 1.0)


def _fold_related_ions(
    score: np.ndarray,
    adducts: dict[int, list[str]],
    in_boxes: dict[int, list[int]],
    c_mz: np.ndarray,
    c_rt: np.ndarray,
    c_pol: np.ndarray,
    n_acc: np.ndarray,
    mz_ppm: float,
    abundance: np.ndarray,
    rt_tol: float = 0.05,
    confirm=None,
    members: dict[int, list[int]] | None = None,
) -> None:
    """Fold co-eluting adducts, isotopes, dimers and water losses into their main ion's cluster (in place).

    The main ion must be at least as abundant (``abundance``: mean relative intensity over accessions) as the
    related ion, which settles the ambiguous cases (is B the water loss of A, or A a water adduct of B?). A parent
    outside the boxes inherits its ions' importance: the compound, not the adduct, is the driver. ``confirm(c, p,
    label)`` may demand MS/MS evidence (see :func:`find_drivers`); ``members`` (when given) records, per main ion,
    the clusters folded into it.
    """
    order = np.argsort(c_mz, kind="stable")
    smz = c_mz[order]
    parent_of: dict[int, tuple[int, str]] = {}
    for c in np.flatnonzero(score > 0):
        c = int(c)
        for label, to_mz in (*ISOTOPES, *RELATED_IONS.get(str(c_pol[c]), RELATED_IONS["negative"])):
            hits = [
                p
                for p in _parents(c_mz[c], to_mz, smz, order, mz_ppm)
                if p != c
                and abs(c_rt[p] - c_rt[c]) <= rt_tol
                and n_acc[p] >= 0.5 * n_acc[c]
                and abundance[p] >= abundance[c]
                and (confirm is None or confirm(c, p, label))
            ]
            if hits:
                parent_of[c] = (hits[0], label)
                break
    for c in sorted(parent_of, key=lambda k: -score[k]):
        p, label = parent_of[c]
        seen = {c}
        while p in parent_of and p not in seen:  # chains: the [2M-H]- of an [M+FA-H]- ...
            seen.add(p)
            p = parent_of[p][0]
        if p == c or score[c] <= 0:
            continue
        score[p] += score[c]
        score[c] = 0.0
        adducts.setdefault(p, []).append(f"{label} {c_mz[c]:.4f}")
        adducts[p].extend(adducts.pop(c, []))
        in_boxes.setdefault(p, []).extend(in_boxes.get(c, []))
        if members is not None:
            members.setdefault(p, []).extend([c, *members.pop(c, [])])


def _parents(mz_c: float, to_mz, smz: np.ndarray, order: np.ndarray, mz_ppm: float) -> list[int]:
    """Clusters ``p`` with ``to_mz(mz_p)`` within ``mz_ppm`` (+ 0.002 Da) of ``mz_c``; ``to_mz`` is affine."""
    a = to_mz(1.0) - to_mz(0.0)
    b = to_mz(0.0)
    target = (mz_c - b) / a
    tol = (mz_c * mz_ppm * 1e-6 + 0.002) / abs(a)
    lo, hi = np.searchsorted(smz, [target - tol, target + tol])
    return [int(order[k]) for k in range(lo, hi)]
