"""The serving model's request contract: every bad request is a RequestError naming the column or row."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from builders import random_request, request_rows

from ms2img.io.schema import coerce_events
from ms2img.render import RenderConfig, render_events
from ms2img.serving import predictor as serving
from ms2img.serving import request
from ms2img.serving.predictor import FAMILY_RESPONSE_COLUMNS, render_request
from ms2img.serving.request import (
    REPLICATE,
    REQUEST_COLUMNS,
    RequestError,
    events_to_request,
    request_to_events,
    validate_request,
)


def parse_msms_column(msms: pd.Series, max_fragments: int = request.DEFAULT_MAX_FRAGMENTS):
    """The server's view of the msms column: the one parser of ms2img.io.msms, errors as RequestError."""
    return request.parse_msms(msms, max_fragments)


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
    with pytest.raises(RequestError, match=rf"request row 1: {column} must be a finite number >= 0") as refused:
        validate_request(df)
    # JSON null: a missing value, not the float NaN a reader never sent
    if bad is None or (isinstance(bad, float) and math.isnan(bad)):
        assert str(refused.value).endswith("got null")


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


def test_oversize_request_rejected_by_accessions():
    """40,000 one-row accessions (4.5 MB, inside the row and byte limits) took 4.9 GB of server memory."""
    from ms2img.serving.request import MAX_ACCESSIONS, parse_request

    df = random_request(n_precursors=MAX_ACCESSIONS + 1, n_fragments=1)
    df["accession"] = [f"S{i}" for i in range(len(df))]
    with pytest.raises(
        RequestError, match=f"payload too large: {MAX_ACCESSIONS + 1} accessions, at most {MAX_ACCESSIONS}"
    ):
        parse_request(df, max_rows=len(df), max_fragments=len(df))
    parse_request(df.iloc[:MAX_ACCESSIONS], max_rows=len(df), max_fragments=len(df))


def test_oversize_request_rejected_by_fragments():
    df = random_request(n_precursors=10, n_fragments=30)
    with pytest.raises(RequestError, match="payload too large: 300 MS/MS fragments, at most 299"):
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
        ("garbage", "is not 'mz:intensity'"),
        ("100;5", "is not 'mz:intensity'"),
        ("100:5:3", "is not 'mz:intensity'"),
        ("100:5 200", "is not 'mz:intensity'"),
        ("100: 5", "is not 'mz:intensity'"),
        ("100,5:3", "is not 'mz:intensity'"),
        ("abc:def", "is not 'mz:intensity'"),
        ("1_000:5", "is not 'mz:intensity'"),
        ("100:", "is not 'mz:intensity'"),
        ("100:inf", "not a finite number"),
        ("nan:5", "not a finite number"),
        ("0:5", "m/z <= 0"),
        ("100:-1", "negative intensity"),
        (123.0, "must be a string"),
    ],
    ids=repr,
)
def test_garbage_msms_names_the_row(text, problem):
    msms = pd.Series(["100:1", "200:2 150:3", text, "300:3"], dtype=object)
    with pytest.raises(RequestError, match=rf"request row 2: msms: .*{problem}"):
        parse_msms_column(msms)


@pytest.mark.parametrize("text", [None, math.nan, "null", "NA", "", " ; ", "None"], ids=repr)
def test_missing_msms_is_a_precursor_without_fragments(text):
    counts, mz, _ = parse_msms_column(pd.Series(["100:1", text, "300:3"], dtype=object))
    assert counts.tolist() == [1, 0, 1] and mz.tolist() == [100, 300]


def test_semicolon_separated_msms_parses_like_spaces():
    a = parse_msms_column(pd.Series(["50.4:6;96.8:6", "1.7E4:5; 20:1"]))
    b = parse_msms_column(pd.Series(["50.4:6 96.8:6", "1.7E4:5 20:1"]))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# The same MS-DIAL-style MS/MS cells through `ms2img ingest` and through the server: accepted or rejected alike,
# and when accepted, the same fragments.
SAME_RULES = [
    "50.1:6 96.8:6", "50.1:6;96.8:6", "50.1:6; 96.8:6", "  50.1:6   96.8:6 ", "1.7E4:5", "null", "NULL", "NA", "nan",
    "", ";", "50.1:6 garbage", "100;5", "100:5:3", "0:5", "100:-1", "nan:5", "100:inf", "abc:def", "100: 5",
    "50.1:6,96.8:6",
]  # fmt: skip


