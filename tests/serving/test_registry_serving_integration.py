"""Registry -> pyfunc -> guarded scoring app, end to end on a tiny cohort.

Fast part: an rf-image FamilyModel folder is registered (models-from-code) in a temporary SQLite store, loaded with
``mlflow.pyfunc.load_model`` and wrapped in MLflow's scoring app behind :class:`ms2img.serving.app.GuardedApp`;
good and bad requests go through the ASGI stack in-process (httpx transport). Slow part: ``ms2img serve`` as a real
uvicorn server with two workers.
"""

from __future__ import annotations

import json
import socket
import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from builders import ASSAY, rf_image_model, stop_server, temporary_store, tiny_cohort, wait_until_serving

pytestmark = pytest.mark.integration
MAX_ROWS = 4000  # the test server's row limit: two accessions of three injections each fit


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from ms2img import registry
    from ms2img.io.schema import read_events
    from ms2img.render import ImageSet
    from ms2img.serving.request import events_to_request

    root = tmp_path_factory.mktemp("serving_store")
    with temporary_store(root) as uri:
        cohort = tiny_cohort(root / "data", accessions=10, seed=5)
        images = ImageSet.load(cohort.images)
        accs = sorted(images.ids.astype(str))
        folder = rf_image_model(images, accs, np.tile([0, 1], 5), root / "models" / ASSAY / "rf-image")
        version = registry.register_family(folder, data_hash="md5:t", code_version="t", events_dir=cohort.events)
        name = registry.model_name(ASSAY)
        registry.promote_version(name, version)
        request = events_to_request(read_events(cohort.events / f"{accs[0]}.parquet"))
        yield SimpleNamespace(root=root, uri=uri, name=name, version=version, request=request, accs=accs)


@pytest.fixture(scope="module")
def client(served):
    import httpx

    from ms2img.serving.app import create_app

    app = create_app(f"models:/{served.name}@champion", max_bytes=2_000_000, max_rows=MAX_ROWS)

    class Sync:
        """A synchronous face over httpx's ASGI transport (no server, no thread)."""

        def __init__(self):
            import asyncio

            self.loop = asyncio.new_event_loop()
            self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

        def post(self, content: bytes | str, headers: dict | None = None):
            h = {"Content-Type": "application/json"} if headers is None else headers
            return self.loop.run_until_complete(self.http.post("/invocations", content=content, headers=h))

        def get(self, path: str):
            return self.loop.run_until_complete(self.http.get(path))

    c = Sync()
    yield c
    c.loop.run_until_complete(c.http.aclose())
    c.loop.close()


def _records(df: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_records": json.loads(df.to_json(orient="records"))}).encode()


def test_good_request_names_family_version_and_domain(served, client):
    r = client.post(_records(served.request))
    assert r.status_code == 200, r.text
    [pred] = r.json()["predictions"]
    assert pred["accession"] == served.accs[0] and pred["family"] == "rf-image"
    assert pred["model_version"] == served.version and 0 <= pred["probability"] <= 1
    assert pred["in_domain"] is True and pred["class"] in ("high", "low"), pred["domain_note"]
    split = {"dataframe_split": json.loads(served.request.to_json(orient="split", index=False))}
    assert client.post(json.dumps(split)).status_code == 200
    assert client.get("/ping").status_code == 200


@pytest.mark.parametrize(
    "body, headers, status, words",
    [
        (b'{"dataframe_records": []}', {}, 415, "Content-Type"),
        (b"[" * 100_000 + b"]" * 100_000, None, 400, "nested too deeply"),
        (b'{"dataframe_records": [{"a": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}]}", None, 400, "nested too deeply"),
        (b"x" * 2_000_001, None, 413, "payload too large"),
        (b"{not json", None, 400, "not valid JSON"),
        (b"", None, 400, "empty request"),
        (b"{}", {"Content-Type": "application/json", "Content-Length": "-1"}, 400, "bad Content-Length"),
    ],
    ids=["no-content-type", "deep-array", "deep-object", "too-many-bytes", "bad-json", "empty", "bad-length"],
)  # fmt: skip
def test_guard_answers_4xx_without_echo(client, body, headers, status, words):
    r = client.post(body, headers=headers)
    assert r.status_code == status, r.text
    assert words in r.json()["message"]
    assert len(r.content) < 600


def test_schema_errors_are_400s_naming_the_column_without_echo(served, client):
    extra = served.request.assign(polarity="negative")
    r = client.post(_records(extra))
    assert r.status_code == 400 and "unknown columns ['polarity']" in r.json()["message"]
    r = client.post(_records(served.request.drop(columns=["rt_min"])))
    assert r.status_code == 400 and "missing columns ['rt_min']" in r.json()["message"]
    big = pd.concat([served.request] * (MAX_ROWS // len(served.request) + 1), ignore_index=True)
    r = client.post(_records(big))
    assert r.status_code == 400 and "payload too large" in r.json()["message"]
    bad = served.request.copy()
    bad.loc[1, "msms"] = "12.3:abc"
    r = client.post(_records(bad))
    assert r.status_code == 400, r.text
    msg = r.json()["message"]
    assert "request row 1" in msg and "Failed to predict data" not in msg and len(r.content) < 1000, msg
    assert client.post(_records(served.request)).status_code == 200  # still serving


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ms2img_serve_real_server(served):
    """``ms2img serve``'s command line: uvicorn, two workers, the guarded app on the champion."""
    import requests

    from ms2img.commands.serve import serve_command, serve_env

    port = _free_port()
    uri = f"models:/{served.name}@champion"
    cmd = serve_command(uri, "127.0.0.1", port, workers=2)
    log_path = served.root / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=served.root, env=serve_env(uri, served.uri, 1_000_000, 1000), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base, log_path)
        r = requests.post(f"{base}/invocations", data=_records(served.request),
                          headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
        assert r.status_code == 200 and r.json()["predictions"][0]["family"] == "rf-image", r.text
        r = requests.post(f"{base}/invocations", data=b"{}", timeout=60)  # requests sets no content type for bytes
        assert r.status_code == 415, r.text
    finally:
        stop_server(proc)
