"""Prefect flows that orchestrate the DVC pipeline (dvc.yaml); they never re-implement a stage."""

import os

# The temporary Prefect server a plain flow run starts would send usage telemetry: off unless a lab turns it on
# (lab machines are often offline, and then every run logged a telemetry traceback). The server inherits os.environ.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