def _msdial_export(path, msms: str):
    """A two-feature MS-DIAL alignment export (one sample ``s1``) whose second feature holds ``msms``."""
    meta = {"Class": ["A"], "File type": ["Sample"], "Injection order": ["1"], "Batch ID": ["1"]}
    fixed = ["Alignment ID", "Average Rt(min)", "Average Mz", "Metabolite name", "Adduct type", "MS/MS spectrum"]
    lines = ["\t".join([""] * 5 + [k] + v) for k, v in meta.items()]
    lines.append("\t".join([*fixed, "s1"]))
    lines.append("1\t1.5\t400.1\tUnknown\t[M+H]+\t50.1:100\t1000")
    lines.append(f"2\t2.5\t500.2\tUnknown\t[M+H]+\t{msms}\t2000")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("text", SAME_RULES, ids=repr)
def test_ingest_and_server_apply_the_same_msms_rules(tmp_path, text):
    from ms2img.errors import Ms2ImgError
    from ms2img.io.ingest import ingest
    from ms2img.io.schema import read_events

    export = _msdial_export(tmp_path / "export.txt", text)
    try:
        ingest([export], tmp_path / "events")
    except Ms2ImgError as exc:
        ingested = exc
    else:
        ev = read_events(next((tmp_path / "events").glob("*.parquet")))
        ingested = np.sort(ev.loc[ev["feature_id"].astype(str) == "2", "fragment_mz"].to_numpy())
    request = request_rows([("s1", 400.1, 1000.0, 1.5, "50.1:100"), ("s1", 500.2, 2000.0, 2.5, text)])
    try:
        events = request_to_events(request)
    except RequestError as exc:
        served = exc
    else:
        served = np.sort(events.loc[events["feature_id"] == "1", "fragment_mz"].to_numpy())
    if isinstance(ingested, Exception) or isinstance(served, Exception):
        assert isinstance(ingested, Exception) and isinstance(served, Exception), (ingested, served)
        assert "request row 1" in str(served)  # the server names the request row, ingest the file and line
    else:
        np.testing.assert_array_equal(ingested, served)


def test_server_reads_json_null_msms_as_no_fragments():
    request = request_rows([("s1", 400.1, 1000.0, 1.5, "50.1:100"), ("s1", 500.2, 2000.0, 2.5, None)])
    assert len(request_to_events(request)) == 1


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


@pytest.mark.parametrize("transform", ["none", "sqrt", "log1p"])
@pytest.mark.parametrize("aggregation", ["max", "sum"])
def test_events_to_request_renders_the_training_image(aggregation, transform):
    """Averaged before sending, sqrt(mean(I)) is not training's mean(sqrt(I)): under params.yaml's sqrt, 52 of 80
    served probabilities of a forest differed from its answer on its own training images (a CNN's class flipped).
    Sent per injection, the server renders them as training did, whatever the transform."""
    events = _replicated_events()
    config = RenderConfig(width=75, height=70, aggregation=aggregation, transform=transform)
    req = events_to_request(events)
    assert req[REPLICATE].tolist() == ["r1", "r1", "r2", "r2", "r1"]  # each injection's precursors, its own height
    assert req["precursor_intensity"].tolist() == [1000.0, 1000.0, 3000.0, 3000.0, 50000.0]
    trained = render_events(events, config, progress=False).images
    served = render_request(req, config)[1]
    np.testing.assert_allclose(served, trained, rtol=1e-6, atol=1e-7)
    two = pd.concat([events.assign(accession="Y"), events.assign(accession="X", precursor_intensity=7.0)])
    ids, served = render_request(events_to_request(two), config)
    trained = render_events(two, config, progress=False)
    assert ids.tolist() == trained.ids.tolist() == ["X", "Y"]
    np.testing.assert_allclose(served, trained.images, rtol=1e-6, atol=1e-7)
    one = events[events["replicate"] == "r1"]  # one injection: the request stays one row per precursor
    assert REPLICATE not in events_to_request(one).columns
    np.testing.assert_allclose(render_request(events_to_request(one), config)[1],
                               render_events(one, config, progress=False).images, rtol=1e-6, atol=1e-7)  # fmt: skip


def test_a_feature_family_averages_injections_as_its_table_did():
    """Each injection is matched alone and the heights averaged over the accession's injections (absent = 0): the
    feature table's rule (per-injection maximum, replicate_mean), not a match of pre-averaged heights."""
    from ms2img.features.match import match_parsed
    from ms2img.serving.request import injections, parse_request

    class Nearest:  # a matcher whose features are the m/z values it was given (the rule under test is the averaging)
        features = np.array([300.0, 700.0, 900.0])

        def transform(self, codes, n, p_mz, p_rt, p_int, peaks):
            mat = np.zeros((n, 3))
            np.maximum.at(mat, (codes, np.searchsorted(self.features, p_mz)), p_int)
            return mat, np.ones(n)

    req, counts, mz, intensity = parse_request(events_to_request(_replicated_events()), 100, 1000)
    names = np.array(["X"])
    out = match_parsed(req, counts, mz, intensity, Nearest(), req[REPLICATE].to_numpy(), injections(req, counts, names))
    np.testing.assert_allclose(out["matrix"], [[(1000 + 3000) / 2, (1000 + 3000) / 2, 50000 / 2]])
    np.testing.assert_allclose(out["n_precursors"], [(3 + 2) / 2])


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_request_command_writes_the_body_training_would_have_rendered(tmp_path, capsys, suffix):
    """``ms2img request`` is how a team turns its ingested exports into a body: replicates averaged as training did."""
    from ms2img.cli import main
    from ms2img.io.schema import write_events

    events = _replicated_events()
    write_events(events, tmp_path / "events" / "X.parquet")
    out = tmp_path / f"body{suffix}"
    assert main(["request", str(tmp_path / "events"), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "5 rows (precursors) for 1 accession(s), 1 with one row per injection" in said and "negative ions" in said
    if suffix == ".json":
        body = json.loads(out.read_text())
        assert body["params"] == {"polarity": "negative"}  # the events' ion mode: a positive-mode model refuses it
        sent = pd.DataFrame(body["dataframe_records"])
    else:
        sent = pd.read_csv(out, dtype={"accession": str})
    expected = events_to_request(events)
    pd.testing.assert_frame_equal(sent.astype({REPLICATE: str}), expected, check_dtype=False)
    np.testing.assert_allclose(render_request(sent, SMALL)[1], render_events(events, SMALL, progress=False).images,
                               rtol=1e-6, atol=1e-7)  # fmt: skip
    assert main(["request", str(tmp_path / "events"), "--out", str(out), "--accessions", "Y"]) == 2
    assert "--accessions: ['Y'] not in" in capsys.readouterr().err
    write_events(events.assign(accession="W"), tmp_path / "events" / "W.parquet")
    assert main(["request", str(tmp_path / "events"), "--out", str(out), "--accessions", "X,W"]) == 0
    sent = pd.read_csv(out, dtype={"accession": str}) if suffix == ".csv" else pd.DataFrame(
        json.loads(out.read_text())["dataframe_records"])  # fmt: skip
    assert list(dict.fromkeys(sent["accession"])) == ["X", "W"]  # as asked: the answer comes in this order
    (tmp_path / "events" / "W.parquet").unlink()
    undetected = events.assign(precursor_intensity=np.where(events["feature_id"] == "3", 0.0, 1000.0))
    write_events(undetected, tmp_path / "events" / "X.parquet")
    assert main(["request", str(tmp_path / "events"), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "4 rows (precursors) for 1 accession(s)" in said and "; 1 undetected (height 0) left out" in said


# ---------------------------------------------------------------------------------------------- pyfunc
def _pyfunc(max_rows: int = 1000, infer=None) -> serving.FamilyPyfunc:
    """A FamilyPyfunc over an image predictor whose "model" scores the image's total intensity."""
    from types import SimpleNamespace

    predictor = serving.FamilyPredictor.__new__(serving.FamilyPredictor)
    predictor.model = SimpleNamespace(threshold=0.5, assay="DPPH")
    predictor.family, predictor.kind, predictor.version, predictor.domain = "rf-image", "image", "3", None
    predictor.max_rows, predictor.max_fragments, predictor.render = max_rows, request.DEFAULT_MAX_FRAGMENTS, SMALL
    predictor._infer = infer or (lambda x: np.clip(np.asarray(x).reshape(len(x), -1).sum(axis=1) / 100.0, 0, 1))
    model = serving.FamilyPyfunc()
    model._predictor = predictor
    return model


def test_predict_answers_one_row_per_accession_in_request_order():
    df = pd.concat([random_request(100, 5, seed=1, accession="B"), random_request(80, 5, seed=2, accession="A")])
    out = _pyfunc().predict(None, df)
    assert list(out.columns) == FAMILY_RESPONSE_COLUMNS
    assert out["accession"].tolist() == ["B", "A"]  # as the request names them, not sorted
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
        (request_rows([("A", 5000.0, 10.0, 1.0, "3000:5")]), "A: every precursor_mz is outside the image's 100-1500"),
        (request_rows(precursor_intensity=[0.0, 0.0, 0.0]), "ACC1: every precursor_intensity is 0"),
        (request_rows([("A", 300.0, 10.0, 1.0, "400:5")]), "A: no fragment at m/z 0-1500 with intensity > 0 at or"),
    ],
)
def test_predict_turns_request_errors_into_http_400(df, message):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=message) as info:
        _pyfunc(max_rows=10).predict(None, df)
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

    def failing(x):
        raise RuntimeError("boom")

    with pytest.raises(MlflowException, match="internal error in the model") as info:
        _pyfunc(infer=failing).predict(None, request_rows())
    assert info.value.get_http_status_code() == 500
    assert "boom" not in info.value.serialize_as_json()


@pytest.mark.parametrize("bad", [1.1e12, 1e300])
def test_absurd_precursor_intensity_names_the_row(bad):
    df = request_rows()
    df.loc[1, "precursor_intensity"] = bad
    with pytest.raises(RequestError, match=r"request row 1: precursor_intensity .*1e\+?12"):
        validate_request(df)
    assert request.MAX_INTENSITY == 1e12


@pytest.mark.parametrize("text", ["100:1.1e12", "100:5 120:1e300", "100:1e400"])
def test_absurd_fragment_intensity_names_the_row(text):
    df = request_rows()
    df.loc[2, "msms"] = text
    with pytest.raises(RequestError, match=r"request row 2: msms: "):
        request_to_events(df)


def test_explain_true_returns_the_boxes_that_move_each_prediction(tmp_path):
    """``{"params": {"explain": true}}``: per accession the top m/z boxes, as objects; feature families refuse."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from ms2img.models.baselines import FlattenImages
    from ms2img.models.family import FamilyModel
    from ms2img.render import RenderConfig

    config = RenderConfig(width=20, height=18)
    request = random_request(n_precursors=40, n_fragments=6, seed=1, accession="A1")
    predictor = serving.FamilyPredictor(
        FamilyModel("rf-image", {"assay": "DPPH", "render": config.__dict__, "threshold": 0.5}, None)
    )
    x = predictor.inputs(request)["x"]
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.5, 1.0, (30, 1, 1)).astype(np.float32)
    labels = np.arange(30) % 2  # high: this accession's fragments; low: an empty fingerprint with faint noise
    train = np.where(labels[:, None, None] == 1, x * scale, rng.random((30, *x.shape[1:])) * 0.01)
    train = train.astype(np.float32)
    rf = Pipeline([("flatten", FlattenImages()), ("rf", RandomForestClassifier(20, random_state=0))]).fit(train, labels)
    predictor.model.estimator = rf
    plain = predictor.predict(request)
    explained = predictor.predict(request, explain=True)
    assert "drivers" not in plain.columns
    boxes = explained["drivers"].iat[0]
    assert isinstance(boxes, list) and all(isinstance(b, dict) for b in boxes)
    assert explained["probability"].iat[0] == plain["probability"].iat[0]
    assert boxes and all(b["precursor_mz_lo"] < b["precursor_mz_hi"] for b in boxes)
    assert {b["supports"] for b in boxes} <= {"high", "low"}


def test_a_model_trained_on_jittered_images_serves_the_same_answer_twice():
    """``render --ppm-jitter`` is training augmentation, kept in the card's render settings; a request is rendered
    without it, so the same request gets the same image (and probability) every time."""
    from ms2img.models.family import FamilyModel
    from ms2img.render import RenderConfig

    config = RenderConfig(width=20, height=18, ppm_jitter=50000.0)  # 5%: would move peaks across pixels
    predictor = serving.FamilyPredictor(
        FamilyModel("rf-image", {"assay": "DPPH", "render": config.__dict__, "threshold": 0.5}, None)
    )
    request = random_request(n_precursors=40, n_fragments=6, seed=1, accession="A1")
    assert predictor.render.ppm_jitter == 0.0
    np.testing.assert_array_equal(predictor.inputs(request)["x"], predictor.inputs(request)["x"])


def test_a_per_injection_model_answers_each_accession_of_a_replicated_request_once():
    """render.per_replicate models rendered a request of several injections per injection: 12 images under 3
    names, answered as one accession three times (or an IndexError in the domain check)."""
    from ms2img.models.family import FamilyModel
    from ms2img.render import RenderConfig

    config = RenderConfig(width=75, height=70, per_replicate=True)
    predictor = serving.FamilyPredictor(
        FamilyModel("rf-image", {"assay": "DPPH", "render": config.__dict__, "threshold": 0.5}, None)
    )
    events = pd.concat([_replicated_events().assign(accession=a) for a in ("X", "Y")], ignore_index=True)
    inputs = predictor.inputs(events_to_request(events))
    assert inputs["ids"].tolist() == ["X", "Y"] and inputs["x"].shape == (2, 70, 75)
    np.testing.assert_allclose(inputs["n_precursors"], [(3 + 2) / 2] * 2)  # per injection, as the domain counts


def test_injections_pair_features_of_one_mz_and_rt_by_their_spectrum():
    """Two features of one m/z and RT, the first absent from r2: paired by position, r2's second feature merged with
    r1's first (a pixel of 0.005 in training served as 1.0 under sum aggregation)."""
    rows = []
    for rep, fids in (("r1", ("1", "2")), ("r2", ("2",))):
        for fid in fids:
            frags = [(100.0, 10.0)] if fid == "1" else [(250.0, 40.0), (260.0, 1.0)]
            rows += [("X", rep, fid, 300.0, 2.0, 1000.0 if fid == "1" else 5.0, m, i, "negative") for m, i in frags]
    rows.append(("X", "r1", "3", 900.0, 3.0, 9000.0, 600.0, 8.0, "negative"))
    cols = ["accession", "replicate", "feature_id", "precursor_mz", "rt_min", "precursor_intensity",
            "fragment_mz", "fragment_intensity", "polarity"]  # fmt: skip
    events = coerce_events(pd.DataFrame(rows, columns=cols))
    config = RenderConfig(width=75, height=70, aggregation="sum", transform="sqrt")
    np.testing.assert_allclose(render_request(events_to_request(events), config)[1],
                               render_events(events, config, progress=False).images, rtol=1e-6, atol=1e-7)  # fmt: skip


@pytest.mark.parametrize("family", ["rf-image", "rf-cosine"])
def test_served_forest_gives_the_family_models_numbers(family):
    """The server sums the trees itself (no per-tree scikit-learn overhead): bit for bit FamilyModel.predict_proba."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from ms2img.models.baselines import FlattenImages
    from ms2img.models.family import FamilyModel

    rng = np.random.default_rng(3)
    x = rng.random((40, 12, 10)).astype(np.float32) * (rng.random((40, 12, 10)) > 0.6)
    y = np.arange(40) % 2
    if family == "rf-image":
        forest = RandomForestClassifier(60, class_weight="balanced_subsample", random_state=0)
        est = Pipeline([("flatten", FlattenImages(drop_zero_columns=True)), ("rf", forest)]).fit(x, y)
    else:
        x = x.reshape(40, -1) * 1e4
        est = RandomForestClassifier(60, max_features=0.3, random_state=0).fit(np.log1p(x), y)
    model = FamilyModel(family, {"assay": "DPPH"}, est)
    served = serving._forest_inference(model)
    for rows in (slice(0, 1), slice(0, 40)):
        got, want = served(x[rows]), model.predict_proba(x[rows])
        assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)


# ------------------------------------------------------------------------------------ JSON guard, every layout
def _body(payload) -> bytes:
    import json

    return json.dumps(payload).encode()


def test_instances_and_inputs_rows_pass_the_guard_like_records():
    from ms2img.serving.app import check_json_request

    rows = request_rows().to_dict(orient="records")
    for key in ("instances", "inputs", "dataframe_records"):
        assert check_json_request(_body({key: rows}), max_rows=10)[key] == rows


def _drop(row: dict, column: str) -> dict:
    return {k: v for k, v in row.items() if k != column}


@pytest.mark.parametrize(
    ("key", "payload", "words"),
    [
        ("instances", lambda rows: rows * 4, "payload too large: 12 rows, at most 10"),
        ("inputs", lambda rows: rows * 4, "payload too large: 12 rows, at most 10"),
        ("instances", lambda rows: [*rows, {**rows[0], "msms": [[[[[1]]]]]}], "request row 3: msms must be"),
        ("instances", lambda rows: [{"a": [[[[[[[[[1]]]]]]]]]}], "nested too deeply"),
        ("instances", lambda rows: [rows[0], {**rows[1], "precursor_mz": [1.0]}], "request row 1: precursor_mz must"),
        ("instances", lambda rows: [{**rows[0], "accession": {"a": 1}}], "request row 0: accession must be"),
        ("inputs", lambda rows: [{**rows[0], "rt_min": True}], "rt_min must be a string, a number or null, got a bool"),
        ("instances", lambda rows: [list(rows[0].values())], "request row 0: expected an object"),
        ("instances", lambda rows: [rows[0], _drop(rows[1], "rt_min")], "request row 1: missing columns ['rt_min']"),
        ("inputs", lambda rows: {k: [r[k] for r in rows] for k in rows[0]}, "'inputs' must be a list of rows"),
        ("instances", lambda rows: [], "empty request"),
        ("dataframe_records", lambda rows: [{**rows[0], "msms": {"100": 5}}], "request row 0: msms must be"),
    ],
)
def test_guard_checks_instances_payloads_like_the_others(key, payload, words):
    """``instances`` / ``inputs`` bodies meet the same size, depth, row-count and cell checks as the DataFrame
    layouts: a one-line 4xx naming the row, never MLflow's conversion error later."""
    from ms2img.serving.app import RequestRejected, check_json_request

    rows = request_rows().to_dict(orient="records")
    with pytest.raises(RequestRejected) as info:
        check_json_request(_body({key: payload(rows)}), max_rows=10, max_depth=8)
    assert info.value.status == 400 and words in info.value.message
    assert "\n" not in info.value.message and len(info.value.message) < 300


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"class_out_of_domian": True}, "unknown params ['class_out_of_domian']; known: ['explain', 'class_out_of"),
        ({"explain": "yes"}, "param 'explain' must be true or false, got 'yes'"),
        ({"polarity": "sideways"}, "param 'polarity' must be one of ['positive', 'negative'] (or +, -), got 'sid"),
        ({"polarity": True}, "param 'polarity' must be one of"),
        ({"polarity": "positive-and-negative"}, "param 'polarity' must be one of"),  # was read as positive
        ({"polarity": "-1"}, "param 'polarity' must be one of"),
        ([True], "'params' must be an object"),
    ],
)
def test_guard_refuses_params_mlflow_would_drop(params, words):
    """MLflow drops a param its signature lacks with a log line: a misspelt name answered without what it asked."""
    from ms2img.serving.app import RequestRejected, check_json_request

    rows = request_rows().to_dict(orient="records")
    with pytest.raises(RequestRejected) as info:
        check_json_request(_body({"dataframe_records": rows, "params": params}), max_rows=10)
    assert info.value.status == 400 and words in info.value.message
    ok = {"dataframe_records": rows, "params": {"explain": False, "class_out_of_domain": True, "polarity": "neg"}}
    assert check_json_request(_body(ok), max_rows=10)["params"] == ok["params"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([[1, 2]], "request row 0: expected a list of 5 values"),
        ([1, 2], "request row 0: expected a list of 5 values"),
        ([["A", [200.0], 1.0, 1.0, "100:1"]], "request row 0: precursor_mz must be"),
    ],
)
def test_guard_checks_split_rows_shape_and_cells(data, words):
    from ms2img.serving.app import RequestRejected, check_json_request

    body = _body({"dataframe_split": {"columns": REQUEST_COLUMNS, "data": data}})
    with pytest.raises(RequestRejected, match=words.replace("[", r"\[")):
        check_json_request(body, max_rows=10)


def test_forest_sum_equals_scikit_learn_with_missing_values_and_three_classes():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(4)
    x = rng.random((60, 8))
    x[rng.random((60, 8)) < 0.1] = np.nan
    forest = RandomForestClassifier(40, random_state=0).fit(x, np.arange(60) % 3)
    assert np.array_equal(serving.forest_predict_proba(forest, x), forest.predict_proba(x))


def test_instances_reach_the_model_as_the_frame_records_make():
    """MLflow reads ``instances`` / ``inputs`` rows as TF-serving tensors (a dict of arrays); the guard hands them on
    as records, so the model sees the same DataFrame, and answers the same, whichever layout the client used."""
    import json
    from types import SimpleNamespace

    from ms2img.serving.app import GuardedApp

    seen = []
    schema = serving.request_signature().inputs
    model = SimpleNamespace(
        metadata=SimpleNamespace(get_input_schema=lambda: schema),
        predict=lambda frame: seen.append(frame) or pd.DataFrame({"accession": ["ACC1"], "probability": [0.5]}),
    )
    app = GuardedApp(None, model=model)
    rows = request_rows().to_dict(orient="records")
    answers = [app._invoke({key: rows}) for key in ("dataframe_records", "instances", "inputs")]
    assert all(status == 200 for status, *_ in answers) and len({body for _, body, *_ in answers}) == 1
    assert all(isinstance(f, pd.DataFrame) for f in seen)
    pd.testing.assert_frame_equal(seen[1], seen[0])
    pd.testing.assert_frame_equal(seen[2], seen[0])
    assert json.loads(answers[1][1])["predictions"][0]["accession"] == "ACC1"


def test_guard_names_duplicated_split_columns():
    from ms2img.serving.app import RequestRejected, check_json_request

    body = _body({"dataframe_split": {"columns": [*REQUEST_COLUMNS, "msms"], "data": [["A", 1, 1, 1, "1:1", "1:1"]]}})
    with pytest.raises(RequestRejected, match=r"duplicated columns \['msms'\]"):
        check_json_request(body, max_rows=10)


def test_a_stand_in_models_own_predict_proba_is_used():
    """Only FamilyModel's predict_proba is mirrored by the fast forest sum; any other model is called as it is."""

    class StandIn:
        family = "rf-image"

        def predict_proba(self, x):
            return np.full(len(x), 0.25)

    assert serving._forest_inference(StandIn())(np.zeros((2, 3, 3))).tolist() == [0.25, 0.25]


def test_undetected_rows_do_not_count_as_precursors_for_the_domain():
    """An export's height-0 rows (a feature not detected in this sample) render nothing, so they must not lift the
    accession over the domain's precursor count (they turned "too few precursors" into a class)."""
    from ms2img.serving.domain import DomainReference

    predictor = _pyfunc().predictor
    detected = random_request(50, 5, seed=3, accession="S")
    undetected = random_request(30, 5, seed=4, accession="S").assign(precursor_intensity=0.0)
    inputs = predictor.inputs(pd.concat([detected, undetected]))
    assert inputs["n_precursors"].tolist() == [50]
    np.testing.assert_array_equal(inputs["x"], predictor.inputs(detected)["x"])
    reference = DomainReference(inputs["x"].reshape(1, -1).astype(np.float16), False, 0.0, 60.0, 0.0, 2000.0)
    flags, notes, _ = reference.check(inputs["x"], inputs["n_precursors"], np.zeros(1))
    assert not flags[0] and "too few precursors (50 < 60" in notes[0]


