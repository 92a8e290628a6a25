"""A slot for a de novo spectrum-to-structure translator reached over HTTP (off unless a URL is configured).

SpecTUS (Spectral Translator for Unknown Structures) serves GC-EI spectrum -> SMILES translation over a REST API;
an LC-MS/MS translator would plug in the same way. ``explain.translator_url`` in ``params.yaml`` (default null =
off) points at it; nothing in the default path ever opens a connection.

Protocol (JSON over ``POST <url>``), kept deliberately small so a thin adapter can sit in front of any service::

    request:  {"spectra": [{"id": "1", "precursor_mz": 609.1461, "polarity": "negative",
                            "peaks": [[300.0274, 12.0], [301.0352, 100.0]]}], "top_k": 3}
    response: {"predictions": [[{"smiles": "C1=CC...", "score": 0.71}, ...], ...]}   # one list per spectrum

Every failure (refused connection, timeout, HTTP error status, a body that is not that JSON) raises
:class:`TranslatorError` with one line naming the URL and the cause.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np

from ms2img.errors import Ms2ImgError


class TranslatorError(Ms2ImgError):
    """The translator service could not answer (one line: URL and cause)."""


class TranslatorClient:
    """POST spectra to a translator service and read back candidate structures."""

    def __init__(self, url: str, timeout_s: float = 10.0, top_k: int = 3, max_bytes: int = 5_000_000) -> None:
        if not url or not str(url).startswith(("http://", "https://")):
            raise TranslatorError(f"explain.translator_url must be an http(s) URL, got {url!r}")
        self.url = str(url)
        self.timeout_s = float(timeout_s)
        self.top_k = int(top_k)
        self.max_bytes = int(max_bytes)

    def translate(self, spectra: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Candidates per spectrum (``smiles``, ``score``): each spectrum a dict ``precursor_mz, peaks, polarity``."""
        body = {
            "spectra": [
                {
                    "id": str(s.get("id", i)),
                    "precursor_mz": float(s["precursor_mz"]),
                    "polarity": str(s.get("polarity", "negative")),
                    "peaks": np.asarray(s["peaks"], dtype=float).reshape(-1, 2).round(5).tolist(),
                }
                for i, s in enumerate(spectra)
            ],
            "top_k": self.top_k,
        }
        data = json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url, data=data, method="POST", headers={"Content-Type": "application/json"})
        where = f"translator at {self.url}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read(self.max_bytes + 1)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip().replace("\n", " ")
            raise TranslatorError(f"{where} answered HTTP {exc.code}{': ' + detail if detail else ''}") from None
        except TimeoutError:
            raise TranslatorError(f"{where} timed out after {self.timeout_s:g} s") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise TranslatorError(f"{where} timed out after {self.timeout_s:g} s") from None
            raise TranslatorError(f"{where} is unreachable ({reason})") from None
        except OSError as exc:
            raise TranslatorError(f"{where} failed ({exc.__class__.__name__}: {exc})") from None
        if len(raw) > self.max_bytes:
            raise TranslatorError(f"{where} sent more than {self.max_bytes} bytes")
        try:
            answer = json.loads(raw.decode("utf-8"))
            preds = answer["predictions"]
            if not isinstance(preds, list) or len(preds) != len(spectra):
                raise ValueError(f"{len(preds) if isinstance(preds, list) else 'no'} prediction lists")
            out = [[{"smiles": str(c["smiles"]), "score": float(c.get("score", np.nan))} for c in per] for per in preds]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise TranslatorError(
                f"{where} sent an unexpected answer ({exc.__class__.__name__}: {exc}); expected "
                '{"predictions": [[{"smiles": ..., "score": ...}], ...]} with one list per spectrum'
            ) from None
        return out


def translate_drivers(drivers, client: TranslatorClient, top: int = 10):
    """Add ``translator_smiles`` / ``translator_score`` (best candidate) to the first ``top`` drivers."""
    from ms2img.io.msms import parse_msms

    n = min(int(top), len(drivers))
    spectra = []
    for row in drivers.head(n).itertuples(index=False):
        mz, inten = parse_msms(str(row.consensus_spectrum or ""))
        spectra.append(
            {"id": str(row.rank), "precursor_mz": row.precursor_mz, "polarity": row.polarity,
             "peaks": np.column_stack([mz, inten])}
        )  # fmt: skip
    preds = client.translate(spectra) if spectra else []
    out = drivers.copy()
    out["translator_smiles"] = [p[0]["smiles"] if p else "" for p in preds] + [""] * (len(out) - n)
    out["translator_score"] = [p[0]["score"] if p else np.nan for p in preds] + [np.nan] * (len(out) - n)
    return out
