"""Create (or re-password) the MLflow basic-auth users of the team stack; run once by compose's mlflow-init.

Usage: ``python mlflow_users.py TRAINER READER``: for every PREFIX it reads ``MLFLOW_<PREFIX>_USERNAME`` and
``MLFLOW_<PREFIX>_PASSWORD`` from the environment. It talks to the server at ``MLFLOW_TRACKING_URI`` as the
admin (``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``). Existing users get the password from the
environment, so rotating a password in docker/.env and re-running converges.
"""

from __future__ import annotations

import os
import sys
import time

import requests
from mlflow.exceptions import RestException
from mlflow.server.auth.client import AuthServiceClient


def _wait_for(uri: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.get(f"{uri.rstrip('/')}/health", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"MLflow server at {uri} did not become healthy within {timeout_s:.0f} s")
        time.sleep(2)


def main(prefixes: list[str]) -> int:
    uri = os.environ["MLFLOW_TRACKING_URI"]
    _wait_for(uri)
    client = AuthServiceClient(uri)
    for prefix in prefixes:
        username = os.environ.get(f"MLFLOW_{prefix}_USERNAME", "")
        password = os.environ.get(f"MLFLOW_{prefix}_PASSWORD", "")
        if not username or not password:
            print(f"MLFLOW_{prefix}_USERNAME/PASSWORD not set: skipped", file=sys.stderr)
            continue
        try:
            client.create_user(username, password)
            print(f"created MLflow user {username}")
        except RestException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            client.update_user_password(username, password)
            print(f"MLflow user {username} exists: password updated")
    return 0


if __name__ == "__main__":
    sys.exit(main([p.upper() for p in sys.argv[1:]] or ["TRAINER", "READER"]))