def test_a_feature_vector_that_matched_nothing_is_named_out_of_domain():
    from ms2img.serving.domain import DomainReference

    reference = DomainReference.build(np.eye(3), np.array([5, 5, 5]), np.array([200.0, 300.0]), log=True)
    flags, notes, _ = reference.check(np.zeros((1, 3)), np.array([10]), np.zeros(1))
    assert not flags[0] and "none of its precursors matched a training feature" in notes[0]
    assert "nearest similarity" not in notes[0]


def test_a_request_in_the_other_ion_mode_is_refused_not_answered(tmp_path):
    """Positive- and negative-ion spectra of one extract share almost no peaks: a model trained on one mode gave the
    other mode's rows a probability that looked like any other. The request's ``polarity`` param is checked against
    the training events' mode, which the domain reference keeps (a reference saved before it was kept: unknown)."""
    from mlflow.exceptions import MlflowException

    from ms2img.serving.domain import DomainReference

    images = np.random.default_rng(0).random((3, SMALL.height * SMALL.width))
    reference = DomainReference.build(images, np.array([1, 1, 1]), np.array([100.0, 1500.0]), False, "negative")
    loaded = DomainReference.load(reference.save(tmp_path / "domain.npz"))
    assert loaded.polarity == "negative"
    model = _pyfunc()
    model.predictor.domain = loaded
    df = request_rows()
    with pytest.raises(MlflowException, match="the request holds positive ions; this model was trained on negative"):
        model.predict(None, df, params={"polarity": "positive"})
    for said in ("negative", "-", "", None):  # the same mode, or not said: answered
        assert len(model.predict(None, df, params={"polarity": said})) == df["accession"].nunique()
    with np.load(tmp_path / "domain.npz") as z:
        older = {k: z[k] for k in z.files if k != "polarity"}
    np.savez_compressed(tmp_path / "old.npz", **older)
    assert DomainReference.load(tmp_path / "old.npz").polarity == "unknown"


