"""What a served answer looks like to the caller: request order, rounded probabilities, drivers as objects, no class
out of the applicability domain unless asked, plain-word errors, one log line per request (issue 26)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from builders import random_request, request_rows

from ms2img.render import RenderConfig
from ms2img.serving import predictor as serving
from ms2img.serving import request
from ms2img.serving.app import REQUEST_LOG, GuardedApp, configure_request_log, request_log

NOISY = np.float32(0.21)  # float(np.float32(0.21)) == 0.20999999344348907


def _predictor(prob: dict[str, float], in_domain: dict[str, bool] | None = None) -> serving.FamilyPredictor:
    """An image predictor whose model answers ``prob[accession]`` (float32, as models do) and whose domain reference
    says ``in_domain[accession]`` (all in domain by default)."""
    predictor = serving.FamilyPredictor.__new__(serving.FamilyPredictor)
    predictor.model = SimpleNamespace(threshold=0.5, assay="DPPH")
    predictor.family, predictor.kind, predictor.version = "rf-image", "image", "3"
    predictor.max_rows, predictor.max_fragments = 1000, request.DEFAULT_MAX_FRAGMENTS
    predictor.render = RenderConfig(width=75, height=70)
    ids: list[str] = []

    def inputs(df: Any) -> dict[str, Any]:
        out = serving.FamilyPredictor.inputs(predictor, df)
        ids[:] = out["ids"].tolist()  # sorted: the order the model and the domain check see
        return out

    predictor.inputs = inputs
    predictor._infer = lambda x: np.array([prob[a] for a in ids], dtype=np.float32)
    if in_domain is None:
        predictor.domain = None
    else:
        flags = lambda: np.array([in_domain[a] for a in ids])  # noqa: E731
        notes = lambda: ["" if in_domain[a] else "too few precursors (3 < 40)" for a in ids]  # noqa: E731
        predictor.domain = SimpleNamespace(
            mz_outside=lambda codes, n, mz: np.zeros(n),
            check=lambda x, n_prec, outside: (flags(), notes(), np.ones(len(ids))),
            polarity="unknown",
        )
    return predictor


def _pyfunc(predictor: serving.FamilyPredictor) -> serving.FamilyPyfunc:
    model = serving.FamilyPyfunc()
    model._predictor = predictor
    return model


def _request(*accessions: str) -> pd.DataFrame:
    return pd.concat([random_request(20, 4, seed=k, accession=a) for k, a in enumerate(accessions)], ignore_index=True)


def _json(out: pd.DataFrame) -> dict[str, Any]:
    """The body MLflow's scoring server writes for this answer."""
    from mlflow.pyfunc.scoring_server import predictions_to_json

    buf = io.StringIO()
    predictions_to_json(out, buf)
    return json.loads(buf.getvalue())


# ------------------------------------------------------------------------------------------------- answers
def test_answers_come_back_in_request_order():
    names = ["Z9", "B2", "M5", "A1"]  # reverse-ish: sorting would give A1, B2, M5, Z9
    prob = {"Z9": 0.9, "B2": 0.2, "M5": 0.6, "A1": 0.1}
    df = _request(*names)
    out = _pyfunc(_predictor(prob)).predict(None, df.iloc[::-1].reset_index(drop=True))
    assert out["accession"].tolist() == names[::-1]
    assert out.set_index("accession")["probability"].to_dict() == pytest.approx(prob)  # each row its own number
    interleaved = pd.concat([df.iloc[[0]], _request("Q")], ignore_index=True)  # Z9, then Q, then more Z9 rows
    interleaved = pd.concat([interleaved, df[df["accession"] == "Z9"]], ignore_index=True)
    assert _pyfunc(_predictor({"Z9": 0.5, "Q": 0.5})).predict(None, interleaved)["accession"].tolist() == ["Z9", "Q"]


def test_probabilities_are_rounded_without_float32_noise():
    out = _pyfunc(_predictor({"A": float(NOISY), "B": 0.123456789})).predict(None, _request("A", "B"))
    assert out["probability"].tolist() == [0.21, 0.1235]
    body = json.dumps(_json(out))
    assert "0.21," in body and "0.2099999" not in body
    exact = _predictor({"A": float(NOISY)}).predict(_request("A"))  # in-process callers keep the model's numbers
    assert exact["probability"].iat[0] == float(NOISY)


def test_served_class_uses_the_cross_validation_rule_at_the_threshold():
    """A probability exactly at the threshold is "low" when served, as it was when the model was scored
    (``fold_metrics.predict_labels``: high only strictly above; image-ensemble scores sit on a grid of midpoints)."""
    from ms2img.training.fold_metrics import predict_labels

    prob = {"AT": 0.5, "ABOVE": float(np.nextafter(np.float32(0.5), np.float32(1))), "BELOW": 0.25}
    out = _pyfunc(_predictor(prob)).predict(None, _request(*prob)).set_index("accession")
    assert out["class"].to_dict() == {"AT": "low", "ABOVE": "high", "BELOW": "low"}
    scored = predict_labels(np.array(list(prob.values()), dtype=np.float32), 0.5)
    assert [["low", "high"][k] for k in scored] == [out.loc[a, "class"] for a in prob]


