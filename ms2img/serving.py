"""The served model: an MLflow pyfunc taking raw peaks (one row per precursor), answering per accession.

Request rows look like MS-DIAL export rows: ``accession, precursor_mz, precursor_intensity, rt_min, msms`` with
``msms`` an ``"mz:int mz:int"`` string. One row per precursor keeps MLflow's JSON parsing cheap (one row per
fragment costs ~30x more; see ../shared/design.md, "Serving"). Rendering happens inside, so clients never
build images. The answer has one row per accession, in the order the request first names them, probabilities
rounded to ``PROBABILITY_DECIMALS``, and no class for an accession outside the applicability domain unless the
request's params ask for one (``class_out_of_domain``). Bad requests raise an ``MlflowException`` with
``INVALID_PARAMETER_VALUE``, which the scoring server answers with HTTP 400 and the message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from ms2img.errors import Ms2ImgError
from ms2img.io.msms import MsmsFormatError, parse_msms_column
from ms2img.io.schema import EVENT_COLUMNS, coerce_events
from ms2img.validation.events import DEFAULT_MAX_INTENSITY

log = logging.getLogger(__name__)

REQUEST_COLUMNS = ["accession", "precursor_mz", "precursor_intensity", "rt_min", "msms"]
RESPONSE_COLUMNS = ["accession", "probability", "class", "assay", "model_version"]
NUMERIC_REQUEST_COLUMNS = ["precursor_mz", "precursor_intensity", "rt_min"]
DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_FRAGMENTS = 5_000_000
# Largest precursor / fragment intensity served: the limit ``ms2img validate`` applies to training events.
MAX_INTENSITY = DEFAULT_MAX_INTENSITY
# Served probabilities are rounded to this many decimals: float32 model outputs carry ~7 significant digits of noise
# (0.20999999344348907), and nothing a reader decides on moves in the 5th decimal.
PROBABILITY_DECIMALS = 4
# Request params (``{"params": {...}}`` in the body, MLflow's pyfunc params; declared in :func:`request_signature`).
PARAM_EXPLAIN = "explain"
PARAM_CLASS_OUT_OF_DOMAIN = "class_out_of_domain"


class RequestError(Ms2ImgError, ValueError):
    """A prediction request that cannot be served; the message says which column or row is wrong."""


def _row_error(row: int, problem: str) -> RequestError:
    return RequestError(f"request row {row}: {problem}")


def _short(text: object, n: int = 80) -> str:
    text = repr(text.item() if isinstance(text, np.generic) else text)
    return text if len(text) <= n else text[: n - 3] + "..."


def _parse_msms(msms: pd.Series, max_fragments: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The msms column through the one MS/MS parser (:func:`ms2img.io.msms.parse_msms_column`, the rules
    ``ms2img ingest`` applies): (fragments per row, fragment m/z, fragment intensity); errors name the row."""
    try:
        parsed = parse_msms_column(msms, column=None, max_fragments=max_fragments)
    except MsmsFormatError as exc:
        if exc.row is None:
            raise RequestError(f"payload too large: {exc.problem} per request") from None
        raise _row_error(exc.row, f"msms: {exc.problem}") from None
    counts = parsed.counts(len(msms))
    too_big = np.flatnonzero(parsed.intensity > MAX_INTENSITY)
    if len(too_big):
        k = int(too_big[0])
        row = int(np.searchsorted(np.cumsum(counts), k, side="right"))
        raise _row_error(row, f"msms: fragment intensity {parsed.intensity[k]:g} is above {MAX_INTENSITY:g}")
    return counts, parsed.mz, parsed.intensity


def validate_request(df: Any, max_rows: int = DEFAULT_MAX_ROWS) -> pd.DataFrame:
    """Check a request frame column by column and return it with clean dtypes; raise RequestError otherwise."""
    if not isinstance(df, pd.DataFrame):
        raise RequestError(f"expected a table with columns {REQUEST_COLUMNS}, got {type(df).__name__}")
    if df.empty:
        raise RequestError(f"empty request: send at least one row with columns {REQUEST_COLUMNS}")
    missing = [c for c in REQUEST_COLUMNS if c not in df.columns]
    if missing:
        raise RequestError(f"missing columns {missing}; expected exactly {REQUEST_COLUMNS}")
    extra = [str(c) for c in df.columns if c not in REQUEST_COLUMNS]
    if extra:
        raise RequestError(f"unknown columns {extra}; expected exactly {REQUEST_COLUMNS}")
    if df.columns.duplicated().any():
        raise RequestError(f"duplicated columns {sorted(set(df.columns[df.columns.duplicated()]))}")
    if len(df) > max_rows:
        raise RequestError(f"payload too large: {len(df)} rows, at most {max_rows} precursors per request")
    out = df[REQUEST_COLUMNS].reset_index(drop=True)
    acc = out["accession"]
    blank = acc.isna().to_numpy()
    if not blank.any() and acc.dtype == object:
        blank = np.fromiter((not isinstance(a, str | int | float) or isinstance(a, bool) for a in acc), bool, len(acc))
    if blank.any():
        row = int(np.flatnonzero(blank)[0])
        raise _row_error(row, f"accession must be a non-empty string, got {_short(acc.iloc[row])}")
    out["accession"] = acc.astype(str).str.strip()
    empty = (out["accession"] == "").to_numpy()
    if empty.any():
        raise _row_error(int(np.flatnonzero(empty)[0]), "accession must be a non-empty string, got ''")
    for col in NUMERIC_REQUEST_COLUMNS:
        raw = out[col]
        if raw.dtype == bool or (raw.dtype == object and any(isinstance(v, bool) for v in raw)):
            row = int(np.flatnonzero([isinstance(v, bool | np.bool_) for v in raw])[0])
            raise _row_error(row, f"{col} must be a finite number >= 0, got a boolean ({_short(raw.iloc[row])})")
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64).to_numpy()
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _row_error(row, f"{col} must be a finite number >= 0, got {_short(raw.iloc[row])}")
        if col == "precursor_intensity" and (values > MAX_INTENSITY).any():
            row = int(np.flatnonzero(values > MAX_INTENSITY)[0])
            raise _row_error(row, f"{col} must be at most {MAX_INTENSITY:g}, got {_short(raw.iloc[row])}")
        out[col] = values
    return out