def test_training_events_read_ion_mode_and_precursors_per_injection(tmp_path):
    """The domain's precursor floor counts injections, not merged accessions: a lab sends one injection of a new
    extract, and a floor on the union of an accession's injections called it "too few precursors"."""
    from ms2img.io.schema import accession_filename, one_polarity, write_events
    from ms2img.registry.registration import training_events

    events = _replicated_events()  # r1: features 1, 2, 3; r2: features 1, 2
    write_events(events, tmp_path / "A.parquet")
    write_events(events.assign(accession="B", polarity="unknown"), tmp_path / "B.parquet")
    read = training_events(["A", "B"], tmp_path)
    assert read.polarity == "negative" and sorted(read.injections.tolist()) == [2, 2, 3, 3]
    assert [acc for acc, _ in read.requests] == ["A", "B"]
    undetected = events.assign(accession="C", polarity="positive", precursor_intensity=np.where(
        events["feature_id"] == "1", 0.0, events["precursor_intensity"]))  # fmt: skip
    write_events(undetected, tmp_path / "C.parquet")
    read = training_events(["A", "C"], tmp_path)
    assert read.polarity == "mixed" and sorted(read.injections.tolist()) == [1, 2, 2, 3]
    write_events(events.assign(accession="Hi 01"), tmp_path / accession_filename("Hi 01"))  # "Hi_01.parquet"
    assert training_events(["Hi 01"], tmp_path).polarity == "negative"
    assert one_polarity(["[M+H]+", "unknown", "Positive"]) == "positive" and one_polarity([]) == "unknown"