def test_out_of_domain_accession_gets_probability_but_no_class_unless_asked():
    prob, domain = {"IN": 0.8, "OUT": 0.1}, {"IN": True, "OUT": False}
    model = _pyfunc(_predictor(prob, domain))
    out = model.predict(None, _request("OUT", "IN")).set_index("accession")
    assert out.loc["OUT", "class"] is None and out.loc["IN", "class"] == "high"
    assert out.loc["OUT", "probability"] == 0.1 and not out.loc["OUT", "in_domain"]
    assert "class_out_of_domain" in out.loc["OUT", "domain_note"]  # the note says how to ask for one
    assert out.loc["IN", "domain_note"] == ""
    [first, _] = _json(out.reset_index())["predictions"]
    assert first["accession"] == "OUT" and first["class"] is None and first["in_domain"] is False
    asked = model.predict(None, _request("OUT", "IN"), params={"class_out_of_domain": True}).set_index("accession")
    assert asked.loc["OUT", "class"] == "low" and not asked.loc["OUT", "in_domain"]
    assert asked.loc["OUT", "domain_note"] == "too few precursors (3 < 40)"


def test_class_out_of_domain_is_a_declared_param():
    """MLflow drops params the signature does not declare (with a warning): the request's ask must be declared."""
    params = {p.name: p for p in serving.request_signature().params}
    assert params["class_out_of_domain"].dtype.name == "boolean" and params["class_out_of_domain"].default is False
    assert params["explain"].default is False


def test_drivers_are_json_objects_not_a_string(monkeypatch):
    from ms2img.explain import attribution

    box = {"precursor_mz_lo": 300.0, "precursor_mz_hi": 320.0, "fragment_mz_lo": 100.0, "fragment_mz_hi": 110.0,
           "contribution": 0.05, "supports": "high", "probability": float(NOISY)}  # fmt: skip
    monkeypatch.setattr(attribution, "explain_one", lambda model, img, xe, ye, top=5: [dict(box)])
    monkeypatch.setattr("ms2img.render.image_edges", lambda config: (np.arange(76.0), np.arange(71.0)))
    out = _pyfunc(_predictor({"B": 0.3, "A": 0.7})).predict(None, _request("B", "A"), params={"explain": True})
    [b, _] = _json(out)["predictions"]
    assert isinstance(b["drivers"], list) and isinstance(b["drivers"][0], dict)
    assert b["drivers"][0]["supports"] == "high" and b["drivers"][0]["probability"] == 0.21


# -------------------------------------------------------------------------------------------- plain errors
def _schema_app(seen: list | None = None) -> GuardedApp:
    """The guard over a stand-in model with the served input schema (MLflow's converter runs as in serving)."""
    schema = serving.request_signature().inputs
    answer = pd.DataFrame({"accession": ["ACC1"], "probability": [0.5]})
    model = SimpleNamespace(
        metadata=SimpleNamespace(get_input_schema=lambda: schema),
        predict=lambda frame, params=None: (seen.append(frame) if seen is not None else None) or answer,
        model_config={"model_version": "7", "registered_model": "ms2img-DPPH"},
    )
    return GuardedApp(None, model=model)


@pytest.mark.parametrize("layout", ["dataframe_records", "instances", "dataframe_split"])
def test_text_in_a_number_column_is_a_plain_sentence(layout):
    rows = request_rows().to_dict(orient="records")
    rows[1]["precursor_mz"] = "abc"
    if layout == "dataframe_split":
        payload = {layout: {"columns": list(rows[0]), "data": [list(r.values()) for r in rows]}}
    else:
        payload = {layout: rows}
    status, body, _, _ = _schema_app()._invoke(payload)
    message = json.loads(body)["message"]
    assert status == 400
    assert message == "request row 1: precursor_mz must be a finite number >= 0, got the text 'abc'"
    assert "ValueError" not in message and "float64" not in message


def test_numeric_text_still_reaches_the_model():
    seen: list = []
    rows = request_rows().to_dict(orient="records")
    rows[0]["rt_min"] = "1.5"
    status, _, accessions, n_rows = _schema_app(seen)._invoke({"dataframe_records": rows})
    assert status == 200 and accessions == ["ACC1"] and n_rows == 3
    assert seen[0]["rt_min"].tolist() == [1.5, 2.5, 3.5]


def test_csv_body_is_read_as_text_and_checked_like_json():
    """MLflow's CSV reader made an accession named NA a missing value and named no row for text in a number column."""
    from ms2img.serving.app import RequestRejected, check_csv_request

    rows = request_rows(accession=["NA", "NA", "null"])
    seen: list = []
    payload = check_csv_request(rows.to_csv(index=False).encode(), max_rows=10)
    status, _, _, n_rows = _schema_app(seen)._invoke(payload)
    assert status == 200 and n_rows == 3
    assert seen[0]["accession"].tolist() == ["NA", "NA", "null"]
    assert seen[0]["precursor_mz"].tolist() == [300.1, 450.2, 800.3]
    for text in ("abc", "1_000", "١٢٣٤", "１２３"):  # Python's float() reads the last three; MLflow's cast is float()
        bad = rows.astype({"precursor_mz": object})
        bad.loc[2, "precursor_mz"] = text
        with pytest.raises(RequestRejected) as refused:
            check_csv_request(bad.to_csv(index=False).encode(), max_rows=10)
        assert (
            refused.value.message == f"request row 2: precursor_mz must be a finite number >= 0, got the text {text!r}"
        )
        records = json.dumps({"dataframe_records": bad.to_dict("records")}).encode()
        assert _call(_schema_app(), records, b"application/json") == 400
    with pytest.raises(RequestRejected, match=r"unknown columns \['polarity'\]"):
        check_csv_request(rows.assign(polarity="-").to_csv(index=False).encode(), max_rows=10)
    header, first, *_ = rows.to_csv(index=False).splitlines()
    with pytest.raises(RequestRejected, match=r"request row 1: 2 values under a header of 5"):
        check_csv_request(f"{header}\n{first}\nA,100.0\n".encode(), max_rows=10)
    with pytest.raises(RequestRejected, match=r"duplicated columns \['msms'\]"):
        check_csv_request(rows.assign(dup=rows["msms"]).to_csv(index=False).replace(",dup", ",msms").encode(), 10)
    header = ",".join(list(rows.columns) + [f"x{i}" for i in range(20)] * 2)  # 20 names twice: 5 named, no echo
    with pytest.raises(
        RequestRejected, match=r"duplicated columns \['x0', 'x1', 'x10', 'x11', 'x12'\] and 15 more; expected"
    ):
        check_csv_request(f"{header}\n".encode(), 10)
    assert _call(_schema_app(), rows.to_csv(index=False).encode(), b"text/csv") == 200
    assert _call(_schema_app(), b"", b"text/csv") == 400


# ----------------------------------------------------------------------------------------------- request log
def _call(app: GuardedApp, body: bytes, content_type: bytes = b"application/json") -> int:
    """One POST /invocations through the ASGI app; the status it answered."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/invocations", "method": "POST", "headers": [(b"content-type", content_type)]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"]


def _log_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == REQUEST_LOG]


def test_one_log_line_per_request_without_the_input(caplog):
    app = _schema_app()
    rows = request_rows().to_dict(orient="records")
    with caplog.at_level(logging.INFO, logger=REQUEST_LOG):
        assert _call(app, json.dumps({"dataframe_records": rows}).encode()) == 200
        bad = [dict(rows[0], precursor_mz="secret-text")]
        assert _call(app, json.dumps({"dataframe_records": bad}).encode()) == 400
        assert _call(app, b"{not json") == 400
    ok, refused, broken = _log_lines(caplog)
    assert "status=200" in ok and "accessions=1 ids=['ACC1']" in ok and "rows=3" in ok
    assert "model=ms2img-DPPH version=7" in ok and "latency_ms=" in ok
    assert "status=400 error=BAD_REQUEST" in refused and "model=ms2img-DPPH version=7" in refused
    assert "status=400" in broken and "accessions=-" in broken
    text = f"{ok}\n{refused}\n{broken}"
    assert "secret-text" not in text and "100.05:20" not in text  # no peaks, no values


def test_log_line_names_a_few_ids_and_counts_the_rest(caplog):
    app = _schema_app()
    with caplog.at_level(logging.INFO, logger=REQUEST_LOG):
        app._log(SimpleNamespace(status=200, code="", accessions=[f"S{k}" for k in range(8)], rows=40), 0.0123)
    [line] = _log_lines(caplog)
    assert "accessions=8 ids=['S0', 'S1', 'S2', 'S3', 'S4' +3]" in line and "latency_ms=12.3" in line


def test_request_log_is_written_under_uvicorn():
    """uvicorn configures only its own loggers: the server gives the request log a handler of its own."""
    handlers, level, propagate = list(request_log.handlers), request_log.level, request_log.propagate
    stream = io.StringIO()
    try:
        for h in handlers:
            request_log.removeHandler(h)
        configure_request_log(stream)
        configure_request_log(stream)  # once per worker, however often called
        request_log.info("POST /invocations status=200")
        assert stream.getvalue().count("status=200") == 1 and "INFO ms2img.serve[" in stream.getvalue()
    finally:
        for h in list(request_log.handlers):
            request_log.removeHandler(h)
        for h in handlers:
            request_log.addHandler(h)
        request_log.setLevel(level)
        request_log.propagate = propagate
