"""The new-data watcher: retrain as soon as the raw data differs from what the current champions were trained on."""

from __future__ import annotations

from prefect import flow

from flows import pipeline
from flows.retrain import call, detect_new_data, raw_dir, retrain, run_logger
from ms2img import tracking
from ms2img.params import load_params


@flow(name="watch-new-data", log_prints=True)
def watch_new_data(profile: str | None = None, project_dir: str | None = None) -> bool:
    """Compare the raw-data hash with each champion's; run ``retrain`` (as a subflow) when any differs.

    Only data/raw is looked at: a new data/raw.dvc from git counts once ``retrain`` pulled it, and code or
    parameter changes wait for the nightly run.
    """
    logger = run_logger()
    project = pipeline.project_dir(project_dir)
    params = load_params(project / "params.yaml")
    pipeline.check_tracking(project)
    changed = call(detect_new_data, list(params["labels"]["assays"]), params["registry"]["model_prefix"], project)
    new = [a for a, c in changed.items() if c]
    if not new:
        logger.info("no new data since the champions were trained (%s)", tracking.data_hash(raw_dir(project)))
        return False
    logger.info("new data for %s: starting retrain", new)
    call(retrain, assays=new, profile=profile, project_dir=str(project))
    return True
