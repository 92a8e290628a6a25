"""Activity scores without a model: how each feature's abundance follows an assay across samples.

Why: bioactivity-guided fractionation gives a handful of extracts or fractions with measured activity, too few to
train a model on. Bioactive Molecular Networking (Nothias et al., J Nat Prod 2018), FERMO and NP Analyst score
every feature by correlating its abundance with the raw activity instead; this module does the same, per feature
as the reader defines it (MS-DIAL alignment ID, MZmine/FBMN row ID, Optimus feature):

* abundance = the feature's height in an accession, averaged over its replicates (0 = not detected);
* normalisation ``bmn`` (the default, BMN's own script): add 1 to every abundance and divide by the sample's
  total, so a sample's loading does not masquerade as activity; ``raw``: heights as measured;
* Pearson r and Spearman rho against the raw activity; two-sided p by :mod:`ms2img.permutation`'s rule
  (permutations of the activity values with up to 30 samples, the t distribution above); Benjamini-Hochberg q and
  Bonferroni p over the features tested. On FERMO's ten samples (six zeros and activities 8, 8, 8, 7: 840
  orderings) the t distribution said 5e-6 for the top feature and let Bonferroni over 114 features pass six of
  them; no p can be below 1/840.

Everything is one matrix product (features x samples), so 20,000 features x 500 samples take seconds. Events of
several exports are joined by feature id when the exports number one alignment's features alike
(:func:`shares_feature_ids`), else first grouped by m/z and RT as the drivers are (one file per accession).
Low IC50 means high potency: expect the actives at negative r for such assays.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ms2img.errors import ConfigError, InputFileError
from ms2img.permutation import correlation_p, p_method

log = logging.getLogger(__name__)

NORMALISATIONS = ("bmn", "raw")
DEFAULT_NORMALISATION = "bmn"
MIN_SAMPLES = 5
SCORE_COLUMNS = [
    "rank", "feature_id", "precursor_mz", "charge", "rt_min", "polarity", "direction", "r", "p", "q", "p_bonferroni",
    "spearman_r", "spearman_p", "spearman_q", "spearman_p_bonferroni", "n_samples", "n_detected",
    "mean_abundance", "library_match", "library_score", "matched_peaks",
]  # fmt: skip
NODE_COLUMNS = [
    "shared name", "precursor_mz", "charge", "rt_min", "activity_rank", "r", "p", "q", "p_bonferroni", "neg_log10_q",
    "spearman_r", "spearman_q", "direction", "library_match",
]  # fmt: skip
_EVENT_COLUMNS = ["accession", "replicate", "feature_id", "precursor_mz", "rt_min", "precursor_intensity", "polarity"]


@dataclass
class Abundances:
    """Features x accessions heights (mean over replicates) and what identifies each feature."""

    features: pd.DataFrame  # feature_id, precursor_mz, charge, rt_min, polarity, n_detected
    accessions: list[str]
    values: np.ndarray  # float64, features x accessions
    best: pd.DataFrame = field(default_factory=pd.DataFrame)  # per feature: accession, replicate, event feature_id
    events_dir: Path | None = None


@dataclass
class CorrelationResult:
    assay: str
    scores: pd.DataFrame
    paths: dict[str, Path]
    meta: dict


# ----------------------------------------------------------------------------------------------- abundances


def _accession_of_files(events_dir: Path, files: list[Path]) -> dict[Path, str]:
    """Accession of each events file: from the manifest (an empty file holds no accession cell), else its stem."""
    from ms2img.io.schema import accession_filename

    names: dict[str, str] = {}
    manifest = events_dir / "samples.csv"
    if manifest.is_file():
        for acc in pd.read_csv(manifest, dtype=str, keep_default_na=False).get("accession", []):
            names.setdefault(accession_filename(acc), acc)
    return {f: names.get(f.name, f.stem) for f in files}


def injection_sources(events_dir: Path) -> pd.DataFrame:
    """The export each injection (accession, replicate) comes from, samples.csv's ``source``; empty when the
    manifest does not say. One extract's injections may come from several exports (one per batch)."""
    manifest = events_dir / "samples.csv"
    m = pd.read_csv(manifest, dtype=str, keep_default_na=False) if manifest.is_file() else pd.DataFrame()
    keys = ["accession", "replicate", "source"]
    return m[keys].drop_duplicates() if set(keys) <= set(m.columns) else pd.DataFrame(columns=keys)


def shares_feature_ids(events: pd.DataFrame, sources: pd.DataFrame, mz_ppm: float, rt_tol_min: float) -> bool:
    """Whether several exports number one alignment's features alike (one export split into batches, or re-exported
    with new samples): every feature id found in two exports has one m/z and RT in both. Then the ids join them, and
    features of one m/z and RT that the aligner kept apart (ion-mobility isomers) stay apart; else features are
    grouped by m/z and RT. ``sources``: the export of each (accession, replicate) (:func:`injection_sources`)."""
    keys = ["accession", "replicate"]
    rows = events.merge(sources.astype(str), on=keys, how="left")  # events: accession, replicate as str
    if rows["source"].nunique() < 2:
        return True
    per = rows.groupby(["feature_id", "source"], observed=True).agg(mz=("precursor_mz", "median"),
                                                                     rt=("rt_min", "median"))  # fmt: skip
    spread = per.groupby(level="feature_id", observed=True).agg(["min", "max", "size"])
    both = spread[spread[("mz", "size")] > 1]
    if both.empty:
        return False
    mz_ok = (both[("mz", "max")] - both[("mz", "min")]) <= both[("mz", "max")] * mz_ppm * 1e-6
    rt_ok = (both[("rt", "max")] - both[("rt", "min")]) <= rt_tol_min
    return bool((mz_ok & rt_ok).all())


def read_abundances(events_dir: str | Path, mz_ppm: float = 10.0, rt_tol_min: float = 0.1) -> Abundances:
    """The abundance matrix of every accession in ``events_dir`` (``<accession>.parquet``, from ``ms2img ingest``).

    Each file is cut to one row per (replicate, feature) in Arrow before anything becomes a Python string: the
    events hold one row per fragment, 20,000 features x 500 samples are tens of millions of rows.
    """
    import pyarrow.parquet as pq

    events_dir = Path(events_dir)
    files = sorted(events_dir.glob("*.parquet")) if events_dir.is_dir() else []
    if not files:
        raise InputFileError(events_dir, "no events Parquet files found (run `ms2img ingest` first)")
    acc_of = _accession_of_files(events_dir, files)
    frames = []
    for f in files:
        try:
            names = pq.read_schema(f).names
            table = pq.read_table(f, columns=_EVENT_COLUMNS + [c for c in ("charge",) if c in names])
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; the user needs the file name
            raise InputFileError(f, f"not a readable events file ({exc.__class__.__name__}: {exc})") from None
        frames.append(_one_row_per_feature(table))
    accessions = list(dict.fromkeys(acc_of[f] for f in files))
    ev = pd.concat(frames, ignore_index=True)
    aligned = shares_feature_ids(ev, injection_sources(events_dir), mz_ppm, rt_tol_min)
    ab = abundances_from_events(ev, accessions, aligned=aligned, mz_ppm=mz_ppm, rt_tol_min=rt_tol_min)
    ab.events_dir = events_dir
    return ab


def _codes(column) -> tuple[np.ndarray, np.ndarray]:
    """(integer codes, their strings) of an Arrow string column, dictionary-encoded or not."""
    import pyarrow as pa

    arr = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if not pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_encode()
    values = np.asarray([str(v) for v in arr.dictionary.to_pylist()], dtype=object)
    return arr.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), values


def _one_row_per_feature(table) -> pd.DataFrame:
    """The first event row of every (accession, replicate, feature_id) of one events table."""
    codes = {c: _codes(table[c]) for c in ("accession", "replicate", "feature_id", "polarity")}
    (acc, _), (rep, rep_v), (fid, fid_v) = codes["accession"], codes["replicate"], codes["feature_id"]
    key = (acc * max(len(rep_v), 1) + rep) * max(len(fid_v), 1) + fid
    first = np.flatnonzero(~pd.Series(key).duplicated().to_numpy())
    out = {c: codes[c][1][codes[c][0][first]] for c in codes}
    for c in ("precursor_mz", "rt_min", "precursor_intensity"):
        out[c] = table[c].to_numpy()[first]
    out["charge"] = table["charge"].to_numpy()[first] if "charge" in table.column_names else 1  # absent: 1
    return pd.DataFrame(out, columns=[*_EVENT_COLUMNS, "charge"])


