"""ms2img.explain.translator: the spectrum-to-structure HTTP client, its answers and its one-line errors."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from ms2img.explain.translator import TranslatorClient, TranslatorError, translate_drivers


class _Handler(BaseHTTPRequestHandler):
    mode = "ok"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.mode == "slow":
            threading.Event().wait(1.0)
        if self.mode == "error":
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"model loading")
            return
        answer = {"predictions": [[{"smiles": f"C{len(s['peaks'])}", "score": 0.5}] for s in body["spectra"]]}
        data = b"not json" if self.mode == "garbage" else json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture()
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    _Handler.mode = "ok"


def test_translator_round_trip(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/translate"
    client = TranslatorClient(url, timeout_s=5)
    preds = client.translate([{"precursor_mz": 289.07, "peaks": [[109.03, 100.0], [123.04, 80.0]]}])
    assert preds == [[{"smiles": "C2", "score": 0.5}]]
    drivers = pd.DataFrame({"rank": [1, 2], "precursor_mz": [289.07, 577.13], "polarity": "negative",
                            "consensus_spectrum": ["109.03:100 123.04:80", "289.07:100"]})  # fmt: skip
    out = translate_drivers(drivers, client, top=1)
    assert list(out["translator_smiles"]) == ["C2", ""]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "answered HTTP 503: model loading"), ("garbage", "unexpected answer"), ("slow", "timed out after")],
)
def test_translator_errors_are_one_line(server, mode, message):
    _Handler.mode = mode
    client = TranslatorClient(f"http://127.0.0.1:{server.server_address[1]}/", timeout_s=0.3)
    with pytest.raises(TranslatorError) as exc:
        client.translate([{"precursor_mz": 289.07, "peaks": [[109.03, 100.0]]}])
    assert message in str(exc.value) and "\n" not in str(exc.value) and "127.0.0.1" in str(exc.value)


def test_translator_unreachable_and_bad_url():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(TranslatorError, match="unreachable"):
        TranslatorClient(f"http://127.0.0.1:{port}/", timeout_s=1).translate([{"precursor_mz": 1, "peaks": []}])
    with pytest.raises(TranslatorError, match="http"):
        TranslatorClient("ftp://example")
