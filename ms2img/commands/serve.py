"""``ms2img serve``: ``mlflow models serve`` on an assay's champion, with safe defaults (localhost, local env)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from ms2img.commands import add_params_args, params_from_args, registered_name


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve the champion model of an assay over HTTP (mlflow models serve)",
        description="Runs `mlflow models serve -m models:/ms2img-<ASSAY>@champion --env-manager local`.",
    )
    p.add_argument("--assay", required=True, help="assay, e.g. DPPH")
    p.add_argument("--alias", default="champion", help="registry alias to serve (default: champion)")
    p.add_argument("--kind", default="cnn", choices=["cnn", "rf"], help="which registered model family")
    p.add_argument("--host", default=None, help="bind address (default: serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: serve.port, 5001)")
    p.add_argument("--workers", type=int, default=1, help="server worker processes")
    add_params_args(p)
    p.set_defaults(func=run)


def serve_command(model_uri: str, host: str, port: int, workers: int) -> list[str]:
    """The mlflow command line that serves ``model_uri`` from this environment."""
    mlflow_bin = shutil.which("mlflow") or str(Path(sys.executable).with_name("mlflow"))
    return [
        mlflow_bin,
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        host,
        "-p",
        str(port),
        "-w",
        str(workers),
    ]


def run(args: argparse.Namespace) -> int:
    from ms2img import registry, tracking

    params = params_from_args(args)
    name = registered_name(args, params)
    uri = tracking.setup_tracking()
    registry.require_alias(name, args.alias)
    host = args.host or params["serve"]["host"]
    port = args.port or int(params["serve"]["port"])
    cmd = serve_command(f"models:/{name}@{args.alias}", host, port, args.workers)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    # uvicorn is exec'd from PATH by mlflow's local env manager: put this interpreter's bin first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    print(f"serving {name}@{args.alias} on http://{host}:{port}/invocations (Ctrl+C to stop)", flush=True)
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached
