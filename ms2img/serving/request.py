"""The one request check: what a prediction request is (raw peaks, one row per precursor), how it is validated
and parsed, and how it maps to and from the canonical events table.

The served model (:mod:`ms2img.serving.predictor`), the HTTP guard (:mod:`ms2img.serving.app`) and registration's
input examples all use it; training never does (feature families match already parsed arrays with
:func:`ms2img.features.match.match_parsed`), so editing the request check never makes a trained model stale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ms2img.errors import Ms2ImgError
from ms2img.io.msms import MsmsFormatError, parse_msms_column
from ms2img.io.schema import EVENT_COLUMNS, MAX_INTENSITY, coerce_events, polarity_of

REQUEST_COLUMNS = ["accession", "precursor_mz", "precursor_intensity", "rt_min", "msms"]
NUMERIC_REQUEST_COLUMNS = ["precursor_mz", "precursor_intensity", "rt_min"]
# Optional: which injection of its accession a row comes from. Rows of several injections of one extract are
# averaged by the server as training averaged them (per family: an image family in its intensity transform, a
# feature family on raw heights), which no single pre-averaged height per precursor can give both.
REPLICATE = "replicate"
DEFAULT_MAX_ROWS = 200_000
# Request params (``{"params": {...}}`` beside the rows, MLflow's pyfunc params, declared in the model signature):
# booleans, false when left out, and the request's ion mode (``polarity``: "positive" or "negative", checked against
# the model's). MLflow drops a param its signature lacks with a log line only, so the guard (:func:`check_params`)
# refuses one: a misspelt ``class_out_of_domian`` silently answered without a class.
PARAM_EXPLAIN = "explain"
PARAM_CLASS_OUT_OF_DOMAIN = "class_out_of_domain"
PARAM_POLARITY = "polarity"
REQUEST_PARAMS = (PARAM_EXPLAIN, PARAM_CLASS_OUT_OF_DOMAIN, PARAM_POLARITY)
POLARITIES = ("positive", "negative")
DEFAULT_MAX_FRAGMENTS = 5_000_000
# An image and its domain-check copies take ~100 KB of server memory per accession: 40,000 one-row accessions in a
# 4.5 MB body took 4.9 GB. A lab's request holds tens to hundreds of extracts.
MAX_ACCESSIONS = 5_000


class RequestError(Ms2ImgError, ValueError):
    """A prediction request that cannot be served; the message says which column or row is wrong."""


def row_error(row: int, problem: str) -> RequestError:
    """A RequestError naming the request row (0-based, as the client sent it)."""
    return RequestError(f"request row {row}: {problem}")


def short(text: object, n: int = 80) -> str:
    """A value quoted for an error message, cut to ``n`` characters (JSON null, NaN once in a frame: "null")."""
    if text is None or (isinstance(text, float | np.floating) and np.isnan(text)):
        return "null"
    text = repr(text.item() if isinstance(text, np.generic) else text)
    return text if len(text) <= n else text[: n - 3] + "..."


def check_params(params: Any) -> None:
    """RequestError unless ``params`` (the body's ``"params"``) is an object of known names with boolean values."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise RequestError(f"'params' must be an object such as {{\"{PARAM_EXPLAIN}\": true}}, got {short(params)}")
    unknown = [str(k) for k in params if k not in REQUEST_PARAMS]
    if unknown:
        raise RequestError(f"unknown params {unknown[:5]}; known: {list(REQUEST_PARAMS)}")
    wrong = [k for k, v in params.items() if k != PARAM_POLARITY and not isinstance(v, bool)]
    if wrong:
        raise RequestError(f"param {wrong[0]!r} must be true or false, got {short(params[wrong[0]])}")
    if PARAM_POLARITY in params:
        request_polarity(params[PARAM_POLARITY])


def request_polarity(value: Any) -> str:
    """The ``polarity`` param as "positive", "negative" or "" (not given); RequestError for anything else."""
    if value is None or value == "":
        return ""
    mode = polarity_of(value) if isinstance(value, str) else ""
    # the words themselves, not polarity_of's reading of an export's text: 'positive-and-negative' read as positive
    if mode in POLARITIES and value.strip().lower() in (mode, mode[:3], "+" if mode == "positive" else "-"):
        return mode
    raise RequestError(f"param {PARAM_POLARITY!r} must be one of {list(POLARITIES)} (or +, -), got {short(value)}")


def parse_msms(msms: pd.Series, max_fragments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The msms column through the one MS/MS parser (:func:`ms2img.io.msms.parse_msms_column`, the rules
    ``ms2img ingest`` applies): (fragments per row, fragment m/z, fragment intensity); errors name the row."""
    try:
        parsed = parse_msms_column(msms, column=None, max_fragments=max_fragments, max_intensity=MAX_INTENSITY)
    except MsmsFormatError as exc:
        if exc.row is None:
            raise RequestError(f"payload too large: {exc.problem} per request") from None
        raise row_error(exc.row, f"msms: {exc.problem}") from None
    return parsed.counts(len(msms)), parsed.mz, parsed.intensity


def validate_request(df: Any, max_rows: int = DEFAULT_MAX_ROWS) -> pd.DataFrame:
    """Check a request frame column by column and return it with clean dtypes; raise RequestError otherwise."""
    if not isinstance(df, pd.DataFrame):
        raise RequestError(f"expected a table with columns {REQUEST_COLUMNS}, got {type(df).__name__}")
    if df.empty:
        raise RequestError(f"empty request: send at least one row with columns {REQUEST_COLUMNS}")
    missing = [c for c in REQUEST_COLUMNS if c not in df.columns]
    if missing:
        raise RequestError(f"missing columns {missing}; expected exactly {REQUEST_COLUMNS}")
    extra = [str(c) for c in df.columns if c not in (*REQUEST_COLUMNS, REPLICATE)]
    if extra:
        raise RequestError(
            f"unknown columns {extra}; expected exactly {REQUEST_COLUMNS} (and optionally {REPLICATE!r})"
        )
    if df.columns.duplicated().any():
        raise RequestError(f"duplicated columns {sorted(set(df.columns[df.columns.duplicated()]))}")
    if len(df) > max_rows:
        raise RequestError(f"payload too large: {len(df)} rows, at most {max_rows} precursors per request")
    labels = ["accession"] + ([REPLICATE] if REPLICATE in df.columns else [])  # names, not numbers
    out = df[REQUEST_COLUMNS + labels[1:]].reset_index(drop=True)
    for name in labels:
        values = out[name]
        blank = values.isna().to_numpy()
        if not blank.any() and values.dtype == object:
            blank = np.fromiter((not isinstance(a, str | int | float) or isinstance(a, bool) for a in values), bool,
                                len(values))  # fmt: skip
        if blank.any():
            row = int(np.flatnonzero(blank)[0])
            raise row_error(row, f"{name} must be a non-empty string, got {short(values.iloc[row])}")
        out[name] = values.astype(str).str.strip()
        empty = (out[name] == "").to_numpy()
        if empty.any():
            raise row_error(int(np.flatnonzero(empty)[0]), f"{name} must be a non-empty string, got ''")
    for col in NUMERIC_REQUEST_COLUMNS:
        raw = out[col]
        if raw.dtype == bool or (raw.dtype == object and any(isinstance(v, bool) for v in raw)):
            row = int(np.flatnonzero([isinstance(v, bool | np.bool_) for v in raw])[0])
            raise row_error(row, f"{col} must be a finite number >= 0, got a boolean ({short(raw.iloc[row])})")
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64).to_numpy()
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise row_error(row, f"{col} must be a finite number >= 0, got {short(raw.iloc[row])}")
        if col == "precursor_intensity" and (values > MAX_INTENSITY).any():
            row = int(np.flatnonzero(values > MAX_INTENSITY)[0])
            raise row_error(row, f"{col} must be at most {MAX_INTENSITY:g}, got {short(raw.iloc[row])}")
        out[col] = values
    return out


def parse_request(
    df: Any, max_rows: int, max_fragments: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Validate and parse; fail when an accession has no fragment at all (it would silently get no answer)."""
    req = validate_request(df, max_rows)
    n_accessions = req["accession"].nunique()
    if n_accessions > MAX_ACCESSIONS:
        raise RequestError(f"payload too large: {n_accessions} accessions, at most {MAX_ACCESSIONS} per request "
                           "(split it: ms2img request --accessions)")  # fmt: skip
    counts, mz, intensity = parse_msms(req["msms"], max_fragments)
    has = pd.Series(counts > 0).groupby(req["accession"].to_numpy(), sort=True).any()
    if not has.all():
        names = has.index[~has.to_numpy()].tolist()
        raise RequestError(
            f"accession(s) {names[:5]} have no MS/MS fragments (msms is empty in every row); nothing to classify"
        )
    return req, counts, mz, intensity


def replicated(req: pd.DataFrame) -> bool:
    """True when a validated request names several injections of one accession (its rows are averaged per family)."""
    if REPLICATE not in req.columns:
        return False
    return bool((req.groupby("accession", sort=False)[REPLICATE].nunique() > 1).any())


def injections(req: pd.DataFrame, counts: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Per accession of ``names``, its injections holding a detected precursor with MS/MS (1 without a ``replicate``
    column): what a per-injection count or mean divides by. An injection of height-0 rows only is no injection (the
    events it came from had no row of it)."""
    if REPLICATE not in req.columns:
        return np.ones(len(names))
    detected = (counts > 0) & (req["precursor_intensity"].to_numpy(np.float64) > 0)
    per = req[detected].groupby("accession")[REPLICATE].nunique()
    return per.reindex(names, fill_value=0).to_numpy(np.float64).clip(min=1.0)


def injection_features(req: pd.DataFrame) -> np.ndarray:
    """Per request row, the precursor id on which the renderer merges an accession's injections.

    Each row is its own precursor. With a ``replicate`` column, rows of one accession's injections that share
    precursor m/z, RT and spectrum (the k-th such row of each injection) get one id, as an aligned export's feature
    (whose injections share its one spectrum) got one ``feature_id`` in training. The spectrum tells apart two
    features of one m/z and RT, one of them absent from an injection.
    """
    if REPLICATE not in req.columns:
        return np.arange(len(req))
    precursor = ["accession", "precursor_mz", "rt_min", "msms"]
    nth = req.groupby([*precursor, REPLICATE], sort=False).cumcount()
    return pd.factorize(pd.MultiIndex.from_arrays([*(req[c] for c in precursor), nth]))[0]


def parsed_to_events(req: pd.DataFrame, counts: np.ndarray, mz: np.ndarray, intensity: np.ndarray) -> pd.DataFrame:
    """A parsed request (:func:`parse_request`) as the canonical events table (one row per fragment; precursors
    by :func:`injection_features`)."""
    rows = np.repeat(np.arange(len(req)), counts)
    replicate = req[REPLICATE].to_numpy()[rows] if REPLICATE in req.columns else "1"
    events = pd.DataFrame(
        {
            "accession": req["accession"].to_numpy()[rows],
            "replicate": replicate,
            "feature_id": injection_features(req)[rows].astype(str),
            "precursor_mz": req["precursor_mz"].to_numpy()[rows],
            "rt_min": req["rt_min"].to_numpy()[rows],
            "precursor_intensity": req["precursor_intensity"].to_numpy()[rows],
            "fragment_mz": mz,
            "fragment_intensity": intensity,
            "polarity": "unknown",
        }
    )
    return coerce_events(events[EVENT_COLUMNS])


def request_to_events(
    df: pd.DataFrame, max_rows: int = DEFAULT_MAX_ROWS, max_fragments: int = DEFAULT_MAX_FRAGMENTS
) -> pd.DataFrame:
    """Turn a request (one row per precursor [and injection]) into the canonical events table (one row per fragment)."""
    return parsed_to_events(*parse_request(df, max_rows, max_fragments))


def events_to_request(events: pd.DataFrame) -> pd.DataFrame:
    """The inverse view: canonical events to request rows, one per precursor of each injection.

    An accession of one injection gives one row per precursor. Several injections give one row per precursor and
    injection, with a ``replicate`` column, and the served model averages them as training did: the renderer
    averages precursor intensities in its intensity transform (the mean of square roots, not the root of the mean),
    the feature tables average raw heights, so no single averaged height serves both. Precursors are merged across
    replicates by (accession, feature_id, m/z to 4 decimals), as the renderer merges them; each merged precursor's
    rows carry its first m/z and RT, so the server, which has no feature ids, finds the same merge on (m/z, RT).
    """
    if events.empty:
        return pd.DataFrame(columns=REQUEST_COLUMNS)
    from ms2img.render.scaling import MERGE_MZ_DECIMALS

    ev = events.assign(_pmz=events["precursor_mz"].round(MERGE_MZ_DECIMALS), _order=np.arange(len(events)))
    merged = ["accession", "feature_id", "_pmz"]
    several = (ev.groupby("accession")["replicate"].nunique() > 1).any()
    ev = ev.assign(
        precursor_mz=ev.groupby(merged, sort=False)["precursor_mz"].transform("first"),
        rt_min=ev.groupby(merged, sort=False)["rt_min"].transform("first"),
        precursor_intensity=ev["precursor_intensity"].fillna(0.0),  # a missing height counts as absent
        pair=ev["fragment_mz"].map("{:.5f}".format) + ":" + ev["fragment_intensity"].map("{:.6g}".format),
    )
    if not several:  # one row per precursor, as the request has always been
        ev = ev.assign(replicate="")
    grouped = ev.groupby([*merged, "replicate"], sort=False).agg(
        precursor_mz=("precursor_mz", "first"),
        precursor_intensity=("precursor_intensity", "first"),
        rt_min=("rt_min", "first"),
        msms=("pair", " ".join),
        _order=("_order", "min"),
    )
    out = grouped.reset_index().sort_values("_order", kind="stable")
    return out[REQUEST_COLUMNS + ([REPLICATE] if several else [])].reset_index(drop=True)


def random_request(
    n_precursors: int = 5000, n_fragments: int = 30, seed: int = 0, accession: str = "BENCH"
) -> pd.DataFrame:
    """Request rows for one synthetic accession (m/z 100-1500, fragments below their precursor), for tests."""
    rng = np.random.default_rng(seed)
    pmz = rng.uniform(100, 1500, n_precursors)
    fmz = rng.uniform(0.05, 1.0, (n_precursors, n_fragments)) * pmz[:, None]
    fint = np.rint(rng.lognormal(5, 1, (n_precursors, n_fragments))).astype(np.int64)
    pairs = np.char.add(np.char.add(np.char.mod("%.4f", fmz), ":"), np.char.mod("%d", fint))
    return pd.DataFrame(
        {
            "accession": accession,
            "precursor_mz": np.round(pmz, 5),
            "precursor_intensity": np.round(rng.lognormal(10, 2, n_precursors), 1),
            "rt_min": np.round(rng.uniform(0.5, 30, n_precursors), 3),
            "msms": [" ".join(r) for r in pairs],
        }
    )