def abundances_from_events(
    events: pd.DataFrame,
    accessions: list[str] | None = None,
    *,
    aligned: bool = True,
    mz_ppm: float = 10.0,
    rt_tol_min: float = 0.1,
) -> Abundances:
    """One height per (feature, accession) from the events (one row per fragment); absent pairs are 0.

    A feature's height in an accession is the mean over the accession's replicates (not detected = 0).
    """
    spec = events.reindex(columns=[*_EVENT_COLUMNS, "charge"]).fillna({"charge": 1})  # written without it: 1
    spec = spec.drop_duplicates(["accession", "replicate", "feature_id"]).reset_index(drop=True)
    acc_code, acc_names = pd.factorize(spec["accession"].astype(str))
    accessions = list(acc_names) if accessions is None else list(accessions)
    if aligned:
        key, uniques = pd.factorize(spec["feature_id"].astype(str))
    else:
        from ms2img.explain.drivers import group_by_precursor

        key = group_by_precursor(spec["precursor_mz"].to_numpy(), spec["rt_min"].to_numpy(), mz_ppm, rt_tol_min)
        med = spec.groupby(key).agg(mz=("precursor_mz", "median"), rt=("rt_min", "median"))
        uniques = (med["mz"].map("{:.4f}".format) + "@" + med["rt"].map("{:.2f}".format)).to_numpy()
    n_feat, n_acc = len(uniques), len(acc_names)
    acc_pos = pd.Index(accessions).get_indexer(acc_names)[acc_code]  # -1: not asked for, left out
    rep_code = pd.factorize(spec["replicate"].astype(str))[0]
    seen = np.zeros((n_acc, rep_code.max() + 1 if rep_code.size else 1), dtype=bool)
    seen[acc_code, rep_code] = True
    n_rep = seen.sum(axis=1)
    height = spec["precursor_intensity"].to_numpy(dtype=np.float64) / n_rep[acc_code]
    ok = acc_pos >= 0
    values = np.zeros((n_feat, len(accessions)), dtype=np.float64)
    np.add.at(values, (key[ok], acc_pos[ok]), height[ok])

    grouped = spec.groupby(key, sort=True)
    detected = np.zeros((n_feat, n_acc), dtype=bool)
    detected[key, acc_code] = True
    feats = pd.DataFrame(
        {
            "feature_id": np.asarray(uniques, dtype=object),
            "precursor_mz": grouped["precursor_mz"].median().to_numpy(),
            "charge": grouped["charge"].max().astype(np.int64).to_numpy(),
            "rt_min": grouped["rt_min"].median().to_numpy(),
            "polarity": grouped["polarity"].first().astype(str).to_numpy(),
            "n_detected": detected.sum(axis=1),
        }
    )
    order = np.lexsort((-spec["precursor_intensity"].to_numpy(dtype=np.float64), key))
    first = order[np.searchsorted(key[order], np.arange(n_feat))]  # the most intense row of each feature
    best = spec.loc[first, ["accession", "replicate", "feature_id"]].astype(str).reset_index(drop=True)
    return Abundances(feats, accessions, values, best)


# ----------------------------------------------------------------------------------------------- statistics


def normalise(values: np.ndarray, method: str = DEFAULT_NORMALISATION) -> np.ndarray:
    """``bmn``: (x + 1) / the sample's total of (x + 1), as BMN's script; ``raw``: unchanged (module docstring)."""
    if method == "raw":
        return np.asarray(values, dtype=np.float64)
    if method == "bmn":
        shifted = np.asarray(values, dtype=np.float64) + 1.0
        return shifted / shifted.sum(axis=0, keepdims=True)
    raise ConfigError(f"unknown normalisation '{method}'; choose one of {', '.join(NORMALISATIONS)}")


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q over the finite p-values (NaN stays NaN)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return q
    order = np.argsort(p[ok], kind="stable")
    scaled = p[ok][order] * m / np.arange(1, m + 1)
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    q[ok[order]] = np.minimum(scaled, 1.0)
    return q


def bonferroni(p: np.ndarray) -> np.ndarray:
    """Bonferroni p over the finite p-values (NaN stays NaN)."""
    p = np.asarray(p, dtype=np.float64)
    return np.minimum(p * int(np.isfinite(p).sum()), 1.0)


