"""Issue 26's serving answers on a registered model (registry -> pyfunc -> guarded scoring app, in-process), and the
request log of a real ``ms2img serve``."""

from __future__ import annotations

import json
import subprocess
import time

import pandas as pd
import pytest
import test_registry_serving_integration as base
from builders import stop_server, wait_until_serving

pytestmark = pytest.mark.integration
served, client = base.served, base.client  # the registered rf-image model and an in-process client (fixtures)
_free_port, _records = base._free_port, base._records


def _two_accessions(served) -> pd.DataFrame:
    """Two training accessions, the later one (by name) first: sorting would swap them."""
    from ms2img.io.schema import read_events
    from ms2img.serving.request import events_to_request

    events = served.root / "data"
    later = events_to_request(read_events(next(events.rglob(f"{served.accs[1]}.parquet"))))
    return pd.concat([later, served.request], ignore_index=True)


def test_registered_model_answers_in_request_order_with_rounded_probabilities(served, client):
    r = client.post(_records(_two_accessions(served)))
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["accession"] for p in preds] == [served.accs[1], served.accs[0]]
    for p in preds:
        assert p["probability"] == round(p["probability"], 4)
        assert p["in_domain"] is True and p["class"] in ("high", "low"), p["domain_note"]


def test_registered_model_withholds_the_class_out_of_domain(served, client):
    few = served.request.head(1).assign(accession="FEW")  # one precursor: fewer than any training accession
    [pred] = client.post(_records(few)).json()["predictions"]
    assert pred["in_domain"] is False and pred["class"] is None, pred
    assert 0 <= pred["probability"] <= 1 and "class_out_of_domain" in pred["domain_note"]
    body = json.loads(_records(few))
    r = client.post(json.dumps({**body, "params": {"class_out_of_domain": True}}))
    [asked] = r.json()["predictions"]
    assert asked["class"] in ("high", "low") and asked["in_domain"] is False
    assert asked["probability"] == pred["probability"]


def test_registered_model_returns_drivers_as_objects(served, client):
    body = json.loads(_records(served.request))
    r = client.post(json.dumps({**body, "params": {"explain": True}}))
    assert r.status_code == 200, r.text
    [pred] = r.json()["predictions"]
    assert isinstance(pred["drivers"], list) and all(isinstance(b, dict) for b in pred["drivers"])


def test_text_precursor_mz_is_answered_in_plain_words(served, client):
    rows = json.loads(served.request.to_json(orient="records"))
    rows[2]["precursor_mz"] = "six hundred"
    r = client.post(json.dumps({"dataframe_records": rows}))
    assert r.status_code == 400
    assert r.json()["message"] == "request row 2: precursor_mz must be a finite number >= 0, got the text 'six hundred'"


@pytest.mark.slow
def test_real_server_logs_one_line_per_request(served):
    """Under uvicorn (which configures only its own loggers) every request leaves one line, without the peaks."""
    import requests

    from ms2img.commands.serve import serve_command, serve_env

    port, uri = _free_port(), f"models:/{served.name}@champion"
    log_path = served.root / "server-log.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(serve_command(uri, "127.0.0.1", port, workers=1), cwd=served.root,
                                env=serve_env(uri, served.uri, 1_000_000, 1000), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base, log_path)
        headers = {"Content-Type": "application/json"}
        ok = requests.post(f"{base}/invocations", data=_records(served.request), headers=headers, timeout=60)
        bad = requests.post(f"{base}/invocations", data=b"{not json", headers=headers, timeout=60)
        assert (ok.status_code, bad.status_code) == (200, 400)
        time.sleep(0.5)
        lines = [ln for ln in log_path.read_text().splitlines() if "POST /invocations" in ln]
        assert len(lines) == 2, lines
        assert "status=200" in lines[0] and f"ids=['{served.accs[0]}']" in lines[0]
        assert f"version={served.version}" in lines[0] and "latency_ms=" in lines[0]
        assert "status=400" in lines[1]
        assert served.request["msms"].iat[0][:20] not in log_path.read_text()
    finally:
        stop_server(proc)
