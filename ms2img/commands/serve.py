"""``ms2img serve``: an assay's champion over HTTP behind the request guards of :mod:`ms2img.serving.app`
(uvicorn, several workers on multi-core machines, localhost by default; uvicorn's access log is off, the app logs
one line per request without the input)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ms2img.commands import add_params_args, params_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the champion model of an assay over HTTP (MLflow scoring app behind ms2img's guards)",
        description=(
            "Runs uvicorn with ms2img.serving.app (MLflow's scoring app for models:/ms2img-<ASSAY>@<alias> plus a "
            "byte limit, a parse-time guard, 4xx for missing Content-Type / deep nesting, error bodies without the "
            "request, one log line per request on stderr). --plain runs `mlflow models serve` instead (no guards, "
            "no request log)."
        ),
    )
    p.add_argument("--assay", required=True, help="assay, e.g. DPPH")
    p.add_argument("--alias", default="champion", help="registry alias to serve (default: champion)")
    p.add_argument("--host", default=None, help="bind address (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=tcp_port, default=None, help="port, 1-65535 (default: serve.port, 5001)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core, at most 8)")
    p.add_argument("--max-bytes", type=int, default=None, help="request size limit (default: serve.max_bytes, 64 MiB)")
    p.add_argument("--plain", action="store_true", help="plain `mlflow models serve` (no guards)")
    add_params_args(p)
    p.set_defaults(func=run)


def tcp_port(text: str) -> int:
    """A port a server can bind (argparse type): 99999 ended in a traceback, 0 silently became 5001."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 1 to 65535, got {text!r}")
    return port


def serve_command(model_uri: str, host: str, port: int, workers: int, plain: bool = False) -> list[str]:
    """The command line that serves ``model_uri`` from this environment (env: :func:`serve_env`)."""
    bindir = Path(sys.executable).parent
    if plain:
        mlflow_bin = shutil.which("mlflow", path=str(bindir)) or shutil.which("mlflow") or str(bindir / "mlflow")
        return [mlflow_bin, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", host, "-p", str(port),
                "-w", str(workers)]  # fmt: skip
    return [sys.executable, "-m", "uvicorn", "--factory", "ms2img.serving.app:app_from_env", "--host", host,
            "--port", str(port), "--workers", str(workers), "--timeout-keep-alive", "30",
            "--no-access-log"]  # fmt: skip


def serve_env(model_uri: str, tracking_uri: str, max_bytes: int, max_rows: int) -> dict[str, str]:
    from ms2img.serving.app import ENV_MAX_BYTES, ENV_MAX_ROWS, ENV_MODEL_URI

    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, ENV_MODEL_URI: model_uri,
           ENV_MAX_BYTES: str(max_bytes), ENV_MAX_ROWS: str(max_rows)}  # fmt: skip
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # uvicorn is exec'd from PATH by mlflow's local env manager: put this interpreter's bin first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(args: argparse.Namespace) -> int:
    from ms2img import registry, tracking
    from ms2img.commands.promote import assay_model_name
    from ms2img.errors import ConfigError
    from ms2img.serving.app import DEFAULT_MAX_BYTES, default_workers

    params = params_from_args(args)
    name = assay_model_name(args.assay, params)
    uri = tracking.setup_tracking()
    registry.require_alias(name, args.alias)
    serve = params.get("serve", {})
    host = args.host or serve.get("host", "127.0.0.1")
    try:
        port = args.port if args.port is not None else tcp_port(str(serve.get("port", 5001)))
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"serve.port in params.yaml: {exc}") from None
    workers = args.workers or int(serve.get("workers", 0) or 0) or default_workers()
    max_bytes = args.max_bytes or int(serve.get("max_bytes", DEFAULT_MAX_BYTES))
    model_uri = f"models:/{name}@{args.alias}"
    cmd = serve_command(model_uri, host, port, workers, plain=args.plain)
    env = serve_env(model_uri, uri, max_bytes, int(serve.get("max_rows", 200_000)))
    print(f"starting {name}@{args.alias} on http://{host}:{port}/invocations with {workers} worker(s); it answers "
          "once uvicorn logs 'Application startup complete' (loading the model takes seconds; GET /ping is 200 "
          "then)", flush=True)  # fmt: skip
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached
