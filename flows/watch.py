"""The new-data watcher: retrain as soon as the raw data differs from what the current champions were trained on."""

from __future__ import annotations

from prefect import flow

from flows import pipeline
from flows.retrain import call, detect_new_data, local_data_is_new, raw_dir, refused_files, retrain, run_logger
from ms2img import tracking
from ms2img.params import load_params


@flow(name="watch-new-data", log_prints=True)
def watch_new_data(profile: str | None = None, project_dir: str | None = None) -> bool:
    """Compare the raw-data hash with each champion's, and the files in data/raw with their DVC pointer; run
    ``retrain`` (as a subflow) when any differs.

    Only data/raw is looked at: exports dropped into it count at once (files the last retrain refused do not, until
    they change), a new data/raw.dvc from git counts once ``retrain`` pulled it, and code or parameter changes wait
    for the nightly run.
    """
    logger = run_logger()
    project = pipeline.project_dir(project_dir)
    holder = pipeline.project_holder(project)
    if holder is not None:
        logger.info("a flow is running on this project (%s): looking again at the next tick", holder)
        return False
    params = load_params(project / "params.yaml")
    pipeline.check_tracking(project)
    assays = list(params["labels"]["assays"])
    if refused_files(project):  # a retrain refused these very files: retrying every few minutes changes nothing
        logger.info("data/raw holds the files the last retrain refused (see its message): waiting for them to change")
        return False
    if local_data_is_new(project):  # the pointer still holds the old hash: detect_new_data would see nothing
        logger.info("new files in data/raw that data/raw.dvc does not record yet: starting retrain")
        call(retrain, assays=assays, profile=profile, project_dir=str(project))
        return True
    changed = call(detect_new_data, assays, params["registry"]["model_prefix"], project)
    new = [a for a, c in changed.items() if c]
    if not new:
        logger.info("no new data since the champions were trained (%s)", tracking.data_hash(raw_dir(project)))
        return False
    logger.info("new data for %s: starting retrain", new)
    call(retrain, assays=new, profile=profile, project_dir=str(project))
    return True