def activity_scores(
    abundances: Abundances,
    columns: np.ndarray,
    activity: np.ndarray,
    normalisation: str = DEFAULT_NORMALISATION,
    seed: int = 0,
) -> pd.DataFrame:
    """The scores table (``SCORE_COLUMNS`` less the library ones) of the accessions at ``columns``, by evidence; p as
    :func:`p_method` says (``seed`` for random orderings).

    Normalisation uses the samples correlated only (a sample's total over every feature, as BMN). Sorted by
    Pearson p (NaN last), then by r (positive first); ``rank`` is the position.
    """
    n = len(columns)
    if n < MIN_SAMPLES:
        raise ConfigError(f"{n} samples have an activity value; a correlation needs at least {MIN_SAMPLES}")
    y = np.asarray(activity, dtype=np.float64)
    if np.ptp(y) == 0:
        raise ConfigError(f"the activity is the same ({y[0]:g}) in all {n} samples: nothing to correlate with")
    raw = abundances.values[:, columns]
    x = normalise(raw, normalisation)
    r, p = correlation_p(x, y, seed=seed)
    rho, p_s = correlation_p(x, y, seed=seed, ranks=True)
    out = abundances.features[["feature_id", "precursor_mz", "charge", "rt_min", "polarity"]].copy()
    out["direction"] = np.where(np.isnan(r), "", np.where(r >= 0, "positive", "negative"))
    out["r"], out["p"], out["q"], out["p_bonferroni"] = r, p, bh_adjust(p), bonferroni(p)
    out["spearman_r"], out["spearman_p"] = rho, p_s
    out["spearman_q"], out["spearman_p_bonferroni"] = bh_adjust(p_s), bonferroni(p_s)
    out["n_samples"] = n
    out["n_detected"] = (raw > 0).sum(axis=1)
    out["mean_abundance"] = raw.mean(axis=1)
    order = np.lexsort((-np.nan_to_num(r, nan=-2.0), np.nan_to_num(p, nan=2.0)))
    out = out.iloc[order].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


# ----------------------------------------------------------------------------------------------- annotation


def annotate_top(
    scores: pd.DataFrame,
    abundances: Abundances,
    library_paths: list[str] | None,
    top: int = 50,
    ms1_tol_da: float = 0.01,
    ms2_tol_da: float = 0.02,
) -> pd.DataFrame:
    """Library identities (precursor within ``ms1_tol_da``) of the first ``top`` rows, named only above the bar of
    every driver name (:func:`labels.names_compound`). Analogue (open-search) hits are left out."""
    from ms2img.explain.annotation import SpectralLibrary
    from ms2img.explain.labels import names_compound

    out = scores.assign(library_match="", library_score=np.nan, matched_peaks=0)
    if top <= 0 or abundances.events_dir is None or len(scores) == 0:
        return out
    library = SpectralLibrary.from_paths(library_paths, ms1_tol_da=ms1_tol_da, ms2_tol_da=ms2_tol_da)
    rows = scores.index[: int(top)]
    pos = pd.Index(abundances.features["feature_id"]).get_indexer(scores.loc[rows, "feature_id"])
    want = abundances.best.iloc[pos].assign(row=rows)
    spectra = _spectra(abundances.events_dir, want)
    for rec in want.itertuples(index=False):
        mz, inten = spectra.get((rec.accession, rec.replicate, rec.feature_id), (np.zeros(0), np.zeros(0)))
        row = scores.loc[rec.row]
        hit = library.search(float(row["precursor_mz"]), mz, inten, str(row["polarity"]))
        if hit["library_name"] and names_compound(hit["library_score"], hit["matched_peaks"]):
            out.loc[rec.row, ["library_match", "library_score", "matched_peaks"]] = [
                hit["library_name"], hit["library_score"], hit["matched_peaks"],
            ]  # fmt: skip
    return out


def _spectra(events_dir: Path, want: pd.DataFrame) -> dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]]:
    """Fragments of the wanted (accession, replicate, feature_id) triples, reading only their files and rows."""
    import pyarrow.parquet as pq

    from ms2img.io.schema import accession_filename

    out = {}
    for acc, grp in want.groupby("accession"):
        path = events_dir / accession_filename(str(acc))
        if not path.is_file():
            continue
        ids = sorted(set(grp["feature_id"].astype(str)))
        cols = ["replicate", "feature_id", "fragment_mz", "fragment_intensity"]
        ev = pq.read_table(path, columns=cols, filters=[("feature_id", "in", ids)]).to_pandas()
        for (rep, fid), g in ev.groupby([ev["replicate"].astype(str), ev["feature_id"].astype(str)]):
            out[(str(acc), rep, fid)] = (g["fragment_mz"].to_numpy(), g["fragment_intensity"].to_numpy())
    return out


# ----------------------------------------------------------------------------------------------- tables out


