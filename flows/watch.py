"""The new-data watcher: retrain as soon as the raw data differs from what the current champions were trained on."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.retrain import RAW, detect_new_data, retrain
from ms2img import tracking
from ms2img.params import load_params


@flow(name="watch-new-data", log_prints=True)
def watch_new_data(profile: str = "quick") -> bool:
    """Compare the raw-data hash with each champion's; run ``retrain`` (as a subflow) when any differs."""
    logger = get_run_logger()
    params = load_params(RAW.parents[1] / "params.yaml")
    tracking.setup_tracking()
    changed = detect_new_data(list(params["labels"]["assays"]), params["registry"]["model_prefix"])
    new = [a for a, c in changed.items() if c]
    if not new:
        logger.info("no new data since the champions were trained (%s)", tracking.data_hash(RAW))
        return False
    logger.info("new data for %s: starting retrain", new)
    retrain(assays=new, profile=profile)
    return True
