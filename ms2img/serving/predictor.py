"""The served model: an MLflow pyfunc taking raw peaks (one row per precursor), answering per accession.

Request rows look like MS-DIAL export rows: ``accession, precursor_mz, precursor_intensity, rt_min, msms`` with
``msms`` an ``"mz:int mz:int"`` string. One row per precursor keeps MLflow's JSON parsing cheap (one row per
fragment costs ~30x more to parse). Rendering happens inside, so clients never
build images. The answer has one row per accession, in the order the request first names them, probabilities
rounded to ``PROBABILITY_DECIMALS``, and no class for an accession outside the applicability domain unless the
request's params ask for one (``class_out_of_domain``). Bad requests raise an ``MlflowException`` with
``INVALID_PARAMETER_VALUE``, which the scoring server answers with HTTP 400 and the message.

A regression model (``labels.mode: regression``, card ``mode``) answers ``REGRESSION_RESPONSE_COLUMNS`` instead: the
predicted value in the assay's units (``prediction``, ``units``) and ``mode: regression``, no probability or class;
outside the applicability domain the value is withheld the same way. Classification answers are unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from ms2img.models.family import ENSEMBLE, NETWORKS
from ms2img.serving.request import (
    DEFAULT_MAX_FRAGMENTS,
    DEFAULT_MAX_ROWS,
    PARAM_CLASS_OUT_OF_DOMAIN,
    PARAM_EXPLAIN,
    PARAM_POLARITY,
    POLARITIES,
    REPLICATE,
    RequestError,
    injection_features,
    injections,
    parse_request,
    replicated,
    request_polarity,
)
from ms2img.training.fold_metrics import predict_labels

log = logging.getLogger(__name__)

RESPONSE_COLUMNS = ["accession", "probability", "class", "assay", "model_version"]
# Served probabilities are rounded to this many decimals: float32 model outputs carry ~7 significant digits of noise
# (0.20999999344348907), and nothing a reader decides on moves in the 5th decimal.
PROBABILITY_DECIMALS = 4


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
    req, counts, mz, intensity = parse_request(df, max_rows, max_fragments)
    return _render_parsed(req, counts, mz, intensity, config)


def _render_parsed(req: pd.DataFrame, counts: np.ndarray, mz: np.ndarray, intensity: np.ndarray, config):
    from ms2img.render import render_arrays

    rows = np.repeat(np.arange(len(req)), counts)
    if replicated(req):  # several injections of an accession: averaged by the training renderer itself
        from ms2img.render import render_events

        def categories(column: str) -> pd.Categorical:  # codes, not a string per fragment row
            codes, names = pd.factorize(req[column].to_numpy(dtype=object), sort=True)
            return pd.Categorical.from_codes(codes[rows], categories=names)

        columns = {
            "accession": categories("accession"),
            "replicate": categories(REPLICATE),
            "feature_id": injection_features(req)[rows],
            "fragment_mz": mz,
            "fragment_intensity": intensity,
        }
        columns |= {c: req[c].to_numpy()[rows] for c in ("precursor_mz", "precursor_intensity")}
        rendered = render_events(pd.DataFrame(columns), config, progress=False)
        return np.asarray(rendered.ids, dtype=str), rendered.images
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

    if getattr(model, "mode", "classification") == "regression":  # the value in the assay's units
        return model.predict_value
    if getattr(type(model), "predict_proba", None) is not FamilyModel.predict_proba:
        return model.predict_proba
    features = input_kind(model.family) == "features"

    def infer(x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if features:
            arr = np.log1p(np.clip(arr, 0, None))
        return forest_predict_proba(model.estimator, arr)[:, 1].astype(np.float32)

    return infer


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
REGRESSION_RESPONSE_COLUMNS = [
    "accession",
    "prediction",
    "units",
    "mode",
    "assay",
    "family",
    "model_version",
    "in_domain",
    "domain_note",
]
REGRESSION_WITHHELD_NOTE = f'no value out of domain (send "params": {{"{PARAM_CLASS_OUT_OF_DOMAIN}": true}} for one)'


def served_match(
    req: pd.DataFrame,
    counts: np.ndarray,
    mz: np.ndarray,
    intensity: np.ndarray,
    matcher: Any,
    n_injections: np.ndarray | None = None,
) -> dict[str, Any]:
    """A parsed request (:func:`ms2img.serving.request.parse_request`) matched to a feature family's training
    features as served: several injections of an accession each matched alone and the heights averaged, as the
    feature table did (:func:`ms2img.features.match.match_parsed`). Benchmarks that score "as served" call this."""
    from ms2img.features.match import match_parsed

    if n_injections is None:
        n_injections = injections(req, counts, pd.factorize(req["accession"].to_numpy(dtype=object), sort=True)[1])
    injection = req[REPLICATE].to_numpy() if replicated(req) else None
    return match_parsed(req, counts, mz, intensity, matcher, injection, n_injections)


class FamilyPredictor:
    """Raw peaks in, per-accession answer out, for any :class:`~ms2img.models.family.FamilyModel`.

    Image families render the request (the training render settings); feature families match its precursors to
    the training features (:mod:`ms2img.features.match`). Each answer names the family and version and carries an
    applicability-domain flag (:mod:`ms2img.serving.domain`) when a reference is available.
    """

    mode = "classification"  # the model's labels.mode (set from its card); regression answers a value

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
        self.mode = str(getattr(model, "mode", "classification"))  # regression: answers a value, no class
        self.version = str(version)
        self.domain = domain
        self.max_rows = int(max_rows)
        self.max_fragments = int(max_fragments)
        from ms2img.io import msms

        msms.warm_up()  # the compiled MS/MS parser (same results, ~3x less CPU), ready before the first request
        if self.kind == "image":
            from ms2img.render import RenderConfig, warm_up

            # the training images' settings, less the m/z jitter: an augmentation, never applied to a request (one
            # request answered twice gets the same probability)
            # and one image per accession: a per_replicate model's cross-validation also scores an accession by its
            # injections' mean, but a request's answer is one per accession
            self.render = RenderConfig(**{**model.card["render"], "ppm_jitter": 0.0, "per_replicate": False})
            warm_up()
            if self.family in NETWORKS:
                infers = [_keras_inference(m) for m in model.estimator]
                self._infer = lambda x: np.mean([f(x) for f in infers], axis=0)
            elif self.family == ENSEMBLE:  # the members' quantiles averaged (FamilyModel.predict_proba's rule)
                from ms2img.models.ensemble import mean_quantile

                infers = [_keras_inference(m) for m in model.estimator["networks"]]
                forest, references = model.estimator["forest"], model.estimator["references"]
                self._infer = lambda x: mean_quantile(
                    references,
                    {
                        "cnn": np.mean([f(x) for f in infers], axis=0),
                        "rf-image": forest_predict_proba(forest, np.asarray(x, dtype=np.float32))[:, 1],
                    },
                ).astype(np.float32)
            else:
                self._infer = _forest_inference(model)
        else:
            from ms2img.features.match import FeatureMatcher, rule_from_card

            if model.features is None:
                raise RequestError(f"{self.family} model has no features.parquet to match requests against")
            self.matcher = FeatureMatcher.from_features(model.features, rule_from_card(model.card, self.family))
            self._infer = _forest_inference(model)

    @classmethod
    def from_folder(cls, folder: str | Path, **kwargs) -> FamilyPredictor:
        """Load ``folder`` (a FamilyModel folder, with ``domain.npz`` when registration stored one)."""
        from ms2img.models.family import FamilyModel
        from ms2img.serving.domain import FILE, DomainReference

        folder = Path(folder)
        domain = DomainReference.load(folder / FILE) if (folder / FILE).is_file() else None
        return cls(FamilyModel.load(folder), domain=domain, **kwargs)

    def inputs(self, df: Any) -> dict[str, Any]:
        """Validate, parse and turn a request into model inputs: ``ids`` (sorted), ``x``, ``n_precursors``,
        ``mz_outside``, and ``order``: positions into ``ids`` in the order the request first names each accession."""
        req, counts, mz, intensity = parse_request(df, self.max_rows, self.max_fragments)
        codes, names = pd.factorize(req["accession"].to_numpy(dtype=object), sort=True)
        order = np.argsort(np.unique(codes, return_index=True)[1], kind="stable")
        # a precursor counts when it has MS/MS and a height: a row of an undetected feature (height 0, as an export
        # writes it) adds nothing to the image and must not lift the accession over the domain's precursor count
        has = (counts > 0) & (req["precursor_intensity"].to_numpy(np.float64) > 0)
        # precursors per injection, as the domain's floor counts training injections
        n_injections = injections(req, counts, names)
        n_prec = np.bincount(codes[has], minlength=len(names)) / n_injections
        if self.kind == "image":
            ids, x = _render_parsed(req, counts, mz, intensity, self.render)
            blank = x.reshape(len(x), -1).max(axis=1) <= 0
            if blank.any():
                raise RequestError(self._blank_reason(req, codes, names, has, np.flatnonzero(blank)))
        else:
            undetected = np.flatnonzero(n_prec == 0)  # an image family finds the same as a blank image
            if len(undetected):
                shown = "; ".join(f"{names[k]!s}: every precursor_intensity is 0 (undetected) in the rows that carry "
                                  "MS/MS" for k in undetected[:5])  # fmt: skip
                raise RequestError(f"nothing to classify for {len(undetected)} accession(s): {shown}")
            out = served_match(req, counts, mz, intensity, self.matcher, n_injections)
            ids, x = out["ids"], out["matrix"]
        p_mz = req["precursor_mz"].to_numpy(np.float64)[has]
        if self.domain is not None:
            outside = self.domain.mz_outside(codes[has], len(names), p_mz)
        else:
            outside = np.zeros(len(names))
        return {"ids": np.asarray(ids, dtype=str), "x": x, "n_precursors": n_prec, "mz_outside": outside, "mz": p_mz,
                "codes": codes[has], "order": order}  # fmt: skip

    def _blank_reason(
        self, req: pd.DataFrame, codes: np.ndarray, names: np.ndarray, has: np.ndarray, blank: np.ndarray
    ) -> str:
        """Why the first blank accessions render to an empty image, in the terms of the request's columns."""
        (x0, x1), (y0, y1) = self.render.x_range, self.render.y_range
        p_mz = req["precursor_mz"].to_numpy(np.float64)
        lines = []
        for k in blank[:5]:
            mine = codes == k
            if not has[mine].any():
                why = "every precursor_intensity is 0 (undetected) in the rows that carry MS/MS"
            elif not ((p_mz[mine & has] >= x0) & (p_mz[mine & has] <= x1)).any():
                why = f"every precursor_mz is outside the image's {x0:g}-{x1:g}"
            else:
                why = f"no fragment at m/z {y0:g}-{y1:g} with intensity > 0 at or below its precursor"
            lines.append(f"{names[k]!s}: {why}")
        return f"nothing to classify for {len(blank)} accession(s): " + "; ".join(lines)

    def predict(
        self,
        df: Any,
        explain: bool = False,
        class_out_of_domain: bool = False,
        decimals: int | None = None,
        polarity: str = "",
    ) -> pd.DataFrame:
        """The answer (``FAMILY_RESPONSE_COLUMNS``), one row per accession in the order the request names them;
        RequestError on a bad request.

        An accession outside the applicability domain gets its probability and ``in_domain`` False but no class
        (None), unless ``class_out_of_domain``: its "low" would read as a finding when it means "cannot say".
        ``decimals`` rounds the probabilities (the served answer; None keeps the model's numbers, for comparisons).
        With ``explain`` (image families), a ``drivers`` column holds, per accession, the m/z boxes that move its
        prediction most (a list of objects). ``polarity`` (the request's ion mode, "" when not said): refused when
        the model was trained on the other one.
        """
        self._check_polarity(polarity)
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
        if self.mode == "regression":
            if explain:
                raise RequestError("explain is available for classification models; this one predicts a value")
            return self._value_answer(inp, prob, flags, notes, class_out_of_domain, decimals)
        classes = np.where(predict_labels(prob, self.model.threshold) == 1, "high", "low").astype(object)
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

    def _check_polarity(self, polarity: str) -> None:
        """RequestError when the request says it holds the ion mode the model was not trained on."""
        said = request_polarity(polarity)
        trained = self.domain.polarity if self.domain is not None else "unknown"
        if said and trained in POLARITIES and said != trained:
            raise RequestError(
                f"{PARAM_POLARITY}: the request holds {said} ions; this model was trained on {trained} ions (an "
                f"extract's {said}- and {trained}-mode spectra share almost no peaks: the answer would mean nothing)"
            )

    def _value_answer(
        self, inp: dict[str, Any], value: np.ndarray, flags: np.ndarray, notes: list[str], out_of_domain: bool,
        decimals: int | None,
    ) -> pd.DataFrame:  # fmt: skip
        """The regression answer (``REGRESSION_RESPONSE_COLUMNS``) in request order: the value in the assay's units,
        withheld (None) outside the applicability domain unless asked for, like a class."""
        shown = pd.Series(value if decimals is None else np.round(value, decimals), dtype=object)
        if not out_of_domain and not flags.all():
            shown[~flags] = None
            notes = [n if ok else f"{n}; {REGRESSION_WITHHELD_NOTE}" for n, ok in zip(notes, flags, strict=True)]
        out = pd.DataFrame(
            {
                "accession": inp["ids"],
                "prediction": shown,
                "units": self.model.card.get("units") or "",
                "mode": "regression",
                "assay": self.model.assay,
                "family": self.family,
                "model_version": self.version,
                "in_domain": flags,
                "domain_note": notes,
            }
        )[REGRESSION_RESPONSE_COLUMNS]
        order = inp["order"]
        return out.iloc[order].reset_index(drop=True) if len(order) > 1 else out

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
    """The registered pyfunc of every family (logged from code, ``ms2img/serving/pyfunc_model.py``: no pickle).

    Artifacts: ``model_dir`` (the FamilyModel folder plus ``domain.npz``). Model config: ``model_version``,
    ``max_rows``, ``max_fragments``. Params (per request): ``explain``, ``class_out_of_domain``, ``polarity``.
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
                polarity=params.get(PARAM_POLARITY) or "",
            )
        except RequestError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        except ModelCallError as exc:
            raise MlflowException(str(exc), error_code=INTERNAL_ERROR) from None


def request_signature(mode: str = "classification"):
    """The input (one row per precursor) and output schema of every registered family model (``mode``: the
    model's labels.mode; a regression model answers a value instead of a probability and a class)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "accession"),
            ColSpec("double", "precursor_mz"),
            ColSpec("double", "precursor_intensity"),
            ColSpec("double", "rt_min"),
            ColSpec("string", "msms"),
            ColSpec("string", REPLICATE, required=False),  # several injections of an accession, averaged per family
        ]
    )
    if mode == "regression":
        outputs = Schema(
            [
                ColSpec("string", "accession"),
                ColSpec("double", "prediction", required=False),  # null out of domain unless class_out_of_domain
                ColSpec("string", "units"),
                ColSpec("string", "mode"),
                *(ColSpec(t, n) for t, n in (("string", "assay"), ("string", "family"), ("string", "model_version"))),
                ColSpec("boolean", "in_domain"),
                ColSpec("string", "domain_note"),
            ]
        )
        return ModelSignature(inputs=inputs, outputs=outputs, params=_request_params())
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
    return ModelSignature(inputs=inputs, outputs=outputs, params=_request_params())


def _request_params():
    """``{"params": {"explain": true, "class_out_of_domain": true, "polarity": "negative"}}`` in a request body."""
    from mlflow.types import ParamSchema, ParamSpec

    return ParamSchema(
        [
            ParamSpec(PARAM_EXPLAIN, "boolean", False),
            ParamSpec(PARAM_CLASS_OUT_OF_DOMAIN, "boolean", False),
            ParamSpec(PARAM_POLARITY, "string", ""),
        ]
    )