def cytoscape_nodes(scores: pd.DataFrame) -> pd.DataFrame:
    """A node-attribute table Cytoscape and GNPS import as it is: key ``shared name`` = the network's feature id."""
    q = scores["q"].to_numpy(dtype=np.float64)
    floor = np.nanmin(q[q > 0]) if np.any(q > 0) else 1e-300
    nodes = pd.DataFrame(
        {
            "shared name": scores["feature_id"].astype(str),
            "precursor_mz": scores["precursor_mz"],
            "charge": scores["charge"],
            "rt_min": scores["rt_min"],
            "activity_rank": scores["rank"],
            "r": scores["r"],
            "p": scores["p"],
            "q": scores["q"],
            "p_bonferroni": scores["p_bonferroni"],
            "neg_log10_q": -np.log10(np.maximum(q, floor)),
            "spearman_r": scores["spearman_r"],
            "spearman_q": scores["spearman_q"],
            "direction": scores["direction"],
            "library_match": scores.get("library_match", pd.Series("", index=scores.index)).fillna(""),
        }
    )
    return nodes[NODE_COLUMNS]


def join_drivers(
    scores: pd.DataFrame,
    drivers: pd.DataFrame,
    mz_ppm: float = 10.0,
    rt_tol_min: float = 0.1,
    image_x_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Model drivers and correlation scores side by side, matched by m/z (ppm) and RT; unmatched rows kept, each
    with a ``model_note`` saying why it has no partner. ``image_x_range``: the precursor m/z the model's images draw
    (an image family's drivers), so a correlated feature outside it is said to be invisible to the model, not
    unimportant to it."""
    cols = ["rank", "feature_id", "precursor_mz", "rt_min", "r", "q", "p_bonferroni", "library_match"]
    left = scores[[c for c in cols if c in scores.columns]].rename(columns={"rank": "correlation_rank"})
    left["model_rank"] = np.nan
    left["model_importance"] = np.nan
    left["model_direction"] = ""
    unmatched = []
    mz = left["precursor_mz"].to_numpy(dtype=np.float64)
    rt = left["rt_min"].to_numpy(dtype=np.float64)
    for d in drivers.itertuples(index=False):
        close = (np.abs(mz - d.precursor_mz) <= d.precursor_mz * mz_ppm * 1e-6) & (np.abs(rt - d.rt_min) <= rt_tol_min)
        hits = np.flatnonzero(close & left["model_rank"].isna().to_numpy())
        if hits.size == 0:
            unmatched.append({"precursor_mz": d.precursor_mz, "rt_min": d.rt_min, "model_rank": d.rank,
                              "model_importance": getattr(d, "importance", np.nan),
                              "model_direction": getattr(d, "direction", "")})  # fmt: skip
            continue
        i = hits[np.argmin(np.abs(mz[hits] - d.precursor_mz))]
        left.iloc[i, left.columns.get_indexer(["model_rank", "model_importance", "model_direction"])] = [
            d.rank, getattr(d, "importance", np.nan), getattr(d, "direction", ""),
        ]  # fmt: skip
    left["model_note"] = f"not among the model's {len(drivers)} drivers"
    left.loc[left["model_rank"].notna(), "model_note"] = ""
    if image_x_range is not None:
        lo, hi = (float(v) for v in image_x_range)
        mz = left["precursor_mz"]
        outside = left["model_rank"].isna() & mz.notna() & ~mz.between(lo, hi)
        left.loc[outside, "model_note"] = (
            f"precursor m/z outside render.x_range {lo:g}-{hi:g}: not in the model's image"
        )
    for row in unmatched:
        row["model_note"] = f"no feature within {mz_ppm:g} ppm and {rt_tol_min:g} min of this driver"
    both = pd.concat([left, pd.DataFrame(unmatched)], ignore_index=True) if unmatched else left
    keep = both["model_rank"].notna() | (both["correlation_rank"] <= max(50, len(drivers)))
    both = both[keep]
    both = both.assign(_k=np.fmin(both["correlation_rank"].to_numpy(float), both["model_rank"].to_numpy(float)))
    return both.sort_values(["_k", "correlation_rank"], kind="stable").drop(columns="_k").reset_index(drop=True)


def image_drivers(drivers_csv: str | Path) -> bool:
    """Did an image family write these drivers (its drivers.json names the images it read)? Such a model sees only
    the precursors inside render.x_range."""
    try:
        meta = json.loads(Path(drivers_csv).with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "images" in meta


# ----------------------------------------------------------------------------------------------- the command


def score_assay(
    assay: str,
    *,
    events_dir: str | Path = "data/events",
    activity_path: str | Path = "data/raw/assays.csv",
    out_dir: str | Path,
    normalisation: str = DEFAULT_NORMALISATION,
    absent_as_zero: bool = False,
    libraries: list[str] | None = None,
    annotate: int = 50,
    drivers_csv: str | Path | None = None,
    abundances: Abundances | None = None,
    seed: int = 0,
    x_range: tuple[float, float] | None = None,
) -> CorrelationResult:
    """Score every feature against ``assay`` and write activity_scores.csv, activity_volcano.png,
    cytoscape_nodes.tsv (and drivers_vs_correlation.csv when the model's drivers exist) to ``out_dir``.
    ``x_range``: the project's render.x_range, for the note on features an image model cannot see."""
    from ms2img.atomic import write_text
    from ms2img.io.activity import align_activity, read_activity
    from ms2img.io.sample_sheet import read_manifest, replicate_hint
    from ms2img.plots.volcano import plot_volcano

    t0 = time.perf_counter()
    if normalisation not in NORMALISATIONS:
        raise ConfigError(f"unknown normalisation '{normalisation}'; choose one of {', '.join(NORMALISATIONS)}")
    ab = abundances if abundances is not None else read_abundances(events_dir)
    activity = read_activity(activity_path, assay)
    manifest = read_manifest(ab.events_dir) if ab.events_dir is not None else None
    known = list(manifest["accession"]) if manifest is not None and "accession" in manifest.columns else None
    columns, y = align_activity(
        activity, ab.accessions, absent_as_zero=absent_as_zero, source=activity_path, known=known
    )
    if len(columns) < MIN_SAMPLES:
        hint = "" if absent_as_zero else " (a FERMO file lists the actives only: add --absent-as-zero)"
        raise ConfigError(
            f"assay {assay}: {len(columns)} samples of {events_dir} have a value in {activity_path}; a correlation "
            f"needs at least {MIN_SAMPLES}{hint}"
        )
    replicates = None  # injections of one extract scored as separate samples: every p and q is far too small
    if manifest is not None and {"accession", "sample", "type"} <= set(manifest.columns):
        scored = manifest[manifest["accession"].isin({str(ab.accessions[int(k)]) for k in columns})]
        hint = replicate_hint(scored, tuple(scored["type"].unique()))
        if hint:
            replicates = (f"{hint}. Until then each injection counts as an independent sample: every p and q here "
                          "is far too small")  # fmt: skip
            log.warning("%s: %s", assay, replicates)
    scores = activity_scores(ab, columns, y, normalisation, seed)
    scores = annotate_top(scores, ab, libraries, top=annotate)
    scores = scores[SCORE_COLUMNS]
    t_scores = time.perf_counter() - t0

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / "activity_scores.csv",
        "png": out_dir / "activity_volcano.png",
        "nodes": out_dir / "cytoscape_nodes.tsv",
    }
    write_text(paths["csv"], scores.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    nodes = cytoscape_nodes(scores)
    write_text(paths["nodes"], nodes.to_csv(sep="\t", index=False, float_format="%.10g", lineterminator="\n"))
    title = f"{assay}: {len(scores)} features x {len(columns)} samples ({normalisation} normalisation)"
    plot_volcano(scores, paths["png"], title=title, assay=assay)
    if drivers_csv is not None and Path(drivers_csv).is_file():
        drivers = pd.read_csv(drivers_csv)
        if {"rank", "precursor_mz", "rt_min"} <= set(drivers.columns):
            paths["joined"] = out_dir / "drivers_vs_correlation.csv"
            joined = join_drivers(scores, drivers, image_x_range=x_range if image_drivers(drivers_csv) else None)
            write_text(paths["joined"], joined.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    meta = {
        "assay": assay,
        "normalisation": normalisation,
        "n_samples": len(columns),
        "n_features": len(scores),
        "n_tested": int(scores["p"].notna().sum()),
        "p_method": p_method(y),
        "n_q_below_0.05": int((scores["q"] < 0.05).sum()),
        "n_bonferroni_below_0.05": int((scores["p_bonferroni"] < 0.05).sum()),
        "absent_as_zero": absent_as_zero,
        "replicate_warning": replicates,
        "activity": str(activity_path),
        "seconds_scores": round(t_scores, 3),
        "seconds_total": round(time.perf_counter() - t0, 3),
    }
    log.info("%s: %d features x %d samples scored in %.2f s -> %s", assay, len(scores), len(columns),
             meta["seconds_total"], out_dir)  # fmt: skip
    return CorrelationResult(assay=assay, scores=scores, paths=paths, meta=meta)
