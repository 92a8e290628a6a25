"""Serve the ``retrain`` flow on the cron schedule from params.yaml, plus the new-data watcher.

Scheduling needs a real Prefect server (an ephemeral one cannot schedule):

    prefect server start                                # terminal 1 (UI at http://127.0.0.1:4200)
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m flows.deploy                              # terminal 2: serves both deployments until Ctrl+C

Trigger a run by hand with ``prefect deployment run 'retrain/nightly-retrain'``.
"""

from __future__ import annotations

import argparse
import sys

from prefect import serve

from flows import pipeline
from flows.retrain import retrain
from flows.watch import watch_new_data
from ms2img.errors import ConfigError
from ms2img.params import load_params, profile_overrides


def deployments(cron: str, profile: str | None, watch_minutes: int, project_dir: str | None = None):
    """The two deployments: nightly retraining and a watcher that retrains as soon as new data lands.

    ``project_dir`` (default: resolved now, see :func:`flows.pipeline.project_dir`) is baked into both, so a
    scheduled run works on the same project whatever folder the serving process was started from. ``profile``: None
    runs params.yaml as it is; a name (``profiles/<name>.yaml``) is checked now, not at 2 a.m.
    """
    project = str(pipeline.project_dir(project_dir))
    if profile is not None:
        profile_overrides(profile, project)  # ConfigError naming the profiles there
    nightly = retrain.to_deployment(
        name="nightly-retrain",
        cron=cron,
        parameters={"profile": profile, "force": False, "project_dir": project},
        tags=["ms2img", "retrain"],
        description="Retrain and promote every assay whose data or pipeline changed.",
    )
    watcher = watch_new_data.to_deployment(
        name="new-data-watcher",
        interval=watch_minutes * 60,
        parameters={"profile": profile, "project_dir": project},
        tags=["ms2img", "watcher"],
        description="Start retrain when data/raw (or its DVC pointer) differs from what the champions saw.",
    )
    return nightly, watcher


def api_url() -> str:
    """The Prefect API this process talks to ("" when none is set: Prefect would start a temporary server)."""
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value() or "")


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--project-dir", default=None)
    project = pipeline.project_dir(pre.parse_known_args(argv)[0].project_dir)
    params = load_params(project / "params.yaml")
    parser = argparse.ArgumentParser(description="Serve the ms2img deployments (needs PREFECT_API_URL).")
    parser.add_argument(
        "--project-dir", default=None, help="the DVC project (default: the cwd if it has dvc.yaml, else this checkout)"
    )
    parser.add_argument("--cron", default=params["schedule"]["cron"], help="retrain schedule (default: schedule.cron)")
    parser.add_argument(
        "--profile", default=None, help="apply profiles/<NAME>.yaml before each run (default: params.yaml as it is)"
    )
    parser.add_argument("--watch-minutes", type=int, default=int(params["schedule"].get("watch_minutes", 10)))
    args = parser.parse_args(argv)
    if not api_url():
        print("flows.deploy: error: scheduling needs a running Prefect server: run `prefect server start` and "
              "export PREFECT_API_URL=http://127.0.0.1:4200/api (without it a temporary server would be started, "
              "which ends with this process)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        served = deployments(args.cron, args.profile, args.watch_minutes, str(project))
    except ConfigError as exc:
        print(f"flows.deploy: error: {exc}", file=sys.stderr)
        return 2
    serve(*served, pause_on_shutdown=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