def _parse_request(
    df: Any, max_rows: int, max_fragments: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Validate and parse; fail when an accession has no fragment at all (it would silently get no answer)."""
    req = validate_request(df, max_rows)
    counts, mz, intensity = _parse_msms(req["msms"], max_fragments)
    has = pd.Series(counts > 0).groupby(req["accession"].to_numpy(), sort=True).any()
    if not has.all():
        names = has.index[~has.to_numpy()].tolist()
        raise RequestError(
            f"accession(s) {names[:5]} have no MS/MS fragments (msms is empty in every row); nothing to classify"
        )
    return req, counts, mz, intensity


def request_to_events(
    df: pd.DataFrame, max_rows: int = DEFAULT_MAX_ROWS, max_fragments: int = DEFAULT_MAX_FRAGMENTS
) -> pd.DataFrame:
    """Turn a validated request (one row per precursor) into the canonical events table (one row per fragment)."""
    req, counts, mz, intensity = _parse_request(df, max_rows, max_fragments)
    rows = np.repeat(np.arange(len(req)), counts)
    events = pd.DataFrame(
        {
            "accession": req["accession"].to_numpy()[rows],
            "replicate": "1",
            "feature_id": rows.astype(str),
            "precursor_mz": req["precursor_mz"].to_numpy()[rows],
            "rt_min": req["rt_min"].to_numpy()[rows],
            "precursor_intensity": req["precursor_intensity"].to_numpy()[rows],
            "fragment_mz": mz,
            "fragment_intensity": intensity,
            "polarity": "unknown",
        }
    )
    return coerce_events(events[EVENT_COLUMNS])


def render_request(
    df: pd.DataFrame,
    config,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_fragments: int = DEFAULT_MAX_FRAGMENTS,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate, parse and render a request: (accessions sorted, float32 images ``(N, H, W)``).

    The same images as ``render_events(request_to_events(df), config)`` without building a 150k-row events table
    (its string columns cost several times the parsing on a 5,000-precursor request): each accession's arrays go
    straight to :func:`ms2img.render.render_arrays`.
    """
    req, counts, mz, intensity = _parse_request(df, max_rows, max_fragments)
    return _render_parsed(req, counts, mz, intensity, config)


def _render_parsed(req: pd.DataFrame, counts: np.ndarray, mz: np.ndarray, intensity: np.ndarray, config):
    from ms2img.render import render_arrays

    rows = np.repeat(np.arange(len(req)), counts)
    precursor = (np.cumsum(counts > 0) - 1)[rows]  # dense ids, contiguous per precursor (the renderer's fast path)
    p_mz = req["precursor_mz"].to_numpy()[rows]
    p_int = req["precursor_intensity"].to_numpy()[rows]
    codes, names = pd.factorize(req["accession"].to_numpy(dtype=object), sort=True)
    images = np.zeros((len(names), config.height, config.width), dtype=np.float32)
    if len(names) == 1:
        images[0] = render_arrays(precursor, p_mz, p_int, mz, intensity, config)
    else:
        row_acc = codes[rows]
        order = np.argsort(row_acc, kind="stable")
        bounds = np.searchsorted(row_acc[order], np.arange(len(names) + 1))
        for i in range(len(names)):
            sel = order[bounds[i] : bounds[i + 1]]
            images[i] = render_arrays(precursor[sel], p_mz[sel], p_int[sel], mz[sel], intensity[sel], config)
    return np.asarray(names, dtype=str), images


def events_to_request(events: pd.DataFrame) -> pd.DataFrame:
    """The inverse view: canonical events to request rows, one per precursor, replicates averaged.

    Mirrors the renderer's averaging, so a request built from an accession's events renders the same image as
    training did: precursors are merged across replicates by (accession, feature_id, m/z to 4 decimals), their
    intensity is the sum over replicates divided by the accession's number of replicates (absence counts as zero),
    and the spectrum is that of the first replicate holding the precursor (aligned exports repeat one spectrum).
    """
    if events.empty:
        return pd.DataFrame(columns=REQUEST_COLUMNS)
    from ms2img.render.scaling import MERGE_MZ_DECIMALS, replicate_mean

    ev = events.assign(_pmz=events["precursor_mz"].round(MERGE_MZ_DECIMALS), _order=np.arange(len(events)))
    merged = ["accession", "feature_id", "_pmz"]
    n_reps = ev.groupby("accession")["replicate"].transform("nunique").to_numpy(np.float64)
    first_row = ~ev.duplicated(merged + ["replicate"]).to_numpy()  # one value per (precursor, replicate)
    per_rep = ev[first_row]
    by_item = per_rep.groupby(merged, sort=False)
    item = by_item.ngroup().to_numpy()
    n_items = by_item.ngroups
    item_reps = np.ones(n_items)
    item_reps[item] = n_reps[first_row]
    values = per_rep["precursor_intensity"].to_numpy(np.float64)
    values = np.where(np.isnan(values), 0.0, values)  # a missing height counts as absent, as the sum always did
    intensity = pd.Series(replicate_mean(values, item, n_items, item_reps), index=by_item.size().index)
    first_rep = ev.groupby(merged, sort=False)["replicate"].transform("min")
    ev = ev[ev["replicate"] == first_rep]
    ev = ev.assign(pair=ev["fragment_mz"].map("{:.5f}".format) + ":" + ev["fragment_intensity"].map("{:.6g}".format))
    grouped = ev.groupby(merged, sort=False).agg(
        precursor_mz=("precursor_mz", "first"),
        rt_min=("rt_min", "first"),
        msms=("pair", " ".join),
        _order=("_order", "min"),
    )
    grouped["precursor_intensity"] = intensity.reindex(grouped.index).to_numpy()
    out = grouped.reset_index().sort_values("_order", kind="stable")
    return out[REQUEST_COLUMNS].reset_index(drop=True)


def _keras_inference(model, batch_size: int = 256):
    """``model(x, training=False)`` compiled once per worker, returning P(high) per image.

    On TensorFlow a graph function with a fixed input signature (no retracing) is ~2.5x faster than the eager call
    for the paper's network (its 122M-weight dense layer dominates); it is traced here, not on the first request.
    Other backends use :func:`ms2img.models.cnn.predict_proba` (eager).
    """
    import keras

    from ms2img.models.cnn import as_model_input, predict_proba

    shape = tuple(model.input_shape[1:])
    if keras.backend.backend() != "tensorflow" or any(s is None for s in shape):
        return lambda images: predict_proba(model, as_model_input(images), batch_size=batch_size)
    import tensorflow as tf

    graph = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((None, *shape), tf.float32)])

    def infer(images: np.ndarray) -> np.ndarray:
        x = as_model_input(images)
        parts = [np.asarray(graph(x[i : i + batch_size])).reshape(-1) for i in range(0, len(x), batch_size)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    infer(np.zeros((1, *shape[:2]), np.float32))
    return infer


def forest_predict_proba(model: Any, X: Any) -> np.ndarray:
    """``model.predict_proba(X)`` for a random forest or a Pipeline ending in one: the same numbers, without
    scikit-learn's per-tree overhead (checks and joblib dispatch, ~0.07 ms a tree: ~20 ms of a 300-tree request;
    the trees themselves take microseconds).

    scikit-learn validates X once for the forest, then adds every tree's ``tree_.predict(X)`` (its class
    columns) into a float64 sum and divides by the number of trees; this does the same in the same order, so
    the result equals its sequential (``n_jobs=1``, what training sets) result bit for bit. Anything else
    (multi-output forests, other estimators) goes to ``model.predict_proba``.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    forest, steps = model, []
    if isinstance(model, Pipeline):
        forest, steps = model.steps[-1][1], [t for _, t in model.steps[:-1] if t is not None and t != "passthrough"]
    if not isinstance(forest, RandomForestClassifier) or getattr(forest, "n_outputs_", None) != 1:
        return model.predict_proba(X)
    for step in steps:
        X = step.transform(X)
    X = forest._validate_X_predict(X)
    proba = np.zeros((X.shape[0], int(forest.n_classes_)), dtype=np.float64)
    for tree in forest.estimators_:
        proba += tree.tree_.predict(X)[:, : tree.n_classes_]
    proba /= len(forest.estimators_)
    return proba


def _forest_inference(model):
    """``model.predict_proba`` of an ``rf-*`` FamilyModel (float32 P(high) per row; feature families take log1p of
    the clipped heights) with the forest summed by :func:`forest_predict_proba`: the same numbers, faster. A model
    whose ``predict_proba`` is not FamilyModel's (a stand-in, a subclass) is called as it is."""
    from ms2img.models.family import FamilyModel, input_kind

    if getattr(type(model), "predict_proba", None) is not FamilyModel.predict_proba:
        return model.predict_proba
    features = input_kind(model.family) == "features"

    def infer(x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if features:
            arr = np.log1p(np.clip(arr, 0, None))
        return forest_predict_proba(model.estimator, arr)[:, 1].astype(np.float32)

    return infer


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


# ------------------------------------------------------------------------------------- every family on raw peaks
WITHHELD_NOTE = f'no class out of domain (send "params": {{"{PARAM_CLASS_OUT_OF_DOMAIN}": true}} for one)'
FAMILY_RESPONSE_COLUMNS = [
    "accession",
    "probability",
    "class",
    "assay",
    "family",
    "model_version",
    "in_domain",
    "domain_note",
]


class FamilyPredictor:
    """Raw peaks in, per-accession answer out, for any :class:`~ms2img.models.family.FamilyModel`.

    Image families render the request (the training render settings); feature families match its precursors to
    the training features (:mod:`ms2img.feature_match`). Each answer names the family and version and carries an
    applicability-domain flag (:mod:`ms2img.domain`) when a reference is available.
    """

    def __init__(
        self,
        model,
        *,
        version: str = "unknown",
        domain=None,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        from ms2img.models.family import input_kind

        self.model = model
        self.family = model.family
        self.kind = input_kind(model.family)
        self.version = str(version)
        self.domain = domain
        self.max_rows = int(max_rows)
        self.max_fragments = int(max_fragments)
        from ms2img.io import msms

        msms.warm_up()  # the compiled MS/MS parser (same results, ~3x less CPU), ready before the first request
        if self.kind == "image":
            from ms2img.render import RenderConfig, warm_up

            self.render = RenderConfig(**model.card["render"])
            warm_up()
            if self.family == "cnn":
                infers = [_keras_inference(m) for m in model.estimator]
                self._infer = lambda x: np.mean([f(x) for f in infers], axis=0)
            else:
                self._infer = _forest_inference(model)
        else:
            from ms2img.feature_match import FeatureMatcher, rule_from_card

            if model.features is None:
                raise RequestError(f"{self.family} model has no features.parquet to match requests against")
            self.matcher = FeatureMatcher.from_features(model.features, rule_from_card(model.card, self.family))
            self._infer = _forest_inference(model)

    @classmethod
    def from_folder(cls, folder: str | Path, **kwargs) -> FamilyPredictor:
        """Load ``folder`` (a FamilyModel folder, with ``domain.npz`` when registration stored one)."""
        from ms2img.domain import FILE, DomainReference
        from ms2img.models.family import FamilyModel

        folder = Path(folder)
        domain = DomainReference.load(folder / FILE) if (folder / FILE).is_file() else None
        return cls(FamilyModel.load(folder), domain=domain, **kwargs)

    def inputs(self, df: Any) -> dict[str, Any]:
        """Validate, parse and turn a request into model inputs: ``ids`` (sorted), ``x``, ``n_precursors``,
        ``mz_outside``, and ``order``: positions into ``ids`` in the order the request first names each accession."""
        req, counts, mz, intensity = _parse_request(df, self.max_rows, self.max_fragments)
        codes, names = pd.factorize(req["accession"].to_numpy(dtype=object), sort=True)
        order = np.argsort(np.unique(codes, return_index=True)[1], kind="stable")
        has = counts > 0
        n_prec = np.bincount(codes[has], minlength=len(names))
        if self.kind == "image":
            ids, x = _render_parsed(req, counts, mz, intensity, self.render)
            blank = x.reshape(len(x), -1).max(axis=1) <= 0
            if blank.any():
                (x0, x1), (y0, y1) = self.render.x_range, self.render.y_range
                raise RequestError(
                    f"accession(s) {ids[blank][:5].tolist()} have no fragment inside the model's image "
                    f"(precursor m/z {x0:g}-{x1:g}, fragment m/z {y0:g}-{y1:g}, fragment <= precursor, "
                    "intensity > 0); nothing to classify"
                )
        else:
            from ms2img.feature_match import match_parsed

            out = match_parsed(req, counts, mz, intensity, self.matcher)
            ids, x = out["ids"], out["matrix"]
        p_mz = req["precursor_mz"].to_numpy(np.float64)[has]
        if self.domain is not None:
            outside = self.domain.mz_outside(codes[has], len(names), p_mz)
        else:
            outside = np.zeros(len(names))
        return {"ids": np.asarray(ids, dtype=str), "x": x, "n_precursors": n_prec, "mz_outside": outside, "mz": p_mz,
                "codes": codes[has], "order": order}  # fmt: skip

    def predict(
        self, df: Any, explain: bool = False, class_out_of_domain: bool = False, decimals: int | None = None
    ) -> pd.DataFrame:
        """The answer (``FAMILY_RESPONSE_COLUMNS``), one row per accession in the order the request names them;
        RequestError on a bad request.

        An accession outside the applicability domain gets its probability and ``in_domain`` False but no class
        (None), unless ``class_out_of_domain``: its "low" would read as a finding when it means "cannot say".
        ``decimals`` rounds the probabilities (the served answer; None keeps the model's numbers, for comparisons).
        With ``explain`` (image families), a ``drivers`` column holds, per accession, the m/z boxes that move its
        prediction most (a list of objects).
        """
        inp = self.inputs(df)
        try:
            prob = np.asarray(self._infer(inp["x"]), dtype=float).reshape(-1)
        except Exception as exc:
            log.exception("model call failed on %d inputs", len(inp["ids"]))
            raise ModelCallError(f"internal error in the model ({exc.__class__.__name__}); see the server log") from exc
        if self.domain is not None:
            flags, notes, _ = self.domain.check(inp["x"], inp["n_precursors"], inp["mz_outside"])
        else:
            flags, notes = (
                np.ones(len(prob), bool),
                ["no applicability-domain reference stored with this model"] * len(prob),
            )
        classes = np.where(prob >= self.model.threshold, "high", "low").astype(object)
        if not class_out_of_domain and not flags.all():
            classes[~flags] = None
            notes = [n if ok else f"{n}; {WITHHELD_NOTE}" for n, ok in zip(notes, flags, strict=True)]
        out = pd.DataFrame(
            {
                "accession": inp["ids"],
                "probability": prob if decimals is None else np.round(prob, decimals),
                "class": pd.Series(classes, dtype=object),  # object: None stays JSON null (a str column makes NaN)
                "assay": self.model.assay,
                "family": self.family,
                "model_version": self.version,
                "in_domain": flags,
                "domain_note": notes,
            }
        )[FAMILY_RESPONSE_COLUMNS]
        if explain:
            drivers = np.empty(len(out), dtype=object)
            drivers[:] = self._drivers(inp["x"], decimals)
            out["drivers"] = drivers
        order = inp["order"]
        if len(order) > 1:
            out = out.iloc[order].reset_index(drop=True)
        return out

    def _drivers(self, x: np.ndarray, decimals: int | None = None) -> list[list[dict[str, Any]]]:
        """Top contributing m/z boxes per accession (``ms2img.explain.explain_one``), as objects, not JSON text;
        image families only."""
        if self.kind != "image":
            raise RequestError(f"explain is available for image families; this model is {self.family}")
        from ms2img.explain.attribution import explain_one
        from ms2img.render import image_edges

        x_edges, y_edges = image_edges(self.render)
        out = [explain_one(self.model, img, x_edges, y_edges, top=5) for img in x]
        if decimals is not None:
            for boxes in out:
                for box in boxes:
                    box["probability"] = round(float(box["probability"]), decimals)
        return out


class ModelCallError(RuntimeError):
    """The model itself failed on a valid request (the server's fault: HTTP 500, details only in the log)."""


class FamilyPyfunc(mlflow.pyfunc.PythonModel):
    """The registered pyfunc of every family (logged from code, ``ms2img/pyfunc_model.py``: no pickle).

    Artifacts: ``model_dir`` (the FamilyModel folder plus ``domain.npz``). Model config: ``model_version``,
    ``max_rows``, ``max_fragments``. Params (per request): ``explain``, ``class_out_of_domain``.
    """

    def load_context(self, context) -> None:
        config = dict(context.model_config or {})
        self._predictor = FamilyPredictor.from_folder(
            context.artifacts["model_dir"],
            version=str(config.get("model_version", "unknown")),
            max_rows=int(config.get("max_rows", DEFAULT_MAX_ROWS)),
            max_fragments=int(config.get("max_fragments", DEFAULT_MAX_FRAGMENTS)),
        )

    @property
    def predictor(self) -> FamilyPredictor:
        return self._predictor

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

        params = params or {}
        try:
            return self._predictor.predict(
                model_input,
                explain=bool(params.get(PARAM_EXPLAIN, False)),
                class_out_of_domain=bool(params.get(PARAM_CLASS_OUT_OF_DOMAIN, False)),
                decimals=PROBABILITY_DECIMALS,
            )
        except RequestError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        except ModelCallError as exc:
            raise MlflowException(str(exc), error_code=INTERNAL_ERROR) from None


def request_signature():
    """The input (one row per precursor) and output schema of every registered family model."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "accession"),
            ColSpec("double", "precursor_mz"),
            ColSpec("double", "precursor_intensity"),
            ColSpec("double", "rt_min"),
            ColSpec("string", "msms"),
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "accession"),
            ColSpec("double", "probability"),
            ColSpec("string", "class", required=False),  # null out of domain unless class_out_of_domain
            ColSpec("string", "assay"),
            ColSpec("string", "family"),
            ColSpec("string", "model_version"),
            ColSpec("boolean", "in_domain"),
            ColSpec("string", "domain_note"),
        ]
    )
    from mlflow.types import ParamSchema, ParamSpec

    # {"params": {"explain": true, "class_out_of_domain": true}} in a request body
    params = ParamSchema(
        [ParamSpec(PARAM_EXPLAIN, "boolean", False), ParamSpec(PARAM_CLASS_OUT_OF_DOMAIN, "boolean", False)]
    )
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)
