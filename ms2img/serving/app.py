"""A thin ASGI guard in front of MLflow's scoring app (``mlflow.pyfunc.scoring_server``).

MLflow's app answers a missing Content-Type or deeply nested JSON with HTTP 500, parses a body of any size
(a 1e6-row body stalls a worker for seconds before the 400), and repeats the request in every error body
(``Failed to predict data '<the whole request>'``). In front of it, for ``POST /invocations``:

* a ``Content-Type`` is required (415 otherwise), ``Content-Length`` and the streamed body are limited to
  ``max_bytes`` (413, before anything is parsed);
* JSON bodies are parsed once here with a nesting guard (400 "nested too deeply" instead of a RecursionError),
  the number of rows is checked against ``max_rows`` and the columns against the request schema (unknown or
  missing columns are 400s naming them: MLflow's schema enforcement would drop unknown columns silently), and
  every row and cell too (a split row of the wrong length, a nested list or object, a boolean: 400s naming row
  and column), the same in every layout MLflow reads: ``dataframe_split``, ``dataframe_records`` and the
  TF-serving ``instances`` / ``inputs`` as a list of rows (``inputs`` as a dict of columns is a 400); a request
  param MLflow would drop with a log line (a misspelt name, a non-boolean value) is a 400 naming it;
* the parsed body is handed on: with the model at hand (:func:`create_app`), a JSON request is turned into the
  frame with MLflow's own converter (``infer_and_parse_data``, the model's input schema) and predicted and
  answered as MLflow's ``/invocations`` would (``{"predictions": [...]}``), without MLflow parsing the 2 MB body
  twice more (its handler decodes the JSON two times);
* every 4xx/5xx body is rewritten to ``{"error_code", "message"}`` with the echoed input and stack trace removed,
  and MLflow's type-conversion errors (text in a numeric column: ``ValueError("could not convert ...")``) become
  one plain sentence naming the row and column;
* every request gets one log line (logger ``ms2img.serve``): status, latency, the number of accessions answered and
  the first few accession ids, rows, model name and version. Never the peaks, never an error message (it may
  quote a value).

A ``text/csv`` body (a header of the request columns, one row per precursor) is read here too, every cell as text
(an accession named ``NA`` stays ``NA``), and then checked and answered as JSON records are. Everything else
(``/ping``, ``/health``, ``/version``, Parquet bodies, content-type parameters other than ``charset=utf-8``) goes to
MLflow's app unchanged.
``ms2img serve`` runs this app under uvicorn with several workers (:func:`default_workers`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import chain
from typing import Any

from ms2img.serving.request import (
    DEFAULT_MAX_ROWS,
    NUMERIC_REQUEST_COLUMNS,
    REPLICATE,
    REQUEST_COLUMNS,
    RequestError,
    check_params,
    short,
)

try:
    import orjson
except ImportError:  # pragma: no cover - optional: the standard library's parser does the same, ~2x slower
    orjson = None


def _json_loads(body: bytes) -> Any:
    """``json.loads`` (what MLflow uses), through orjson when installed; anything orjson refuses (``NaN``,
    huge integers, deep nesting, broken JSON) goes to ``json.loads``, so what is accepted and the errors are the
    standard library's."""
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


log = logging.getLogger(__name__)
REQUEST_LOG = "ms2img.serve"
request_log = logging.getLogger(REQUEST_LOG)  # one line per request (configured by app_from_env)
LOGGED_IDS = 5  # accession ids named per log line; the rest are counted

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32
ENV_MODEL_URI = "MS2IMG_MODEL_URI"
ENV_MAX_BYTES = "MS2IMG_MAX_BYTES"
ENV_MAX_ROWS = "MS2IMG_MAX_ROWS"
_ECHO = re.compile(r"^Failed to (?:predict|enforce schema of) data .*?Error: ", re.DOTALL)
_CONVERSION = re.compile(r"Failed to convert column (.+?) to type '(\w+)'")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def default_workers(cpus: int | None = None) -> int:
    """Several workers on multi-core machines (one per core, at most 8); one on a single core."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(cpus), 8))


class RequestRejected(Exception):
    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _depth_ok(obj: Any, limit: int) -> bool:
    """Iterative nesting check (no recursion) on the parsed body: False when a list or object sits more than
    ``limit`` levels deep. Level by level, and a level's values are only looked at one by one when their types
    (a C-speed ``set(map(type, ...))``) include a container: request rows are flat, so 5,000 rows cost ~1 ms."""
    level, depth = [obj], 1
    while level:
        if depth > limit:
            return False
        lists = [node for node in level if isinstance(node, list)]
        values = list(chain(chain.from_iterable(lists), *(node.values() for node in level if isinstance(node, dict))))
        if any(issubclass(t, dict | list) for t in set(map(type, values))):
            level = [v for v in values if isinstance(v, dict | list)]
        else:
            level = []
        depth += 1
    return True


def check_json_request(
    body: bytes, max_rows: int, max_depth: int = MAX_DEPTH, optional: tuple[str, ...] = (REPLICATE,)
) -> dict[str, Any]:
    """The parsed body; :class:`RequestRejected` for a body the model must not see (cheap next to the model)."""
    if not body.strip():
        raise RequestRejected(400, f"empty request: send {{'dataframe_records': [...]}} with columns {REQUEST_COLUMNS}")
    try:
        payload = _json_loads(body)
    except RecursionError:
        raise RequestRejected(400, f"JSON nested too deeply (more than {max_depth} levels)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRejected(400, f"body is not valid JSON ({exc.__class__.__name__} at position "
                              f"{getattr(exc, 'pos', '?')})") from None  # fmt: skip
    if not _depth_ok(payload, max_depth):
        raise RequestRejected(400, f"JSON nested too deeply (more than {max_depth} levels)")
    return check_payload(payload, max_rows, optional)


def check_csv_request(body: bytes, max_rows: int, optional: tuple[str, ...] = (REPLICATE,)) -> dict[str, Any]:
    """A CSV body (header + one row per precursor) as the JSON layout ``dataframe_split``, checked the same way.

    MLflow's own CSV reader takes an accession named ``NA`` or ``null`` for a missing value and answers text in a
    numeric column with a parser error naming no row; here every cell is read as text, numeric columns become
    numbers cell by cell (an empty cell: null), and the rows meet the JSON path's checks and messages.
    """
    import csv
    import io

    if not body.strip():
        raise RequestRejected(400, f"empty request: send a CSV header {','.join(REQUEST_COLUMNS)} and one row per "
                              "precursor")  # fmt: skip
    try:
        table = [r for r in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")) if r]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise RequestRejected(400, f"body is not valid UTF-8 CSV ({short(str(exc), 120)})") from None
    header, rows = [c.strip() for c in table[0]], table[1:]
    short_row = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
    if short_row is not None:
        raise RequestRejected(400, f"request row {short_row}: {len(rows[short_row])} values under a header of "
                              f"{len(header)} ({header})")  # fmt: skip
    numeric = {i for i, c in enumerate(header) if c in NUMERIC_REQUEST_COLUMNS}
    data = [[_csv_number(v) if i in numeric else v for i, v in enumerate(r)] for r in rows]
    return check_payload({"dataframe_split": {"columns": header, "data": data}}, max_rows, optional)


_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)  # not '١٢٣٤' or '１２３'


def _csv_number(text: str) -> float | str | None:
    """A CSV cell of a numeric column: a plain decimal number, None when empty, else the text (the checks name it;
    ``float`` alone would also take ``1_000`` or ``nan``)."""
    text = text.strip()
    if not text:
        return None
    return float(text) if _PLAIN_NUMBER.fullmatch(text) else text


def check_payload(payload: Any, max_rows: int, optional: tuple[str, ...] = (REPLICATE,)) -> dict[str, Any]:
    """The checks of a decoded body (layout, params, rows, columns, cells); the payload or :class:`RequestRejected`.
    ``optional``: the optional columns the served model's signature declares (a model registered before
    ``replicate`` existed would have MLflow drop it and read each injection's rows as more precursors)."""
    if not isinstance(payload, dict):
        raise RequestRejected(400, "expected a JSON object with 'dataframe_split' or 'dataframe_records'")
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in payload]
    if len(keys) != 1:
        raise RequestRejected(
            400, "expected exactly one of 'dataframe_split' or 'dataframe_records' (one row per precursor)"
        )
    try:
        check_params(payload.get("params"))
    except RequestError as exc:
        raise RequestRejected(400, str(exc)) from None
    data = payload[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise RequestRejected(400, "'dataframe_split' needs 'columns' and 'data' (a list of rows)")
        rows, columns = data["data"], data.get("columns")
        if not isinstance(columns, list):
            raise RequestRejected(400, f"'dataframe_split' needs 'columns': {REQUEST_COLUMNS}")
        names = [str(c) for c in columns]
        if len(set(names)) != len(names):  # counted once (names.count per name: a long CSV header held a core)
            twice = sorted(c for c, n in Counter(names).items() if n > 1)
            more = f" and {len(twice) - 5} more" if len(twice) > 5 else ""  # no echo of a whole header
            raise RequestRejected(400, f"duplicated columns {[c[:40] for c in twice[:5]]}{more}; expected each of "
                                  f"{REQUEST_COLUMNS} once")  # fmt: skip
    else:
        if not isinstance(data, list):
            raise RequestRejected(400, f"'{keys[0]}' must be a list of rows with columns {REQUEST_COLUMNS}")
        rows = data
        if set(map(type, rows)) - {dict}:  # ``instances`` / ``inputs`` rows too: one object per precursor
            bad = next(i for i, r in enumerate(rows) if type(r) is not dict)
            raise RequestRejected(400, f"request row {bad}: expected an object with columns {REQUEST_COLUMNS}")
        names = list(dict.fromkeys(chain.from_iterable(rows)))
        missing_in = None
        if set(map(len, rows)) - {len(names)}:
            missing_in = next(i for i, r in enumerate(rows) if len(r) != len(names))
        if missing_in is not None and set(REQUEST_COLUMNS) <= set(names) <= {*REQUEST_COLUMNS, *optional}:
            gone = [c for c in names if c not in rows[missing_in]]
            raise RequestRejected(400, f"request row {missing_in}: missing columns {gone}")
    if len(rows) > max_rows:
        raise RequestRejected(400, f"payload too large: {len(rows)} rows, at most {max_rows} precursors per request")
    if not rows:
        raise RequestRejected(400, f"empty request: send at least one row with columns {REQUEST_COLUMNS}")
    if REPLICATE in names and REPLICATE not in optional:
        raise RequestRejected(400, f"this model version takes one row per precursor ({REQUEST_COLUMNS}), no "
                              f"'{REPLICATE}' column: send one injection per accession, or register it again "
                              "(ms2img retrain --force) to serve several")  # fmt: skip
    extra = [c for c in names if c not in REQUEST_COLUMNS and c not in optional]
    if extra:
        raise RequestRejected(
            400, f"unknown columns {[c[:40] for c in extra[:10]]}; expected exactly {REQUEST_COLUMNS}"
        )
    missing = [c for c in REQUEST_COLUMNS if c not in names]
    if missing:
        raise RequestRejected(400, f"missing columns {missing}; expected exactly {REQUEST_COLUMNS}")
    _check_cells(rows, names, split=keys[0] == "dataframe_split")
    return payload


_SCALARS = frozenset({str, int, float, type(None)})


def _check_cells(rows: list, names: list[str], split: bool) -> None:
    """Every row of the right shape and every cell one JSON string, number or null, in every layout
    (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``): a nested list or object, a boolean or a
    split row of the wrong length is a 400 naming row and column here, not a conversion error of MLflow's (multi-line,
    different per layout) or a silent cast (``true`` -> 1.0, ``{"a": 1}`` -> the string "{'a': 1}") later.
    Type sets are taken at C speed; rows are walked one by one only to name a bad cell."""
    if split:
        if set(map(type, rows)) - {list} or set(map(len, rows)) - {len(names)}:
            bad = next(i for i, r in enumerate(rows) if type(r) is not list or len(r) != len(names))
            raise RequestRejected(400, f"request row {bad}: expected a list of {len(names)} values ({names})")
        cells = chain.from_iterable(rows)
    else:
        cells = chain.from_iterable(map(dict.values, rows))
    if set(map(type, cells)) - _SCALARS:
        for i, row in enumerate(rows):
            for column, value in zip(names, row, strict=True) if split else row.items():
                if type(value) not in _SCALARS:
                    what = "a boolean" if isinstance(value, bool) else f"a {type(value).__name__}"
                    raise RequestRejected(400, f"request row {i}: {column} must be a string, a number or null, "
                                          f"got {what}")  # fmt: skip
    # text in a number column: MLflow's cast is Python's float(), which also reads '1_000', '١٢٣٤' and '１２３'
    for column in (c for c in NUMERIC_REQUEST_COLUMNS if c in names):
        k = names.index(column)
        values = [r[k] for r in rows] if split else [r.get(column) for r in rows]
        if str not in set(map(type, values)):
            continue
        for i, value in enumerate(values):
            if isinstance(value, str) and not _PLAIN_NUMBER.fullmatch(value.strip()):
                raise RequestRejected(400, f"request row {i}: {column} must be a finite number >= 0, got the text "
                                      f"{short(value)}")  # fmt: skip


def plain_conversion_error(message: str, data: dict[str, Any]) -> str | None:
    """MLflow's schema-conversion error (``Failed to convert column precursor_mz to type 'float64'. Error:
    'ValueError("could not convert string to float: ...")'``) in plain words, naming the first row whose text is
    not a number, like :func:`ms2img.serving.request.validate_request` does; None for any other error."""
    match = _CONVERSION.search(message)
    if match is None:
        return None
    column, kind = match.group(1), match.group(2)
    if not kind.startswith(("float", "int")):
        return f"{column} must be {kind}; a value in it is not"
    if "dataframe_split" in data:
        split = data["dataframe_split"]
        idx = [str(c) for c in split["columns"]].index(column) if column in map(str, split["columns"]) else None
        values = (row[idx] for row in split["data"]) if idx is not None else iter(())
    else:
        values = (row.get(column) for row in data.get("dataframe_records", []))
    for i, value in enumerate(values):
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:
                return f"request row {i}: {column} must be a finite number >= 0, got the text {short(value)}"
    return f"{column} must hold numbers; one of its values is not a number"


def clean_error_body(body: bytes, status: int) -> bytes:
    """An error body without the echoed request or stack trace: ``{"error_code", "message"}``."""
    try:
        err = json.loads(body)
        message = str(err.get("message", "")) if isinstance(err, dict) else str(err)
        code = str(err.get("error_code", "BAD_REQUEST")) if isinstance(err, dict) else "BAD_REQUEST"
    except (ValueError, UnicodeDecodeError):
        message, code = body.decode("utf-8", "replace"), "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
    while _ECHO.match(message):
        message = _ECHO.sub("", message, count=1)
    message = message.strip()
    if len(message) > 2000:
        message = message[:2000] + "..."
    if status >= 500 and "internal error in the model" not in message:
        message = "internal server error; see the server log"
    return json.dumps({"error_code": code, "message": message}).encode()


def _utf8_only(ctype: str) -> bool:
    """A media type with no parameter but ``charset=utf-8``, read as MLflow reads it (anything else goes to MLflow's
    handler, which answers 415)."""
    for pair in map(str.strip, ctype.split(";")[1:]):
        key, _, value = pair.partition("=")
        if key != "charset" or value.lower() != "utf-8":
            return False
    return True


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send(
        {"type": "http.response.start", "status": status,
         "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]}
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


@dataclass
class Outcome:
    """What the request log says about one request (filled in as the request is handled)."""

    status: int = 500
    code: str = ""
    accessions: list[str] | None = None
    rows: int | None = None


def _model_identity(model: Any) -> tuple[str, str]:
    """(registered model name, version) from the served model's config, as registration wrote it; "?" if absent."""
    config = getattr(model, "model_config", None) if model is not None else None
    config = config if isinstance(config, dict) else {}
    return str(config.get("registered_model", "?")), str(config.get("model_version", "?"))


def _error_code(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error_code", ""))
    except (ValueError, AttributeError):
        return ""


class GuardedApp:
    """ASGI middleware: the guards of the module docstring around ``inner`` (MLflow's FastAPI scoring app)."""

    def __init__(self, inner, max_bytes: int = DEFAULT_MAX_BYTES, max_rows: int = DEFAULT_MAX_ROWS, model=None):
        self.inner, self.max_bytes, self.max_rows = inner, int(max_bytes), int(max_rows)
        self.model = model  # the PyFuncModel behind ``inner``: JSON requests are answered here, parsed once
        self._input_schema = model.metadata.get_input_schema() if model is not None else None
        declared = self._input_schema.input_names() if self._input_schema is not None else [REPLICATE]
        self.optional = tuple(c for c in (REPLICATE,) if c in declared)
        self.model_name, self.model_version = _model_identity(model)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != "/invocations" or scope.get("method") != "POST":
            await self.inner(scope, receive, send)
            return
        start, outcome = time.perf_counter(), Outcome()
        try:
            await self._handle(scope, receive, send, outcome)
        finally:
            self._log(outcome, time.perf_counter() - start)

    def _log(self, outcome: Outcome, seconds: float) -> None:
        """One line per request: what an operator needs to follow traffic and failures, never the request."""
        accs = outcome.accessions
        if accs is None:
            named = "accessions=-"
        else:
            ids = [short(a, 40) for a in accs[:LOGGED_IDS]]
            more = f" +{len(accs) - LOGGED_IDS}" if len(accs) > LOGGED_IDS else ""
            named = f"accessions={len(accs)} ids=[{', '.join(ids)}{more}]"
        rows = "-" if outcome.rows is None else str(outcome.rows)
        code = f" error={outcome.code}" if outcome.code else ""
        request_log.log(
            logging.ERROR if outcome.status >= 500 else logging.INFO,
            "POST /invocations status=%d%s latency_ms=%.1f %s rows=%s model=%s version=%s",
            outcome.status, code, seconds * 1000.0, named, rows, self.model_name, self.model_version,
        )  # fmt: skip

    async def _handle(self, scope: Scope, receive: Receive, send: Send, outcome: Outcome) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            ctype = headers.get("content-type", "").strip()
            if not ctype:
                raise RequestRejected(415, "missing Content-Type: send 'application/json'", "UNSUPPORTED_MEDIA_TYPE")
            length = headers.get("content-length")
            if length is not None and not length.strip().isdigit():
                raise RequestRejected(400, f"bad Content-Length header {length[:20]!r}", "BAD_REQUEST")
            if length is not None and int(length) > self.max_bytes:
                raise RequestRejected(
                    413, f"payload too large: more than {self.max_bytes} bytes per request", "REQUEST_TOO_LARGE"
                )
            body = await self._read(receive)
            payload, media = None, ctype.split(";")[0].strip().lower()
            if media == "application/json":
                payload = await asyncio.to_thread(check_json_request, body, self.max_rows, MAX_DEPTH, self.optional)
            elif media == "text/csv" and _utf8_only(ctype):
                payload = await asyncio.to_thread(check_csv_request, body, self.max_rows, self.optional)
        except RequestRejected as rej:
            outcome.status, outcome.code = rej.status, rej.code
            await _respond(send, rej.status, json.dumps({"error_code": rej.code, "message": rej.message}).encode())
            return
        if payload is not None and self.model is not None and _utf8_only(ctype):
            status, answer, outcome.accessions, outcome.rows = await asyncio.to_thread(self._invoke, payload)
            outcome.status, outcome.code = status, _error_code(answer) if status >= 400 else ""
            await _respond(send, status, answer)
            return
        outcome.status = await self._forward(scope, body, send)

    def _invoke(self, payload: dict[str, Any]) -> tuple[int, bytes, list[str] | None, int | None]:
        """MLflow's ``/invocations`` on an already parsed JSON body: the same frame (MLflow's converter and the
        model's input schema), the same ``model.predict`` (schema enforcement included), the same answer.
        Returns (status, body, accessions answered or None, request rows or None) for the request log."""
        from io import StringIO

        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc.scoring_server import SERVING_PARAMS_KEY, infer_and_parse_data, predictions_to_json

        data, rows = payload, None
        try:
            data = {k: v for k, v in payload.items() if k != SERVING_PARAMS_KEY}
            for key in ("instances", "inputs"):  # rows, as the guard checked them: handed on as records, so they
                if key in data:  # become the frame records would (MLflow's TF-serving reader makes a dict instead)
                    data = {"dataframe_records": data[key]}
            frame = infer_and_parse_data(data, self._input_schema)
            rows = len(frame) if hasattr(frame, "__len__") else None
            params = payload.get(SERVING_PARAMS_KEY)
            out = self.model.predict(frame, params=params) if params is not None else self.model.predict(frame)
            result = StringIO()
            predictions_to_json(out, result)
            accessions = [str(a) for a in out["accession"]] if "accession" in getattr(out, "columns", ()) else None
            return 200, result.getvalue().encode(), accessions, rows
        except MlflowException as exc:
            status = exc.get_http_status_code()
            if status >= 500:
                log.error("model answered %d: %s", status, exc.message[:2000])
            plain = plain_conversion_error(exc.message, data) if status < 500 else None
            if plain is not None:
                return 400, json.dumps({"error_code": "BAD_REQUEST", "message": plain}).encode(), None, rows
            return status, clean_error_body(exc.serialize_as_json().encode(), status), None, rows
        except Exception:  # MLflow's handler answers these with 400 and the traceback; the log gets the traceback
            log.exception("unexpected error while evaluating the model")
            message = (
                "Encountered an unexpected error while evaluating the model. Verify that the serialized input "
                "Dataframe is compatible with the model for inference."
            )
            return 400, json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode(), None, rows

    async def _read(self, receive: Receive) -> bytes:
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise RequestRejected(400, "client disconnected")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise RequestRejected(
                    413, f"payload too large: more than {self.max_bytes} bytes per request", "REQUEST_TOO_LARGE"
                )
            chunks.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> int:
        """Hand the request to MLflow's app, cleaning its error bodies; returns the status it answered."""
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        state: dict[str, Any] = {"status": 200, "headers": [], "chunks": []}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["headers"] = message.get("headers", [])
                if state["status"] < 400:
                    await send(message)
                return
            if state["status"] < 400:
                await send(message)
                return
            state["chunks"].append(message.get("body", b""))
            if not message.get("more_body", False):
                status = state["status"]
                if status >= 500:
                    log.error("scoring app answered %d: %s", status, b"".join(state["chunks"])[:2000])
                await _respond(send, status, clean_error_body(b"".join(state["chunks"]), status))

        await self.inner(scope, replay, capture)
        return int(state["status"])


def configure_request_log(stream: Any = None) -> logging.Logger:
    """Give the request logger its own stderr handler once: uvicorn configures only its own loggers, so without
    one the INFO lines would be dropped."""
    if not request_log.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"))
        request_log.addHandler(handler)
        request_log.setLevel(logging.INFO)
        request_log.propagate = False
    return request_log


def create_app(model_uri: str, max_bytes: int = DEFAULT_MAX_BYTES, max_rows: int = DEFAULT_MAX_ROWS):
    """Load ``model_uri`` as a pyfunc and return the guarded scoring app."""
    import mlflow
    from mlflow.pyfunc import scoring_server

    model = mlflow.pyfunc.load_model(model_uri)
    return GuardedApp(scoring_server.init(model), max_bytes=max_bytes, max_rows=max_rows, model=model)


def app_from_env():
    """uvicorn ``--factory`` entry point: ``MS2IMG_MODEL_URI`` (+ ``MS2IMG_MAX_BYTES``, ``MS2IMG_MAX_ROWS``)."""
    uri = os.environ.get(ENV_MODEL_URI)
    if not uri:
        raise RuntimeError(f"set {ENV_MODEL_URI} (e.g. models:/ms2img-DPPH@champion)")
    configure_request_log()
    app = create_app(
        uri,
        max_bytes=int(os.environ.get(ENV_MAX_BYTES, DEFAULT_MAX_BYTES)),
        max_rows=int(os.environ.get(ENV_MAX_ROWS, DEFAULT_MAX_ROWS)),
    )
    # What is loaded now (MLflow, the model, numba: ~400k objects) lives as long as the worker: keep the cyclic
    # garbage collector from walking it again in every full collection (a 5,000-precursor request allocates
    # enough containers to trigger one every ~30 requests, ~0.3-0.5 s each: ~10 ms per request on average).
    gc.collect()
    gc.freeze()
    return app
