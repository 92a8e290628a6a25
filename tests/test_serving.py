"""The serving model's request contract: every bad request is a RequestError naming the column or row."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from builders import random_request, request_rows

from ms2img import serving
from ms2img.io.schema import coerce_events
from ms2img.render import RenderConfig, render_events
from ms2img.serving import (
    REQUEST_COLUMNS,
    RESPONSE_COLUMNS,
    FingerprintClassifier,
    RequestError,
    events_to_request,
    parse_msms_column,
    render_request,
    request_to_events,
    validate_request,
)

SMALL = RenderConfig(width=75, height=70)


# ------------------------------------------------------------------------------------------------ columns
def test_good_request_passes_with_clean_dtypes():
    out = validate_request(request_rows())
    assert list(out.columns) == REQUEST_COLUMNS
    for col in ("precursor_mz", "precursor_intensity", "rt_min"):
        assert out[col].dtype == np.float64


@pytest.mark.parametrize("column", REQUEST_COLUMNS)
def test_missing_column_is_named(column):
    with pytest.raises(RequestError, match=rf"missing columns \['{column}'\]"):
        validate_request(request_rows().drop(columns=[column]))


def test_unknown_extra_column_is_named_not_dropped():
    df = request_rows().assign(polarity="negative")
    with pytest.raises(RequestError, match=r"unknown columns \['polarity'\]"):
        validate_request(df)


def test_duplicated_column():
    df = pd.concat([request_rows(), request_rows()[["msms"]]], axis=1)
    with pytest.raises(RequestError, match="duplicated columns"):
        validate_request(df)


@pytest.mark.parametrize("body", [pd.DataFrame(), pd.DataFrame(columns=REQUEST_COLUMNS)])
def test_empty_body(body):
    with pytest.raises(RequestError, match="empty request"):
        validate_request(body)


@pytest.mark.parametrize("body", [None, np.zeros((2, 5)), {"accession": ["A"]}, [1, 2, 3]])
def test_not_a_table(body):
    with pytest.raises(RequestError, match="expected a table with columns"):
        validate_request(body)


# -------------------------------------------------------------------------------------------- value types
@pytest.mark.parametrize("column", ["precursor_mz", "precursor_intensity", "rt_min"])
@pytest.mark.parametrize("bad", [math.nan, None, "abc", "", -1.0, math.inf, True, [200.0]], ids=repr)
def test_bad_number_names_column_and_row(column, bad):
    df = request_rows()
    df[column] = pd.Series([df[column].iloc[0], bad, df[column].iloc[2]], dtype=object)
    with pytest.raises(RequestError, match=rf"request row 1: {column} must be a finite number >= 0"):
        validate_request(df)


def test_numeric_strings_are_accepted():
    out = validate_request(request_rows(precursor_mz=["300.1", "450.2", "800.3"]))
    assert out["precursor_mz"].tolist() == [300.1, 450.2, 800.3]


@pytest.mark.parametrize("bad", [None, math.nan, "", "   ", True, [1]], ids=repr)
def test_bad_accession_names_row(bad):
    df = request_rows()
    df["accession"] = pd.Series(["ACC1", "ACC1", bad], dtype=object)
    with pytest.raises(RequestError, match="request row 2: accession must be a non-empty string"):
        validate_request(df)


def test_numeric_accession_becomes_a_string():
    assert validate_request(request_rows(accession=[17, 17, 17]))["accession"].tolist() == ["17", "17", "17"]


def test_oversize_request_rejected_by_rows():
    df = random_request(n_precursors=50, n_fragments=2)
    with pytest.raises(RequestError, match="payload too large: 50 rows, at most 49"):
        validate_request(df, max_rows=49)
    validate_request(df, max_rows=50)


def test_oversize_request_rejected_by_fragments():
    df = random_request(n_precursors=10, n_fragments=30)
    with pytest.raises(RequestError, match="payload too large: 300 fragments, at most 299"):
        parse_msms_column(df["msms"], max_fragments=299)


# ----------------------------------------------------------------------------------------------- msms
def test_msms_parsed_in_row_order():
    counts, mz, intensity = parse_msms_column(pd.Series(["100:1 200:2", "", "300.5:3.5", "  50:0\t60:1e3  "]))
    assert counts.tolist() == [2, 0, 1, 2]
    assert mz.tolist() == [100, 200, 300.5, 50, 60]
    assert intensity.tolist() == [1, 2, 3.5, 0, 1000]


def test_msms_object_column_parses_like_arrow_strings():
    texts = ["100:1 200:2", "300:3"]
    a = parse_msms_column(pd.Series(texts, dtype=object))
    b = parse_msms_column(pd.Series(texts, dtype="str"))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("garbage", "'mz:intensity' pairs"),
        ("100;5", "'mz:intensity' pairs"),
        ("100:5:3", "'mz:intensity' pairs"),
        ("100:5 200", "'mz:intensity' pairs"),
        ("100: 5", "'mz:intensity' pairs"),
        ("100,5:3", "not a number"),
        ("abc:def", "not a number"),
        ("1_000:5", "not a number"),
        ("100:", "not a number"),
        ("100:inf", "not a finite m/z"),
        ("nan:5", "not a finite m/z"),
        ("0:5", "not a finite m/z"),
        ("100:-1", "not a finite m/z"),
        (None, "must be a string"),
        (math.nan, "must be a string"),
        (123.0, "must be a string"),
    ],
    ids=repr,
)
def test_garbage_msms_names_the_row(text, problem):
    msms = pd.Series(["100:1", "200:2 150:3", text, "300:3"], dtype=object)
    with pytest.raises(RequestError, match=rf"request row 2: .*{problem}"):
        parse_msms_column(msms)


def test_malformed_rows_cannot_shift_values_into_neighbours():
    # "100:5 200" + ":7" holds two colons and four numbers: a count-based parser would accept it.
    with pytest.raises(RequestError, match="request row 0"):
        parse_msms_column(pd.Series(["100:5 200", ":7"]))


def test_accession_without_any_fragment_is_rejected_not_dropped():
    df = request_rows([("A", 300.0, 10.0, 1.0, "100:5"), ("B", 300.0, 10.0, 1.0, ""), ("B", 400.0, 10.0, 1.0, " ")])
    with pytest.raises(RequestError, match=r"accession\(s\) \['B'\] have no MS/MS fragments"):
        request_to_events(df)


# ------------------------------------------------------------------------------------ events and images
def test_request_to_events_is_canonical():
    events = request_to_events(request_rows())
    assert len(events) == 6
    pd.testing.assert_frame_equal(events, coerce_events(events))
    assert events["feature_id"].nunique() == 3


def test_render_request_renders_like_events():
    df = pd.concat([random_request(200, 10, seed=1, accession="B"), random_request(150, 5, seed=2, accession="A")])
    df.loc[df.index[5], "msms"] = ""  # a precursor without fragments in the middle
    ids, images = render_request(df, SMALL)
    expected = render_events(request_to_events(df), SMALL, progress=False)
    assert ids.tolist() == expected.ids.tolist() == ["A", "B"]
    np.testing.assert_array_equal(images, expected.images)


def _replicated_events() -> pd.DataFrame:
    """Two replicates of an aligned export: shared features repeat their spectrum; one feature in r1 only."""
    rows = []
    for rep, scale in (("r1", 1.0), ("r2", 3.0)):
        for fid, pmz, frags in (("1", 300.0, [(100.0, 10.0), (250.0, 40.0)]), ("2", 700.0, [(400.0, 5.0)])):
            for fmz, fint in frags:
                rows.append(("X", rep, fid, pmz, 2.0, 1000.0 * scale, fmz, fint, "negative"))
    rows.append(("X", "r1", "3", 900.0, 3.0, 50000.0, 600.0, 8.0, "negative"))
    cols = ["accession", "replicate", "feature_id", "precursor_mz", "rt_min", "precursor_intensity",
            "fragment_mz", "fragment_intensity", "polarity"]  # fmt: skip
    return coerce_events(pd.DataFrame(rows, columns=cols))


@pytest.mark.parametrize("aggregation", ["max", "sum"])
def test_events_to_request_renders_the_training_image(aggregation):
    events = _replicated_events()
    config = RenderConfig(width=75, height=70, aggregation=aggregation)
    req = events_to_request(events)
    assert len(req) == 3  # one row per merged precursor, replicates averaged
    assert req["precursor_intensity"].tolist() == [2000.0, 2000.0, 25000.0]  # (1000 + 3000) / 2, 50000 / 2
    trained = render_events(events, config, progress=False).images
    served = render_request(req, config)[1]
    np.testing.assert_allclose(served, trained, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------- pyfunc
class _ConstantModel:
    """Stands in for the classifier: scikit-learn interface, probability from the image's total intensity."""

    def predict_proba(self, x):
        p = np.clip(np.asarray(x).reshape(len(x), -1).sum(axis=1) / 100.0, 0, 1)
        return np.column_stack([1 - p, p])


def _classifier(max_rows: int = 1000) -> FingerprintClassifier:
    clf = FingerprintClassifier()
    clf._model, clf._render, clf._assay, clf._threshold = _ConstantModel(), SMALL, "DPPH", 0.5
    clf._version, clf._max_rows, clf._max_fragments = "3", max_rows, serving.DEFAULT_MAX_FRAGMENTS
    return clf


def test_predict_answers_one_row_per_accession():
    df = pd.concat([random_request(100, 5, seed=1, accession="B"), random_request(80, 5, seed=2, accession="A")])
    out = _classifier().predict(None, df)
    assert list(out.columns) == RESPONSE_COLUMNS
    assert out["accession"].tolist() == ["A", "B"]
    assert out["probability"].between(0, 1).all()
    assert set(out["class"]) <= {"high", "low"}
    assert (out["assay"] == "DPPH").all() and (out["model_version"] == "3").all()


@pytest.mark.parametrize(
    ("df", "message"),
    [
        (request_rows().drop(columns=["msms"]), "missing columns"),
        (request_rows().assign(extra=1), "unknown columns"),
        (request_rows(precursor_mz=[1.0, math.nan, 2.0]), "request row 1: precursor_mz"),
        (request_rows(msms=["100:1", "x", "100:1"]), "request row 1: msms"),
        (random_request(20, 1), "payload too large"),
        (request_rows([("A", 5000.0, 10.0, 1.0, "3000:5")]), "no fragment inside the model's image"),
    ],
)
def test_predict_turns_request_errors_into_http_400(df, message):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=message) as info:
        _classifier(max_rows=10).predict(None, df)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert info.value.get_http_status_code() == 400


def test_compiled_keras_inference_matches_eager_predict_proba():
    from ms2img.models.cnn import as_model_input, build_paper_cnn, predict_proba

    model = build_paper_cnn((70, 75, 1), conv_layers=1, filters=2, dense_units=[4])
    images = np.random.default_rng(0).random((3, 70, 75), dtype=np.float32)
    infer = serving._keras_inference(model, batch_size=2)  # two batches
    np.testing.assert_allclose(infer(images), predict_proba(model, as_model_input(images)), rtol=1e-5, atol=1e-6)
    assert infer(images[:0]).shape == (0,)


def test_model_failure_is_a_500_without_traceback():
    from mlflow.exceptions import MlflowException

    class Failing:
        def predict_proba(self, x):
            raise RuntimeError("boom")

    clf = _classifier()
    clf._model = Failing()
    with pytest.raises(MlflowException, match="internal error in the model") as info:
        clf.predict(None, request_rows())
    assert info.value.get_http_status_code() == 500
    assert "boom" not in info.value.serialize_as_json()
