"""Prefect flows that orchestrate the DVC pipeline (dvc.yaml); they never re-implement a stage."""

import os

# The temporary Prefect server a plain flow run starts would send usage telemetry: off unless a lab turns it on
# (lab machines are often offline, and then every run logged a telemetry traceback). The server inherits os.environ.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A slow or busy machine starts that server in more than Prefect's 20 s default, and the run died with a 40-line
# "Timed out while attempting to connect to ephemeral Prefect API server"; `make demo` already allowed 120 s.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
