"""Training -> registry -> ``mlflow models serve``, end to end on a tiny synthetic cohort (about a minute on 2 cores).

One module-scoped MLflow store (SQLite + local artifacts in a temp folder): a tiny CNN is trained and registered
as ``ms2img-DPPH`` version 1 and promoted to champion, the real scoring server is started on it, and good and bad
requests go over HTTP. Then the registry policy: a worse challenger is refused (reason tagged), a challenger that
fails its smoke prediction is refused, a good one is promoted, and a rollback moves the champion back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import requests
from builders import random_request, tiny_cohort, tiny_params, train_tiny

pytestmark = pytest.mark.integration

ASSAY = "DPPH"
MAX_ROWS = 2000  # a small serve.max_rows so the oversize request stays cheap


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A temporary MLflow store holding ``ms2img-DPPH`` version 1 (tiny CNN) as champion."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from ms2img import registry, tracking

    root = tmp_path_factory.mktemp("mlflow_store")
    previous_uri = tracking_utils._tracking_uri
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        mp.chdir(root)
        try:
            uri = tracking.setup_tracking()
            cohort = tiny_cohort(root / "data", accessions=20, seed=7, size="75x70")
            params = tiny_params(serve__max_rows=MAX_ROWS)
            out = train_tiny(cohort, ASSAY, params, root)
            name = registry.model_name(ASSAY)
            assert (out["registered"]["name"], out["registered"]["version"]) == (name, "1")
            decision = registry.promote(name)
            assert decision.promoted and decision.champion_after == "1", decision
            yield SimpleNamespace(root=root, uri=uri, cohort=cohort, name=name, out=out, params=params)
        finally:
            mlflow.set_tracking_uri(previous_uri)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(store):
    """``mlflow models serve`` on the champion (as ``ms2img serve`` runs it); always stopped afterwards."""
    from ms2img.commands.serve import serve_command

    port = _free_port()
    cmd = serve_command(f"models:/{store.name}@champion", "127.0.0.1", port, workers=1)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn comes from PATH
    log_path = store.root / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=store.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer /ping within 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield SimpleNamespace(url=f"{base}/invocations", base=base, log=log_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and any uvicorn workers it started
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _labelled_request(store, index: int = 0) -> tuple[str, pd.DataFrame]:
    """Request rows (one per precursor, replicates averaged) of a real accession of the synthetic cohort."""
    from ms2img.io.schema import read_events
    from ms2img.serving import events_to_request

    path = sorted(store.cohort.events.glob("*.parquet"))[index]
    return path.stem, events_to_request(read_events(path))


def _split(df: pd.DataFrame) -> dict:
    return {"dataframe_split": json.loads(df.to_json(orient="split", index=False))}


def _post(server, payload, **kw) -> requests.Response:
    if isinstance(payload, bytes | str):
        return requests.post(server.url, data=payload, headers={"Content-Type": "application/json"}, timeout=60)
    return requests.post(server.url, json=payload, timeout=60, **kw)


def _assert_good(server, store) -> None:
    acc, req = _labelled_request(store, 1)
    r = _post(server, _split(req))
    assert r.status_code == 200, r.text
    assert [p["accession"] for p in r.json()["predictions"]] == [acc]


# -------------------------------------------------------------------------------------------- serving
def test_served_prediction_for_a_real_accession(store, server):
    import mlflow

    acc, req = _labelled_request(store)
    r = _post(server, _split(req))
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 1
    p = preds[0]
    assert set(p) == {"accession", "probability", "class", "assay", "model_version"}
    assert p["accession"] == acc and p["assay"] == ASSAY and p["model_version"] == "1"
    assert 0.0 <= p["probability"] <= 1.0
    assert p["class"] == ("high" if p["probability"] >= 0.5 else "low")

    # Same answer as the registered model in-process, and as the records format.
    local = mlflow.pyfunc.load_model(f"models:/{store.name}@champion").predict(req)
    assert local["probability"].iloc[0] == pytest.approx(p["probability"], abs=1e-5)
    records = _post(server, {"dataframe_records": json.loads(req.to_json(orient="records"))})
    assert records.status_code == 200
    assert records.json()["predictions"][0]["probability"] == pytest.approx(p["probability"], abs=1e-6)


def test_served_image_is_the_training_image(store):
    """No train/serve skew: the request built from an accession's events renders exactly its training image."""
    from ms2img.render import ImageSet, RenderConfig
    from ms2img.serving import render_request

    images = ImageSet.load(store.cohort.images)
    config = RenderConfig.from_dict(images.config)
    for index in range(3):
        acc, req = _labelled_request(store, index)
        ids, served = render_request(req, config)
        assert ids.tolist() == [acc]
        np.testing.assert_allclose(served[0], images.images[images.index_of(acc)][0], atol=1e-6)


def test_several_accessions_in_one_request(store, server):
    parts = [_labelled_request(store, i) for i in (2, 3)]
    r = _post(server, _split(pd.concat([req for _, req in parts], ignore_index=True)))
    assert r.status_code == 200, r.text
    assert [p["accession"] for p in r.json()["predictions"]] == sorted(acc for acc, _ in parts)


def _bad_frames() -> dict[str, tuple[pd.DataFrame, str]]:
    good = random_request(n_precursors=20, n_fragments=3, accession="ACC_X")
    nan = good.copy()
    nan.loc[3, "precursor_intensity"] = np.nan
    text_mz = good.astype({"precursor_mz": object})
    text_mz.loc[4, "precursor_mz"] = "abc"
    garbage = good.copy()
    garbage.loc[5, "msms"] = "100.1:50 garbage"
    return {
        "missing column": (good.drop(columns=["rt_min"]), "missing columns ['rt_min']"),
        "unknown column": (good.assign(adduct="[M-H]-"), "unknown columns ['adduct']"),
        "NaN": (nan, "request row 3: precursor_intensity must be a finite number"),
        "non-numeric m/z": (text_mz, "request row 4: precursor_mz must be a finite number"),
        "garbage msms": (garbage, "request row 5: msms must be 'mz:intensity' pairs"),
        "empty table": (good.iloc[:0], "empty request"),
        "oversize": (random_request(n_precursors=MAX_ROWS + 1, n_fragments=1), "payload too large"),
        "no fragment in range": (good.assign(precursor_mz=5000.0), "no fragment inside the model's image"),
    }


@pytest.mark.parametrize("case", list(_bad_frames()))
def test_bad_request_is_a_400_naming_the_problem(store, server, case):
    df, expected = _bad_frames()[case]
    r = _post(server, _split(df))
    assert r.status_code == 400, (r.status_code, r.text[:500])
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert expected in body["message"]
    _assert_good(server, store)  # the server is still serving


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', b"{}"],
    ids=["empty body", "not json", "ragged table", "no input field"],
)
def test_malformed_json_is_a_400(store, server, payload):
    r = _post(server, payload)
    assert r.status_code == 400, (r.status_code, r.text[:500])
    assert r.json()["message"]
    _assert_good(server, store)


# ------------------------------------------------------------------------------------------- registry
def _tags(name: str, version: str) -> dict[str, str]:
    from mlflow import MlflowClient

    return MlflowClient().get_model_version(name, version).tags


def _champion(name: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient().get_model_version_by_alias(name, "champion").version)


def test_promotion_policy_and_rollback(store, server):
    import mlflow
    from mlflow import MlflowClient

    from ms2img import registry
    from ms2img.errors import ConfigError

    name, client = store.name, MlflowClient()
    v1 = _tags(name, "1")
    assert float(v1[registry.AUC_TAG]) >= 0 and v1[registry.DATA_TAG].startswith("sha256:")
    assert v1["alias.champion.reason"].startswith("first champion")
    model_uri = store.out["registered"]["model_uri"]

    # A worse challenger (same model, much lower cv AUC): refused, reason tagged, champion unchanged.
    worse = registry.register(model_uri, name, {registry.AUC_TAG: "0.05", registry.DATA_TAG: v1[registry.DATA_TAG]})
    decision = registry.promote(name, margin=0.02)
    assert (decision.candidate, decision.promoted, decision.champion_after) == (worse, False, "1")
    assert _champion(name) == "1"
    assert "worse than" in _tags(name, worse)["promotion.rejected"]
    assert str(client.get_model_version_by_alias(name, "challenger").version) == worse

    # A challenger with a great AUC whose smoke prediction fails: refused as well.
    class Broken(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return pd.DataFrame({"probability": np.full(len(model_input), 2.0)})

    example = _labelled_request(store)[1].head(5)
    with mlflow.start_run(experiment_id=client.get_experiment_by_name(f"ms2img-{ASSAY}").experiment_id):
        info = mlflow.pyfunc.log_model(
            name="broken", python_model=Broken(), input_example=example, pip_requirements=["mlflow"]
        )
    broken = registry.register(info.model_uri, name, {registry.AUC_TAG: "0.99"})
    decision = registry.promote(name)
    assert not decision.promoted and "invalid probabilities" in decision.reason
    assert _champion(name) == "1"

    # A good challenger: promoted, challenger alias cleared, reason tagged.
    good = registry.register(model_uri, name, {registry.AUC_TAG: "0.97", registry.DATA_TAG: "sha256:other"})
    decision = registry.promote(name)
    assert decision.promoted and decision.champion_before == "1" and _champion(name) == good
    assert "different data versions" in _tags(name, good)["alias.champion.reason"]
    assert "challenger" not in client.get_registered_model(name).aliases
    assert registry.promote(name, good).reason == "already champion"

    # Rollback: an explicit human decision, tagged.
    decision = registry.rollback(name, "1", reason="bad field reports")
    assert (decision.champion_before, _champion(name)) == (good, "1")
    assert _tags(name, "1")["alias.champion.reason"] == "bad field reports"
    registry.rollback(name, worse)
    assert _tags(name, worse)["alias.champion.reason"] == "rollback from version 1"
    registry.rollback(name, "1")

    # Unknown model or version: ConfigError, registry untouched.
    before = {m.name: dict(m.aliases) for m in client.search_registered_models()}
    with pytest.raises(ConfigError, match="no registered model 'ms2img-NOPE'"):
        registry.promote("ms2img-NOPE")
    with pytest.raises(ConfigError, match="has no version 99"):
        registry.promote(name, "99")
    with pytest.raises(ConfigError, match="has no version 99"):
        registry.rollback(name, "99")
    assert {m.name: dict(m.aliases) for m in client.search_registered_models()} == before
    assert _tags(name, broken)["promotion.rejected"].startswith("kept champion 1")
