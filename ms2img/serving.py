"""The served model: an MLflow pyfunc that takes raw peaks (one row per precursor) and returns a prediction per accession.

Request rows look like MS-DIAL export rows: ``accession, precursor_mz, precursor_intensity, rt_min, msms`` with
``msms`` an ``"mz:int mz:int"`` string. One row per precursor keeps MLflow's JSON parsing cheap (one row per
fragment costs ~30x more; see ../shared/design.md, "Serving"). Rendering happens inside, so clients never
build images. Bad requests raise an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``, which the scoring
server answers with HTTP 400 and the message.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from ms2img.errors import Ms2ImgError
from ms2img.io.schema import EVENT_COLUMNS, coerce_events

REQUEST_COLUMNS = ["accession", "precursor_mz", "precursor_intensity", "rt_min", "msms"]
RESPONSE_COLUMNS = ["accession", "probability", "class", "assay", "model_version"]
NUMERIC_REQUEST_COLUMNS = ["precursor_mz", "precursor_intensity", "rt_min"]
DEFAULT_MAX_ROWS = 200_000


class RequestError(Ms2ImgError, ValueError):
    """A prediction request that cannot be served; the message says which column or row is wrong."""


def _row_error(row: int, problem: str) -> RequestError:
    return RequestError(f"request row {row}: {problem}")


def parse_msms_column(msms: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse many ``"mz:int mz:int"`` strings at once: (fragments per row, fragment m/z, fragment intensity).

    Vectorised over the whole column (one ``split`` and one float conversion), which is what keeps a
    5,000-precursor request fast; on failure the offending row is found and named.
    """
    texts = msms.to_numpy(dtype=object)
    counts = np.fromiter((t.count(":") if isinstance(t, str) else -1 for t in texts), dtype=np.int64, count=len(texts))
    if (counts < 0).any():
        row = int(np.flatnonzero(counts < 0)[0])
        raise _row_error(row, f"msms must be a string of 'mz:intensity' pairs, got {texts[row]!r}")
    joined = " ".join(texts).replace(":", " ")
    try:
        values = np.asarray(joined.split(), dtype=np.float64)
    except ValueError:
        values = None
    if values is None or values.size != 2 * counts.sum():
        for row, text in enumerate(texts):
            tokens = text.split()
            if any(tok.count(":") != 1 for tok in tokens):
                raise _row_error(row, f"msms must be 'mz:intensity' pairs separated by spaces, got {text[:80]!r}")
            try:
                [float(x) for tok in tokens for x in tok.split(":")]
            except ValueError:
                raise _row_error(row, f"msms holds a value that is not a number: {text[:80]!r}") from None
        raise RequestError("msms column could not be parsed")
    pairs = values.reshape(-1, 2)
    mz, intensity = pairs[:, 0], pairs[:, 1]
    if not (np.isfinite(pairs).all() and (mz > 0).all() and (intensity >= 0).all()):
        bad_frag = int(np.flatnonzero(~(np.isfinite(mz) & np.isfinite(intensity) & (mz > 0) & (intensity >= 0)))[0])
        row = int(np.searchsorted(np.cumsum(counts), bad_frag, side="right"))
        raise _row_error(row, "msms holds a non-finite, non-positive m/z or a negative intensity")
    return counts, mz, intensity


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
    if len(df) > max_rows:
        raise RequestError(f"payload too large: {len(df)} rows, at most {max_rows} precursors per request")
    out = df[REQUEST_COLUMNS].reset_index(drop=True)
    if out["accession"].isna().any():
        raise _row_error(int(np.flatnonzero(out["accession"].isna().to_numpy())[0]), "accession is missing")
    out["accession"] = out["accession"].astype(str)
    for col in NUMERIC_REQUEST_COLUMNS:
        values = pd.to_numeric(out[col], errors="coerce").astype(np.float64)
        bad = ~np.isfinite(values.to_numpy()) | (values.to_numpy() < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _row_error(row, f"{col} must be a finite number >= 0, got {df[col].iloc[row]!r}")
        out[col] = values
    return out


def request_to_events(df: pd.DataFrame, max_rows: int = DEFAULT_MAX_ROWS) -> pd.DataFrame:
    """Turn a validated request (one row per precursor) into the canonical events table (one row per fragment)."""
    req = validate_request(df, max_rows)
    counts, mz, intensity = parse_msms_column(req["msms"])
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


def events_to_request(events: pd.DataFrame) -> pd.DataFrame:
    """The inverse view: canonical events to request rows (replicates averaged per feature), for examples and tests."""
    if events.empty:
        return pd.DataFrame(columns=REQUEST_COLUMNS)
    n_reps = events.groupby("accession")["replicate"].transform("nunique")
    ev = events.assign(precursor_intensity=events["precursor_intensity"] / n_reps)
    ev = ev.assign(pair=ev["fragment_mz"].map("{:.4f}".format) + ":" + ev["fragment_intensity"].map("{:.0f}".format))
    keys = ["accession", "replicate", "feature_id"]
    grouped = ev.groupby(keys, sort=False).agg(
        precursor_mz=("precursor_mz", "first"),
        precursor_intensity=("precursor_intensity", "first"),
        rt_min=("rt_min", "first"),
        msms=("pair", " ".join),
    )
    return grouped.reset_index()[REQUEST_COLUMNS]


class FingerprintClassifier(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc: raw peaks in, per-accession probability, class, assay and model version out."""

    def load_context(self, context) -> None:
        """Load the Keras model once per server worker and keep the render settings it was trained with."""
        import keras

        from ms2img.render import RenderConfig

        config = dict(context.model_config or {})
        if "keras_model" in context.artifacts:
            self._model = keras.saving.load_model(context.artifacts["keras_model"], compile=False)
        else:
            import joblib

            self._model = joblib.load(context.artifacts["sklearn_model"])
        self._render = RenderConfig(**config["render"])
        self._assay = config["assay"]
        self._threshold = float(config.get("threshold", 0.5))
        self._version = str(config.get("model_version", "unknown"))
        self._max_rows = int(config.get("max_rows", DEFAULT_MAX_ROWS))

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Render each accession of the request and classify it (model called directly, not ``predict``)."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from ms2img.models.cnn import as_model_input, predict_proba
        from ms2img.render import render_events

        try:
            events = request_to_events(model_input, self._max_rows)
        except RequestError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        images = render_events(events, self._render)
        if hasattr(self._model, "predict_proba"):  # scikit-learn pipeline (RF on the flattened image)
            prob = self._model.predict_proba(images.images)[:, 1]
        else:
            prob = predict_proba(self._model, as_model_input(images.images))
        return pd.DataFrame(
            {
                "accession": images.ids,
                "probability": prob.astype(float),
                "class": np.where(prob >= self._threshold, "high", "low"),
                "assay": self._assay,
                "model_version": self._version,
            }
        )[RESPONSE_COLUMNS]


def log_fingerprint_model(
    model,
    *,
    assay: str,
    render_config: dict[str, Any],
    input_example: pd.DataFrame,
    model_version: str,
    threshold: float = 0.5,
    max_rows: int = DEFAULT_MAX_ROWS,
    name: str = "model",
):
    """Log the pyfunc (a Keras model or a scikit-learn pipeline, plus the render settings) into the active run.

    The input schema is not declared in the signature on purpose: MLflow's schema enforcement silently drops
    unknown columns, and the contract is that they are rejected with a 400; ``validate_request`` enforces the
    schema instead. The input example and the output schema are logged.
    """
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    outputs = Schema(
        [
            ColSpec("string", "accession"),
            ColSpec("double", "probability"),
            ColSpec("string", "class"),
            ColSpec("string", "assay"),
            ColSpec("string", "model_version"),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        if hasattr(model, "predict_proba"):
            import joblib

            artifacts = {"sklearn_model": str(Path(tmp) / "model.joblib")}
            joblib.dump(model, artifacts["sklearn_model"])
        else:
            artifacts = {"keras_model": str(Path(tmp) / "cnn.keras")}
            model.save(artifacts["keras_model"])
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=FingerprintClassifier(),
            artifacts=artifacts,
            model_config={
                "assay": assay,
                "render": render_config,
                "threshold": threshold,
                "model_version": model_version,
                "max_rows": max_rows,
            },
            signature=ModelSignature(inputs=None, outputs=outputs),
            input_example=input_example,
            pip_requirements=_pip_requirements(),
        )


def _pip_requirements() -> list[str]:
    """Pinned requirements of the served environment (used by non-local env managers and Docker)."""
    import importlib.metadata as md

    pins = []
    for pkg in ("ms2img", "mlflow", "keras", "tensorflow", "scikit-learn", "numpy", "pandas"):
        try:
            pins.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            continue
    return pins