def test_request_and_serve_name_a_wrong_argument_in_one_line(tmp_path, capsys):
    """An export given where its events belong was 'events folder ... does not exist'; port 99999 a traceback."""
    from ms2img.cli import main

    export = tmp_path / "ACC0001.txt"
    export.write_text("not events\n")
    assert main(["request", str(export), "--out", str(tmp_path / "body.json")]) == 2
    assert "is a file, not an events folder: read it first with `ms2img ingest" in capsys.readouterr().err
    for port in ("99999", "0", "http"):
        with pytest.raises(SystemExit) as stop:
            main(["serve", "--assay", "DPPH", "--port", port])
        assert stop.value.code == 2
        assert f"a port is a whole number from 1 to 65535, got '{port}'" in capsys.readouterr().err


def test_a_feature_family_refuses_a_request_with_no_detected_precursor():
    """Image families answered 400 (a blank image); feature families answered 200 with a class for no detected ion."""
    predictor = object.__new__(serving.FamilyPredictor)  # the check comes before the matcher is needed
    predictor.kind, predictor.max_rows, predictor.max_fragments, predictor.domain = "features", 10, 1000, None
    with pytest.raises(RequestError, match="nothing to classify for 1 accession.*ACC1: every precursor_intensity is 0"):
        predictor.inputs(request_rows(precursor_intensity=[0.0, 0.0, 0.0]))


def test_a_model_registered_before_per_injection_requests_refuses_a_replicate_column():
    """MLflow drops a column the signature lacks: an older model would read each injection's rows as more precursors
    of one image and answer 200."""
    from ms2img.serving.app import RequestRejected, check_payload

    rows = events_to_request(_replicated_events()).to_dict("records")
    assert check_payload({"dataframe_records": rows}, 100)  # a model whose signature declares it
    with pytest.raises(RequestRejected, match="this model version takes one row per precursor .* no 'replicate'"):
        check_payload({"dataframe_records": rows}, 100, optional=())
